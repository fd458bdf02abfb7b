"""LiteRT in one place: the only module that opens `ai_edge_litert` models. Batched predict (each tensor's own
quantization applied; a deployable file fed pixels as its metadata says), intermediate tensors, batch-1 latency,
and the check that a new file runs.

A `Runner` wraps one opened model; `predict`, `latency` and `tensors` open one for a file. Files that are
missing, truncated or not LiteRT models raise `kdeep.errors.ArtifactError` in one line. The runner is built on
the `Interpreter` API, which alone gives intermediate tensors and op lists; a runner on LiteRT's signature-based
`ai_edge_litert.compiled_model.CompiledModel` can sit beside it here with the same `set_input`/`invoke`/`output`
methods, so `predict` and `latency` serve both.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from kdeep import io
from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.errors import QuantizationError, reason
from kdeep.quiet import silenced
from kdeep.timing import time_calls

SCORING_BATCH = 1000  # images per invoke when scoring
LATENCY_RUNS, LATENCY_WARMUP = 200, 20  # timed and untimed batch-1 invokes
# Timing stops early once the timed invokes of one thread count took this long, after this many at least: a file
# on slow kernels (int4 convolutions on the builtin ops, ~25 ms an invoke with 2 threads on a busy 2-core machine)
# is timed in about a second instead of five.
LATENCY_SECONDS, LATENCY_MIN_RUNS = 1.0, 20
THREADS = (1, 2)  # the thread counts latency is reported for

Source = str | os.PathLike | bytes  # a .tflite file, or a flatbuffer in memory


@dataclass(frozen=True)
class Latency:
    """Batch-1 latency of one invoke, in microseconds, over `runs` timed invokes (None: not recorded)."""

    median_us: float
    p90_us: float
    runs: int | None = None

    def to_dict(self) -> dict[str, float]:
        """{"median_us", "p90_us", "runs"} ("runs" where recorded)."""
        runs = {} if self.runs is None else {"runs": self.runs}
        return {"median_us": self.median_us, "p90_us": self.p90_us, **runs}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Latency:
        """Reads what `to_dict` wrote (reports written before `runs` was recorded have none)."""
        runs = data.get("runs")
        return cls(float(data["median_us"]), float(data["p90_us"]), None if runs is None else int(runs))


def quantize_input(x: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """Float model inputs -> the input tensor's dtype: float32 as they are; uint8, int8 or int16 through the
    tensor's scale and zero point (rounded, clipped to the type's range). An array already of the input's integer
    dtype holds the tensor's values (a deployable file's uint8 pixels) and is taken as it is."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer) or np.asarray(x).dtype == dtype:
        return np.asarray(x).astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x) / scale + zero_point), limits.min, limits.max).astype(dtype)


def dequantize(y: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """A tensor's values -> float32, through its scale and zero point when it is an integer tensor."""
    if not np.issubdtype(y.dtype, np.integer):
        return y.astype(np.float32, copy=False)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def pixel_inputs(pixels: np.ndarray, detail: Mapping[str, Any],
                 normalization: tuple[tuple[float, ...], tuple[float, ...]] | None) -> np.ndarray:
    """uint8 pixels (N, H, W, C) as an image classifier's input takes them (what `kdeep export` files and edge
    runtimes agree on): grey repeated when the input is RGB; a uint8 input the pixels as they are, an int8 one
    pixel - 128, a float32 one (pixel - mean) / std of its NormalizationOptions (TFLite Metadata).

    Raises:
        QuantizationError: a float input without NormalizationOptions (how pixels map onto it is unknown).
    """
    pixels = np.asarray(pixels)
    if pixels.shape[-1] == 1 and detail["shape"][-1] == 3:
        pixels = np.repeat(pixels, 3, axis=-1)  # the luma of grey as RGB is the grey value again
    dtype = np.dtype(detail["dtype"])
    if dtype == np.uint8:
        return pixels.astype(np.uint8, copy=False)
    if dtype == np.int8:
        return (pixels.astype(np.int16) - 128).astype(np.int8)
    if normalization is None:
        raise QuantizationError("the model's float input has no NormalizationOptions metadata, so how pixels map "
                                "onto it is unknown: export the model with `kdeep export`")
    mean, std = (np.asarray(v, np.float32) for v in normalization)
    return (pixels.astype(np.float32) - mean) / std


class Runner:
    """An opened LiteRT model fed float model inputs (already scaled as the Keras model takes them), or, through
    `feed`, images as the file takes them.

    Attributes:
        interpreter: the `ai_edge_litert.interpreter.Interpreter`.
        name: the file's path, or "flatbuffer" for one opened from memory.
        deployable: the file carries TFLite Metadata (`kdeep export` and `kdeep quantize` files): it takes pixels
            its own way (`pixel_inputs`).
        normalization: its input's NormalizationOptions (mean, std), None without.
    """

    def __init__(self, interpreter: Any, name: str, flatbuffer: bytes = b"") -> None:
        from quantization import metadata

        self.interpreter = interpreter
        self.name = name
        self._allocated = False
        self.deployable = bool(flatbuffer) and metadata.metadata_buffer(flatbuffer) is not None
        self.normalization = metadata.input_normalization(flatbuffer) if self.deployable else None

    def feed(self, images: np.ndarray, input_range: tuple[float, float] = UNIT_RANGE) -> np.ndarray:
        """Images (uint8 pixels, or floats in [0, 1]) as this file takes them: a deployable file through
        `pixel_inputs`, any other scaled into `input_range` (the Keras model's, `kdeep.data.scale_pixels`)."""
        images = np.asarray(images)
        if not self.deployable:
            return scale_pixels(images, input_range)
        if np.issubdtype(images.dtype, np.floating):
            images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
        return pixel_inputs(images, self.input_detail(), self.normalization)

    def input_detail(self) -> dict:
        """The (first) input tensor's details: index, shape, dtype, quantization."""
        return self.interpreter.get_input_details()[0]

    def output_detail(self) -> dict:
        """The (first) output tensor's details."""
        return self.interpreter.get_output_details()[0]

    def tensor_details(self) -> list[dict]:
        """Every tensor's details (name, index, shape, dtype, quantization)."""
        return self.interpreter.get_tensor_details()

    def ops(self) -> list[dict]:
        """Every op: {"op_name", "inputs", "outputs", ...} (tensor indices), in graph order."""
        return self.interpreter._get_ops_details()  # the only way LiteRT's Python API lists ops

    def signature(self) -> tuple[str, str]:
        """(signature key, input name) of the model's first signature."""
        signatures = self.interpreter.get_signature_list()
        key = next(iter(signatures))
        return key, signatures[key]["inputs"][0]

    def set_input(self, inputs: np.ndarray) -> None:
        """Sets the input batch (quantized for an integer input), resizing the input tensor to its shape."""
        detail = self.input_detail()
        if tuple(detail["shape"]) != tuple(inputs.shape):
            self.interpreter.resize_tensor_input(detail["index"], list(inputs.shape))
            self._allocated = False
        if not self._allocated:
            with silenced():  # the XNNPACK delegate announces itself here
                self.interpreter.allocate_tensors()
            self._allocated = True
            detail = self.input_detail()
        self.interpreter.set_tensor(detail["index"], quantize_input(inputs, detail))

    def invoke(self) -> None:
        """Runs the model on the input set last."""
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        """The output of the last invoke, float32 (dequantized for an integer output)."""
        detail = self.output_detail()
        return dequantize(self.interpreter.get_tensor(detail["index"]), detail)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """One invoke on a batch of float model inputs; the float32 outputs."""
        self.set_input(inputs)
        self.invoke()
        return self.output()

    def value(self, index: int) -> np.ndarray:
        """A tensor's raw values after an invoke (a copy), by index."""
        return np.asarray(self.interpreter.get_tensor(index))

    def tensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Float values of the named tensors after an invoke (integer tensors dequantized); names the model does
        not hold are left out. Needs a runner opened with `keep_tensors`."""
        by_name = {t["name"]: t for t in self.tensor_details()}
        return {name: dequantize(self.value(by_name[name]["index"]), by_name[name]) for name in names
                if name in by_name}


def open_model(source: Source, *, num_threads: int | None = None, keep_tensors: bool = False) -> Runner:
    """Opens a LiteRT model in `ai_edge_litert.interpreter.Interpreter`.

    Args:
        source: a .tflite file, or flatbuffer bytes.
        num_threads: interpreter threads (None: LiteRT's default).
        keep_tensors: keep every intermediate tensor readable after an invoke; runs LiteRT's builtin kernels, as
            the XNNPACK delegate does not write the intermediate tensors of its subgraphs.

    Raises:
        ArtifactError: a file that is missing, or that LiteRT cannot read (truncated, corrupt, not a model).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    options: dict[str, Any] = {} if num_threads is None else {"num_threads": num_threads}
    if keep_tensors:
        options.update(experimental_preserve_all_tensors=True,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if isinstance(source, bytes):
        with silenced():
            return Runner(Interpreter(model_content=source, **options), "flatbuffer", source)
    path = io.resolve_tflite(source)
    try:
        with silenced():
            interpreter = Interpreter(model_path=str(path), **options)
    except (ValueError, RuntimeError) as error:
        raise io.unreadable_tflite(path, error) from None
    return Runner(interpreter, str(path), path.read_bytes())


def predict(source: Source, images: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
            batch_size: int = SCORING_BATCH, num_threads: int = 2) -> np.ndarray:
    """Runs the model on every image, `batch_size` images per invoke (the last batch zero-padded).

    Args:
        source: the .tflite file (or flatbuffer bytes).
        images: uint8 pixels (N, H, W, C), scaled into `input_range` (the Keras model's contract range); float
            images are taken as in [0, 1] and mapped the same way, so with the default range they are passed as
            they are (`kdeep.data.scale_pixels`). A deployable file (TFLite Metadata) takes them as its metadata
            says (`pixel_inputs`).
        input_range: the (low, high) the model's input spans.
        batch_size: images per invoke.
        num_threads: interpreter threads.

    Returns:
        Float32 outputs, one row per image (dequantized for an integer output).
    """
    runner = open_model(source, num_threads=num_threads)
    x = runner.feed(images, input_range)
    batch = min(batch_size, len(x))
    outputs = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.pad(chunk, [(0, batch - len(chunk))] + [(0, 0)] * (x.ndim - 1))
        outputs.append(runner.run(padded)[:len(chunk)])
    return np.concatenate(outputs)


def latency(source: Source, image: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
            num_threads: int = 1, runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP,
            max_seconds: float | None = LATENCY_SECONDS, builtin: bool = False) -> Latency:
    """Batch-1 latency of one invoke (`kdeep.timing.time_calls`: warm-up, then up to `runs` timed invokes, fewer
    (`LATENCY_MIN_RUNS` at least) once they took `max_seconds`; None: all `runs`).

    Args:
        source: the .tflite file (or flatbuffer bytes).
        image: one image (H, W, C), as `predict` takes images.
        input_range: the model's input range.
        num_threads: interpreter threads.
        runs, warmup: timed and untimed invokes.
        max_seconds: the timing budget (seconds of timed invokes), or None.
        builtin: time LiteRT's builtin kernels alone, without the XNNPACK delegate (as `open_model(keep_tensors=
            True)` runs them): what an op XNNPACK does not take runs on.
    """
    runner = open_model(source, num_threads=num_threads, keep_tensors=builtin)
    runner.set_input(runner.feed(np.asarray(image)[None], input_range))
    timings = time_calls(runner.invoke, runs=runs, warmup=warmup, max_seconds=max_seconds,
                         min_runs=min(runs, LATENCY_MIN_RUNS))
    return Latency(median_us=timings.median * 1e6, p90_us=timings.p90 * 1e6, runs=timings.runs)


def latencies(source: Source, image: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
              runs: int = LATENCY_RUNS) -> dict[str, Latency]:
    """Batch-1 latency at each of `THREADS` thread counts: {"1": Latency, "2": Latency}."""
    return {str(t): latency(source, image, input_range=input_range, num_threads=t, runs=runs) for t in THREADS}


def tensors(source: Source, images: np.ndarray, names: Sequence[str], *,
            input_range: tuple[float, float] = UNIT_RANGE) -> dict[str, np.ndarray]:
    """Float values of the named tensors after one invoke on a whole batch, on LiteRT's builtin kernels.

    Args:
        source: the .tflite file (or flatbuffer bytes).
        images: one batch, as `predict` takes images (uint8 pixels, or floats in [0, 1]).
        names: tensor names; those the model does not hold are left out of the result.
        input_range: the model's input range.
    """
    runner = open_model(source, keep_tensors=True)
    runner.run(runner.feed(images, input_range))
    return runner.tensors(names)


def check_runs(flatbuffer: bytes, name: str) -> None:
    """Invokes a model once on a zero input in LiteRT's default CPU setup (XNNPACK).

    Raises:
        QuantizationError: LiteRT cannot prepare or run it (e.g. a weight type its CPU kernels lack).
    """
    try:
        runner = open_model(flatbuffer)
        runner.set_input(np.zeros(runner.input_detail()["shape"], np.float32))
        runner.invoke()
    except (RuntimeError, ValueError) as error:
        raise QuantizationError(f"{name} is not runnable on LiteRT's CPU kernels: {reason(error)}") from error
