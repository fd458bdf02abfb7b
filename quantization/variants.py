"""The quantization variants: one table of names, bit widths, backend and its settings."""
from dataclasses import dataclass

from kdeep.errors import QuantizationError


@dataclass(frozen=True)
class Variant:
    """One LiteRT conversion recipe, made by the TF converter or by ai-edge-quantizer.

    Attributes:
        name: the variant's name (CLI and report key).
        what: one line for reports and `--help`.
        weight_bits: bits per stored weight (of the dense layers when `conv_bits` is set).
        activation_bits: bits per activation at inference (32: float).
        optimize: set `tf.lite.Optimize.DEFAULT` on the converter.
        supported_types: `converter.target_spec.supported_types` (tf dtype names).
        supported_ops: `converter.target_spec.supported_ops` (`tf.lite.OpsSet` member names).
        io_type: dtype name of the input and output tensors, or None to keep float32.
        representative: the converter needs a representative dataset (calibration).
        qat: convert the quantization-aware fine-tuned twin instead of the float model (fine-tuned for
            `weight_bits`-wide weights).
        backend: "converter" (`tf.lite.TFLiteConverter`, `quantization.convert`) or "aiedge" (ai-edge-quantizer
            on the float32 .tflite, `quantization.aiedge`; weights per output channel).
        dynamic: aiedge with float activations: dynamic range (activations quantized on the fly) instead of
            weight-only (weights dequantized before each op).
        conv_bits: aiedge: bits per convolution weight, when it differs from `weight_bits`.
        eval_limit: score at most this many test images (kernels too slow for the full set), None = all.
        note: caveat printed in the report, or "".
    """

    name: str
    what: str
    weight_bits: int
    activation_bits: int
    optimize: bool = False
    supported_types: tuple[str, ...] = ()
    supported_ops: tuple[str, ...] = ()
    io_type: str | None = None
    representative: bool = False
    qat: bool = False
    backend: str = "converter"
    dynamic: bool = False
    conv_bits: int | None = None
    eval_limit: int | None = None
    note: str = ""

    @property
    def bits(self) -> str:
        """Bit widths as `weights/activations`, e.g. `8/8`."""
        return f"{self.weight_bits}/{self.activation_bits}"


_FULL_INT8 = dict(optimize=True, supported_ops=("TFLITE_BUILTINS_INT8",), io_type="int8", representative=True)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("float32", "plain conversion", 32, 32),
        Variant("float16", "float16 weights", 16, 32, optimize=True, supported_types=("float16",)),
        Variant("dynamic", "dynamic range: int8 weights, float activations", 8, 32, optimize=True),
        Variant("int8", "full integer, calibrated on training images", 8, 8, **_FULL_INT8),
        Variant(
            "int16x8",
            "int16 activations, int8 weights",
            8,
            16,
            optimize=True,
            supported_ops=("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",),
            representative=True,
            eval_limit=1000,
            note="runs on LiteRT's slow reference kernels (no optimised int16x8 CPU kernels): "
            "scored on the first 1000 test images only",
        ),
        Variant("qat_int8", "quantization-aware fine-tuning (tfmot), then full integer", 8, 8, qat=True, **_FULL_INT8),
        Variant("int4", "int4 weights for conv and dense layers, float activations (weight-only)", 4, 32,
                backend="aiedge"),
        Variant("dynamic_int4", "int4 weights, activations quantized on the fly (dynamic range)", 4, 32,
                backend="aiedge", dynamic=True),
        Variant("w4a8", "int4 weights, int8 activations, calibrated on training images", 4, 8, backend="aiedge",
                representative=True),
        Variant("int2_dense", "int2 dense layers, int4 convolutions (dynamic range)", 2, 32, backend="aiedge",
                dynamic=True, conv_bits=4),
        Variant("qat_int4", "4-bit quantization-aware fine-tuning (tfmot), then the int4 export", 4, 32, qat=True,
                backend="aiedge"),
    )
}


def resolve(names: str | list[str] | tuple[str, ...] | None) -> list[Variant]:
    """Looks variant names up in `VARIANTS`.

    Args:
        names: names, a comma-separated string, or None for every variant.

    Returns:
        The variants, in the order given.

    Raises:
        QuantizationError: a name is not in `VARIANTS` (the message lists the valid names).
    """
    if names is None:
        return list(VARIANTS.values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise QuantizationError(
            f"unknown quantization variant(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(VARIANTS)}"
        )
    return [VARIANTS[n] for n in dict.fromkeys(names)]
