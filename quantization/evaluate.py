"""LiteRT scoring of a .tflite file: accuracy, agreement with the float model, size and batch-1 latency."""
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kdeep.contract import probabilities
from kdeep.errors import QuantizationError

SCORING_BATCH = 1000
LATENCY_RUNS = 200
LATENCY_WARMUP = 20
THREADS = (1, 2)


def interpreter(tflite_path: str | os.PathLike, num_threads: int = 1) -> Any:
    """Opens a .tflite file in `ai_edge_litert.interpreter.Interpreter`.

    Raises:
        QuantizationError: the file is missing or is not a valid LiteRT model.
    """
    from ai_edge_litert.interpreter import Interpreter

    path = Path(tflite_path)
    if not path.is_file():
        raise QuantizationError(f"{path} does not exist; pass a .tflite file written by quantization.quantize")
    try:
        return Interpreter(model_path=str(path), num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        raise QuantizationError(f"{path} is not a valid LiteRT model ({str(error).strip().splitlines()[0]}); "
                                "re-create it with quantization.quantize") from error


def _quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float images -> the input tensor's dtype, applying its scale/zero-point for integer inputs."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """The output tensor -> float32, applying its scale/zero-point for integer outputs."""
    if not np.issubdtype(y.dtype, np.integer):
        return y.astype(np.float32, copy=False)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def predict(tflite_path: str | os.PathLike, x: np.ndarray, *, batch_size: int = SCORING_BATCH,
            num_threads: int = 2) -> np.ndarray:
    """Runs the model on every image, `batch_size` images per invoke (the input tensor resized to the batch).

    Args:
        tflite_path: the .tflite file.
        x: float images, as the float Keras model takes them.
        batch_size: images per invoke (the last batch is zero-padded).
        num_threads: interpreter threads.

    Returns:
        Float32 outputs, one row per image (dequantized for integer outputs).
    """
    runner = interpreter(tflite_path, num_threads)
    input_detail, output_detail = runner.get_input_details()[0], runner.get_output_details()[0]
    batch = min(batch_size, len(x))
    runner.resize_tensor_input(input_detail["index"], [batch, *x.shape[1:]])
    runner.allocate_tensors()
    input_detail, output_detail = runner.get_input_details()[0], runner.get_output_details()[0]
    outputs = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.pad(chunk, [(0, batch - len(chunk))] + [(0, 0)] * (x.ndim - 1))  # the last batch may be short
        runner.set_tensor(input_detail["index"], _quantize_input(padded, input_detail))
        runner.invoke()
        outputs.append(_dequantize_output(runner.get_tensor(output_detail["index"]), output_detail)[:len(chunk)])
    return np.concatenate(outputs)


def latency(tflite_path: str | os.PathLike, image: np.ndarray, *, num_threads: int = 1, runs: int = LATENCY_RUNS,
            warmup: int = LATENCY_WARMUP) -> dict[str, float]:
    """Batch-1 latency of one invoke after warm-up.

    Returns:
        {"median_us", "p90_us"} over `runs` timed invokes.
    """
    runner = interpreter(tflite_path, num_threads)
    runner.allocate_tensors()
    input_detail = runner.get_input_details()[0]
    runner.set_tensor(input_detail["index"], _quantize_input(image[None], input_detail))
    for _ in range(warmup):
        runner.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        runner.invoke()
        times[i] = time.perf_counter_ns() - start
    return {"median_us": float(np.median(times) / 1e3), "p90_us": float(np.percentile(times, 90) / 1e3)}


def evaluate(tflite_path: str | os.PathLike, x: np.ndarray, y: np.ndarray, *, reference_model: Any = None,
             output: str = "probabilities", latency_runs: int = LATENCY_RUNS) -> dict:
    """Scores a LiteRT model on labelled images.

    Args:
        tflite_path: the .tflite file.
        x: float images as the float Keras model takes them; y: integer labels.
        reference_model: the float Keras model, or its outputs on `x` (an array), to measure agreement.
        output: what the model outputs, "probabilities" or "logits" (its contract's `output`).
        latency_runs: timed batch-1 invokes per thread count (after warm-up).

    Returns:
        A dict: n (images scored), accuracy, size_bytes, scoring_seconds (whole set, batched, 2 threads),
        latency_us {threads: {median_us, p90_us}}, and with a reference: reference_accuracy, agreement (top-1),
        mean_abs_prob_diff, max_abs_prob_diff.

    Raises:
        QuantizationError: the file is not a model, or `x`/`y` do not match.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) == 0 or len(x) != len(y):
        raise QuantizationError(f"evaluate needs as many labels as images (got {len(x)} images, {len(y)} labels)")
    start = time.perf_counter()
    outputs = predict(tflite_path, x)
    scoring_seconds = time.perf_counter() - start
    predicted = outputs.argmax(axis=-1)
    result = {
        "n": int(len(x)),
        "accuracy": float(np.mean(predicted == y)),
        "size_bytes": Path(tflite_path).stat().st_size,
        "scoring_seconds": scoring_seconds,
        "latency_us": {str(t): latency(tflite_path, x[0], num_threads=t, runs=latency_runs) for t in THREADS},
    }
    if reference_model is not None:
        reference = (np.asarray(reference_model) if isinstance(reference_model, np.ndarray)
                     else reference_model.predict(x, batch_size=SCORING_BATCH, verbose=0))
        if len(reference) != len(x):
            raise QuantizationError(f"reference outputs cover {len(reference)} images, not the {len(x)} scored")
        difference = np.abs(probabilities(outputs, output) - probabilities(reference, output))
        result.update(
            reference_accuracy=float(np.mean(reference.argmax(axis=-1) == y)),
            agreement=float(np.mean(predicted == reference.argmax(axis=-1))),
            mean_abs_prob_diff=float(difference.mean()),
            max_abs_prob_diff=float(difference.max()),
        )
    return result
