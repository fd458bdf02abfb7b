"""Batch-1 latency per planned layer and weight width, measured in LiteRT: the latency model the search weighs.

Each planned layer is cut out as a one-layer Keras model (its own input shape, its own weights), converted to a float
.tflite, quantized at each width by the LiteRT quantizer (dynamic range: what `mixed.tflite` is) and timed at batch 1
with LiteRT's default CPU setup (XNNPACK). A mix's predicted latency is the sum of its layers' times; the layers
without weights (pooling, reshapes) cost the same in every mix and are left out. On a CPU where XNNPACK has no int4
convolution kernel, an int4 CONV_2D falls back to LiteRT's builtin kernel and the table shows it.
"""
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from kdeep.errors import QuantizationError
from quantization.plan import LayerPlan, PlannedLayer

RUNS = 100  # timed invokes per layer and width (after warm-up)


@dataclass(frozen=True)
class LayerLatency:
    """Measured batch-1 latency of each planned layer at each width it takes.

    Attributes:
        us: {plan key: {width (None: float): median microseconds}}.
        mode: the quantization mode measured ("dynamic").
    """

    us: Mapping[str, Mapping[int | None, float]]
    mode: str = "dynamic"

    def of(self, bits: Mapping[str, int | None]) -> float:
        """Predicted latency of a mix (the sum over its layers), microseconds.

        Raises:
            QuantizationError: a layer or width the table did not measure.
        """
        total = 0.0
        for key, width in bits.items():
            if key not in self.us or width not in self.us[key]:
                raise QuantizationError(f"layer {key} at {width} bits was not measured; measure it with "
                                        "quantization.latency.measure")
            total += self.us[key][width]
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {key: {"float" or "N": us}}."""
        return {key: {"float" if b is None else str(b): t for b, t in row.items()} for key, row in self.us.items()}


def single_layer(entry: PlannedLayer, model: Any) -> Any:
    """A one-layer Keras model holding a copy of the planned layer (its config and weights) on its input shape.

    Raises:
        QuantizationError: the layer's input has an unknown size besides the batch.
    """
    import keras

    layer = entry.layer(model)
    shape = tuple(layer.input.shape[1:])
    if any(dim is None for dim in shape):
        raise QuantizationError(f"layer {entry.key} has input shape {shape}; latency is measured on fixed shapes")
    copy = type(layer).from_config(layer.get_config())
    inputs = keras.Input(shape)
    outputs = copy(inputs)
    copy.set_weights(layer.get_weights())
    return keras.Model(inputs, outputs, name=f"single_{layer.name}")


def _time(entry: PlannedLayer, model: Any, widths: Iterable[int | None], folder: Path, runs: int,
          builtin: bool) -> dict[int | None, float]:
    """{width: median us} of one layer, each width it takes in dynamic range."""
    from quantization import aiedge, convert, litert
    from quantization.variants import VARIANTS

    single = single_layer(entry, model)
    float_file = convert.convert(single, VARIANTS["float32"], None, folder / f"{entry.key.replace('/', '__')}.tflite")
    image = np.random.default_rng(0).random(tuple(single.input_shape[1:]), dtype=np.float32)
    times = {}
    for width in widths:
        if not entry.accepts(width, "dynamic"):
            continue
        path = float_file if width is None else aiedge.quantize_tflite(
            float_file, float_file.with_name(f"{float_file.stem}_{width}.tflite"), weight_bits={},
            default_bits=width, dynamic=True)
        times[width] = litert.latency(path, image, runs=runs, builtin=builtin).median_us
    return times


def measure(model: Any, layers: LayerPlan, widths: Iterable[int | None] = (None, 8, 4, 2), *,
            runs: int = RUNS, builtin: bool = False) -> LayerLatency:
    """Measures every planned layer's batch-1 latency at each width its op takes in dynamic range.

    Args:
        model: the float Keras model.
        layers: its layer plan.
        widths: widths to measure (None: float); a width a layer's op does not take is skipped for it.
        runs: timed invokes per layer and width.
        builtin: time LiteRT's builtin kernels alone (without XNNPACK), to see which ops XNNPACK takes.

    Returns:
        The `LayerLatency` table.
    """
    widths = tuple(widths)
    with tempfile.TemporaryDirectory(prefix="kdeep_latency_") as scratch:
        return LayerLatency({entry.key: _time(entry, model, widths, Path(scratch), runs, builtin)
                             for entry in layers})
