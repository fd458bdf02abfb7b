"""LiteRT in one place: the only module that opens `ai_edge_litert` models. Batched predict (each tensor's own
quantization applied), intermediate tensors, batch-1 latency, and the check that a new file runs.

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
THREADS = (1, 2)  # the thread counts latency is reported for

Source = str | os.PathLike | bytes  # a .tflite file, or a flatbuffer in memory


@dataclass(frozen=True)
class Latency:
    """Batch-1 latency of one invoke, in microseconds."""

    median_us: float
    p90_us: float

    def to_dict(self) -> dict[str, float]:
        """{"median_us", "p90_us"}."""
        return {"median_us": self.median_us, "p90_us": self.p90_us}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Latency:
        """Reads what `to_dict` wrote."""
        return cls(float(data["median_us"]), float(data["p90_us"]))


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


class Runner:
    """An opened LiteRT model fed float model inputs (already scaled as the Keras model takes them).

    Attributes:
        interpreter: the `ai_edge_litert.interpreter.Interpreter`.
        name: the file's path, or "flatbuffer" for one opened from memory.
    """

    def __init__(self, interpreter: Any, name: str) -> None:
        self.interpreter = interpreter
        self.name = name
        self._allocated = False

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
            return Runner(Interpreter(model_content=source, **options), "flatbuffer")
    path = io.resolve_tflite(source)
    try:
        with silenced():
            return Runner(Interpreter(model_path=str(path), **options), str(path))
    except (ValueError, RuntimeError) as error:
        raise io.unreadable_tflite(path, error) from None


def predict(source: Source, images: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
            batch_size: int = SCORING_BATCH, num_threads: int = 2) -> np.ndarray:
    """Runs the model on every image, `batch_size` images per invoke (the last batch zero-padded).

    Args:
        source: the .tflite file (or flatbuffer bytes).
        images: uint8 pixels (N, H, W, C), scaled into `input_range` (the Keras model's contract range); float
            images are taken as in [0, 1] and mapped the same way, so with the default range they are passed as
            they are (`kdeep.data.scale_pixels`).
        input_range: the (low, high) the model's input spans.
        batch_size: images per invoke.
        num_threads: interpreter threads.

    Returns:
        Float32 outputs, one row per image (dequantized for an integer output).
    """
    return predict_inputs(source, scale_pixels(np.asarray(images), input_range), batch_size=batch_size,
                          num_threads=num_threads)


def predict_inputs(source: Source, inputs: np.ndarray, *, batch_size: int = SCORING_BATCH,
                   num_threads: int = 2) -> np.ndarray:
    """Runs the model on prepared inputs (float model inputs, or the input tensor's own integer values, as
    `quantize_input` takes them), `batch_size` per invoke (the last batch zero-padded); float32 outputs."""
    x = np.asarray(inputs)
    runner = open_model(source, num_threads=num_threads)
    batch = min(batch_size, len(x))
    outputs = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.pad(chunk, [(0, batch - len(chunk))] + [(0, 0)] * (x.ndim - 1))
        outputs.append(runner.run(padded)[:len(chunk)])
    return np.concatenate(outputs)


def latency(source: Source, image: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
            num_threads: int = 1, runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP) -> Latency:
    """Batch-1 latency of one invoke (`kdeep.timing.time_calls`: warm-up, then `runs` timed invokes).

    Args:
        source: the .tflite file (or flatbuffer bytes).
        image: one image (H, W, C), as `predict` takes images.
        input_range: the model's input range.
        num_threads: interpreter threads.
        runs, warmup: timed and untimed invokes.
    """
    return input_latency(source, scale_pixels(np.asarray(image)[None], input_range), num_threads=num_threads,
                         runs=runs, warmup=warmup)


def input_latency(source: Source, inputs: np.ndarray, *, num_threads: int = 1, runs: int = LATENCY_RUNS,
                  warmup: int = LATENCY_WARMUP) -> Latency:
    """Latency of one invoke on prepared inputs (a batch of one, as `predict_inputs` takes inputs)."""
    runner = open_model(source, num_threads=num_threads)
    runner.set_input(np.asarray(inputs))
    timings = time_calls(runner.invoke, runs=runs, warmup=warmup)
    return Latency(median_us=timings.median * 1e6, p90_us=timings.p90 * 1e6)


def latencies(source: Source, image: np.ndarray, *, input_range: tuple[float, float] = UNIT_RANGE,
              runs: int = LATENCY_RUNS) -> dict[str, Latency]:
    """Batch-1 latency at each of `THREADS` thread counts: {"1": Latency, "2": Latency}."""
    return {str(t): latency(source, image, input_range=input_range, num_threads=t, runs=runs) for t in THREADS}


def tensors(source: Source, inputs: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Float values of the named tensors after one invoke on a whole batch, on LiteRT's builtin kernels.

    Args:
        source: the .tflite file (or flatbuffer bytes).
        inputs: float model inputs (already scaled as the model takes them), one batch.
        names: tensor names; those the model does not hold are left out of the result.
    """
    runner = open_model(source, keep_tensors=True)
    runner.run(np.asarray(inputs, np.float32))
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
