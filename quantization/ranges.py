"""Activation ranges from calibration values: min/max, a percentile, or the range that minimises the MSE.

Min/max spends a per-tensor grid's few levels on the rare largest values: at 4 bits (16 levels) one outlier in
a residual sum can leave most of the tensor on one or two levels. The percentile range clips the tails (the
`PERCENTILE`th and 100 - `PERCENTILE`th percentiles); the MSE range tries `CANDIDATES` x [min, max] and keeps
the one whose fake-quantization error (rounding inside, clipping outside) is smallest at the tensor's own
width (the criterion of Banner et al. 2019 and AIMET's "TF-enhanced" scheme). All three keep 0 inside the range,
as TFLite's asymmetric grids do. The same function serves the simulator (`quantization.sweep.Simulator`) and the
LiteRT exports (`litert_ranges` replaces the quantizer's calibrated min/max).
"""
from typing import Any, Iterable, Mapping

import numpy as np

from kdeep.errors import QuantizationError
from quantization import litert

RANGE_METHODS = ("minmax", "percentile", "mse")
PERCENTILE = 99.99
CANDIDATES = np.linspace(0.2, 1.0, 41)  # MSE: fractions of the min/max range tried
SAMPLE = 1 << 18  # values per tensor the percentile and MSE searches look at (seeded subsample)
CALIBRATION_BATCH = 100  # images per LiteRT invoke when a file's ranges are recomputed


def check_method(method: str) -> str:
    """The range method, checked.

    Raises:
        QuantizationError: a name not in `RANGE_METHODS`.
    """
    if method not in RANGE_METHODS:
        raise QuantizationError(f"unknown activation range method {method!r}; use one of {', '.join(RANGE_METHODS)}")
    return method


def subsample(values: np.ndarray, size: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """At most `size` of `values`, flattened, drawn with a fixed seed (all of them when there are fewer)."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if flat.size <= size:
        return flat
    return flat[np.random.default_rng(seed).choice(flat.size, size, replace=False)]


def activation_limits(bits: int) -> tuple[int, int]:
    """(qmin, qmax) of a signed `bits`-wide activation grid."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def activation_grid(low: float, high: float, bits: int) -> tuple[float, float]:
    """(scale, zero point) of a per-tensor asymmetric grid over [low, high] widened to hold 0, as TFLite nudges it."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    qmin, qmax = activation_limits(bits)
    scale = max(high - low, 1e-9) / (qmax - qmin)
    return scale, float(np.clip(np.round(qmin - low / scale), qmin, qmax))


def on_grid(x: Any, scale: Any, zero: Any, qmin: Any, qmax: Any, xp: Any = np) -> Any:
    """`x` rounded to an asymmetric integer grid and back to float: kdeep's one activation fake-quantization formula
    (`xp`: numpy for arrays, `keras.ops` for Keras tensors and grids held in variables)."""
    return (xp.clip(xp.round(x / scale) + zero, qmin, qmax) - zero) * scale


def fake_quantize(x: Any, low: float, high: float, bits: int, xp: Any = np) -> Any:
    """`x` on the asymmetric `bits`-wide grid over [low, high] (`activation_grid`), back to float."""
    return on_grid(x, *activation_grid(low, high, bits), *activation_limits(bits), xp=xp)


def quantization_error(values: np.ndarray, low: float, high: float, bits: int) -> float:
    """Mean squared error of fake-quantizing `values` on the asymmetric `bits`-wide grid over [low, high]."""
    return float(np.mean((fake_quantize(values, low, high, bits) - values) ** 2))


def tensor_range(values: np.ndarray, bits: int, method: str = "minmax", *, low: float | None = None,
                 high: float | None = None) -> tuple[float, float]:
    """The (low, high) range of a tensor's grid at `bits`, by `method`, 0 always inside.

    Args:
        values: calibration values of the tensor (any shape; a subsample is enough for percentile and MSE).
        bits: the activation width (MSE depends on it; min/max and percentile do not).
        method: "minmax", "percentile" or "mse".
        low, high: the exact min and max when `values` is a subsample (default: those of `values`).

    Returns:
        (low, high) as floats, low <= 0 <= high.
    """
    check_method(method)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    low = min(float(np.min(values)) if low is None else low, 0.0)
    high = max(float(np.max(values)) if high is None else high, 0.0)
    if method == "minmax" or high - low <= 0:
        return low, high
    if method == "percentile":
        return (min(float(np.percentile(values, 100 - PERCENTILE)), 0.0),
                max(float(np.percentile(values, PERCENTILE)), 0.0))
    errors = [quantization_error(values, low * f, high * f, bits) for f in CANDIDATES]
    best = CANDIDATES[int(np.argmin(errors))]
    return low * float(best), high * float(best)


class RangeTable:
    """Calibration statistics of named tensors, and their ranges by method and width (computed once each).

    Args:
        method: the range method for every tensor.
        fixed: {tensor: (low, high)} that no method changes (a softmax output on LiteRT's fixed grid).
        images: how many calibration images the observed values come from in all (each batch then keeps its
            share of `SAMPLE` values per tensor).
    """

    def __init__(self, method: str = "minmax", fixed: Mapping[str, tuple[float, float]] | None = None,
                 images: int = 1) -> None:
        self.method = check_method(method)
        self.fixed = dict(fixed or {})
        self.images = max(int(images), 1)
        self._extremes: dict[str, tuple[float, float]] = {}
        self._samples: dict[str, list[np.ndarray]] = {}
        self._ranges: dict[tuple[str, int], tuple[float, float]] = {}

    def observe(self, name: str, values: np.ndarray) -> None:
        """Adds one batch of a tensor's calibration values (batch first): its min/max and a seeded subsample."""
        values = np.asarray(values, dtype=np.float32)
        low, high = float(np.min(values)), float(np.max(values))
        if name in self._extremes:
            low, high = min(low, self._extremes[name][0]), max(high, self._extremes[name][1])
        self._extremes[name] = (low, high)
        self._ranges = {key: value for key, value in self._ranges.items() if key[0] != name}
        if self.method != "minmax":
            share = -(-SAMPLE * (len(values) if values.ndim else 1) // self.images)
            batches = self._samples.setdefault(name, [])
            batches.append(subsample(values, share, seed=len(batches)))

    @property
    def names(self) -> list[str]:
        """The tensors observed, in the order they were."""
        return list(self._extremes)

    def range(self, name: str, bits: int) -> tuple[float, float]:
        """(low, high) of tensor `name`'s grid at `bits`."""
        if name in self.fixed:
            return self.fixed[name]
        key = (name, bits)
        if key not in self._ranges:
            low, high = self._extremes[name]
            batches = self._samples.get(name)
            sample = np.concatenate(batches) if batches else np.array([low, high], np.float32)
            self._ranges[key] = tensor_range(sample, bits, self.method, low=low, high=high)
        return self._ranges[key]


def calibrated_ranges(source: Any, images: np.ndarray, names: Iterable[str], bits: int, method: str, *,
                      batch: int = CALIBRATION_BATCH) -> dict[str, tuple[float, float]]:
    """{tensor: (low, high)} by `method` at `bits` for the named tensors a float .tflite computes (its input and
    op outputs; constants are left out), over `images` run on LiteRT's builtin kernels with every tensor kept.

    Args:
        source: the float .tflite (path or bytes).
        images: calibration images as the file takes them (float, shaped like its input).
        names: tensor names (those the file does not compute are left out).
        bits: the activation width the ranges are for.
        method: a `RANGE_METHODS` name.
        batch: images per invoke.
    """
    runner = litert.open_model(source, keep_tensors=True)
    details = runner.tensor_details()
    computed = {details[i]["name"] for op in runner.ops() for i in op["outputs"] if i >= 0}
    computed.add(runner.input_detail()["name"])
    wanted = [name for name in dict.fromkeys(names) if name in computed]
    images = np.asarray(images, dtype=np.float32)
    table = RangeTable(method, images=len(images))
    for start in range(0, len(images), batch):
        runner.run(images[start:start + batch])
        for name, values in runner.tensors(wanted).items():
            table.observe(name, values)
    return {name: table.range(name, bits) for name in table.names}


def litert_ranges(float_tflite: Any, calibrated: Mapping[str, dict], images: np.ndarray, bits: int,
                  method: str) -> dict[str, dict]:
    """The LiteRT quantizer's calibration result with each activation tensor's range replaced by `method`'s over
    all the calibration images.

    The quantizer's own calibration keeps a moving average (factor 0.95) of each image's min/max, which follows
    the last few dozen images; kdeep replaces it with the range over every image (for "minmax" the global min/max,
    as the TF converter and the simulator calibrate), so the file quantizes what `quantization.sweep.Simulator`
    simulates.

    Args:
        float_tflite: the float .tflite that was calibrated.
        calibrated: `quantizer.calibrate(...)`'s result, {tensor name: {"min": array, "max": array, ...}}.
        images: the calibration images (float, shaped like the model input).
        bits: the activation width the ranges are for.
        method: a `RANGE_METHODS` name.

    Returns:
        A new calibration result (the input is not modified; weights and constants keep their entries).
    """
    per_tensor = [name for name, entry in calibrated.items() if np.size(entry.get("min", 0)) == 1]
    result = dict(calibrated)
    for name, (low, high) in calibrated_ranges(float_tflite, images, per_tensor, bits, method).items():
        shape = np.shape(calibrated[name]["min"])
        result[name] = {**calibrated[name], "min": np.full(shape, low, np.float32),
                        "max": np.full(shape, high, np.float32)}
    return result


def converter_ranges(calibrated: bytes, images: np.ndarray, bits: int, method: str) -> bytes:
    """A TF-converter calibrated model (`_experimental_calibrate_only`) with its recorded activation min/max
    replaced by `method`'s ranges; the converter's quantizer (`mlir_quantize`) then uses them.

    Args:
        calibrated: the calibrated float flatbuffer (per-tensor min/max in each tensor's quantization field).
        images: the calibration images.
        bits: the activation width.
        method: a `RANGE_METHODS` name.

    Returns:
        The flatbuffer with new min/max for every per-tensor activation the run produces.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    recorded = {tensor.name.decode(): tensor for graph in model.subgraphs for tensor in graph.tensors
                if tensor.quantization is not None and tensor.quantization.min is not None
                and len(tensor.quantization.min) == 1}
    for name, (low, high) in calibrated_ranges(calibrated, images, recorded, bits, method).items():
        recorded[name].quantization.min, recorded[name].quantization.max = [low], [high]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
