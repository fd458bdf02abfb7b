"""The quantization variants: one table of names, bit widths, backend and its settings, and the width each
LiteRT-quantizer variant gives each planned layer (`layer_widths`)."""
from dataclasses import dataclass

from kdeep.errors import QuantizationError
from quantization.plan import LayerPlan, PlannedLayer


@dataclass(frozen=True)
class Variant:
    """One LiteRT conversion recipe, made by the TF converter or by the LiteRT quantizer.

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
        backend: "converter" (`tf.lite.TFLiteConverter`, `quantization.convert`) or "aiedge" (the LiteRT quantizer
            on the float32 .tflite, `quantization.aiedge`; weights per output channel).
        dynamic: aiedge with float activations: dynamic range (activations quantized on the fly) instead of
            weight-only (weights dequantized before each op).
        conv_bits: aiedge: bits per weight of the layers that are not dense (FULLY_CONNECTED), when it differs
            from `weight_bits`.
        fast_only: aiedge: a layer gets `weight_bits` only where XNNPACK runs that width itself for its op
            (`PlannedLayer.fast_bits`: FULLY_CONNECTED), 8 bits elsewhere.
        ends_bits: aiedge: the first and last planned layers (a CNN's stem and classifier, its smallest kernels and
            the most sensitive ones) get at least this width, as AdaRound's and BRECQ's papers keep them; None: as
            the others.
        float_below: aiedge: kernels with fewer values stay float (the TF converter's `dynamic` keeps those under
            1,024 float: quantizing a tiny op's activations on the fly costs more time than it saves bytes).
        eval_limit: score at most this many test images, None = all (every variant in the table is scored on all;
            tests set it to check that a subset is marked as one).
        note: caveat printed in the report (slow kernels), or "".
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
    fast_only: bool = False
    ends_bits: int | None = None
    float_below: int = 0
    eval_limit: int | None = None
    note: str = ""

    @property
    def bits(self) -> str:
        """Bit widths as `weights/activations`, e.g. `8/8`."""
        return f"{self.weight_bits}/{self.activation_bits}"


# int16 activations run on LiteRT's reference kernels (no XNNPACK int16 kernels): measured 2026-12-06 on the 2-core
# AVX-512 Xeon (docs/RESULTS.md), 3.6 ms per DeepConvNet image at batch 1 against 0.11 ms for int8.
_INT16_NOTE = ("int16 activations run on LiteRT's reference kernels (XNNPACK has no int16 kernels): a DeepConvNet "
               "image takes 3.6 ms at batch 1 against 0.11 ms for int8 (33x) on a 2-core AVX-512 Xeon; for accuracy, "
               "not speed")
_FULL_INT8 = dict(optimize=True, supported_ops=("TFLITE_BUILTINS_INT8",), io_type="int8", representative=True)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("float32", "plain conversion", 32, 32),
        Variant("float16", "float16 weights", 16, 32, optimize=True, supported_types=("float16",)),
        Variant("dynamic", "dynamic range: int8 weights, float activations", 8, 32, optimize=True),
        Variant("int8", "full integer, calibrated on training images", 8, 8, **_FULL_INT8),
        Variant("int16x8", "int16 activations, int8 weights", 8, 16, optimize=True,
                supported_ops=("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",), representative=True,
                note=_INT16_NOTE),
        Variant("qat_int8", "quantization-aware fine-tuning (tfmot), then full integer", 8, 8, qat=True, **_FULL_INT8),
        Variant("int4", "int4 weights for conv and dense layers, float activations (weight-only)", 4, 32,
                backend="aiedge"),
        Variant("dynamic_int4", "int4 weights, activations quantized on the fly (dynamic range)", 4, 32,
                backend="aiedge", dynamic=True),
        Variant("w4a8", "int4 weights, int8 activations, calibrated on training images", 4, 8, backend="aiedge",
                representative=True),
        Variant("int4_ends8", "int4 weights, the first and last layers at int8 (as AdaRound and BRECQ), float "
                "activations (weight-only)", 4, 32, backend="aiedge", ends_bits=8),
        Variant("w4a8_ends8", "int4 weights, the first and last layers at int8, int8 activations, calibrated", 4, 8,
                backend="aiedge", representative=True, ends_bits=8),
        Variant("int2_dense", "int2 dense layers, int4 convolutions (dynamic range)", 2, 32, backend="aiedge",
                dynamic=True, conv_bits=4),
        Variant("qat_int4", "4-bit quantization-aware fine-tuning (tfmot), then the int4 export", 4, 32, qat=True,
                backend="aiedge"),
        Variant("dynamic_fc4", "smaller than int8, as fast: dynamic range, int4 weights where XNNPACK has fast int4 "
                "kernels (dense layers), int8 elsewhere, kernels under 1,024 values float", 4, 32, backend="aiedge",
                dynamic=True, fast_only=True, float_below=1024),
        Variant("w8a16", "int8 weights, int16 activations (LiteRT quantizer, calibrated on training images)", 8, 16,
                backend="aiedge", representative=True, note=_INT16_NOTE),
        Variant("w4a16", "int4 weights (int8 where the op has no int4 config), int16 activations, calibrated", 4, 16,
                backend="aiedge", representative=True, note=_INT16_NOTE),
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


def _mode(variant: Variant) -> tuple[str, int | None]:
    """(plan mode, activation bits) of a LiteRT-quantizer variant."""
    if variant.activation_bits != 32:
        return "static", variant.activation_bits
    return ("dynamic" if variant.dynamic else "weight_only"), None


def _width(variant: Variant, entry: PlannedLayer, end: bool) -> int | None:
    """The width a variant gives one planned layer: its op's share of the variant's widths, 8 where `fast_only`
    finds no fast kernel, at least `ends_bits` at an `end` (the first or last planned layer), raised to the
    narrowest width the op takes in the variant's mode (a depthwise convolution asked for 4 bits gets 8), float below
    `float_below` values."""
    if entry.size < variant.float_below:
        return None
    bits = variant.weight_bits if entry.op == "FULLY_CONNECTED" or not variant.conv_bits else variant.conv_bits
    if variant.fast_only and bits not in entry.fast_bits:
        bits = 8
    if end and variant.ends_bits:
        bits = max(bits, variant.ends_bits)
    mode, activation_bits = _mode(variant)
    mode = "dynamic" if bits == 2 and mode == "weight_only" else mode  # 2-bit configs are dynamic range only
    return min((b for b in entry.widths.allowed(mode, activation_bits) if b >= bits), default=None)


def layer_widths(variant: Variant, layers: LayerPlan) -> dict[str, int | None]:
    """{plan key: weight width (None: float)} that a LiteRT-quantizer variant gives each planned layer.

    Args:
        variant: a variant with `backend="aiedge"`.
        layers: the model's `quantization.plan.plan`.

    Raises:
        QuantizationError: the variant is not made by the LiteRT quantizer.
    """
    if variant.backend != "aiedge":
        raise QuantizationError(f"variant {variant.name} is made by the TF converter, which chooses its own "
                                "widths; layer_widths covers the LiteRT quantizer's variants")
    ends = {layers.keys[0], layers.keys[-1]} if layers.keys else set()
    return {entry.key: _width(variant, entry, entry.key in ends) for entry in layers}
