"""What a layer's inputs look like to its kernel: statistics of its im2col patches on calibration images.

A Conv2D or Dense output is P @ W, with P the layer's input unrolled into one row of K = kh * kw * c_in taps per
output position (the taps in the kernel's own order) and W the kernel as K x C_out. The weight algorithms compare
the float layer, P @ W, with the quantized network's, Q @ W~, where Q is the same layer's input in a copy whose
earlier layers are already quantized (AdaRound's "asymmetric reconstruction"; Q = P when nothing before it is).
The output's mean squared error is tr(W~^T (Q^T Q / N) W~) - 2 tr(W~^T (Q^T P / N) W) + tr(W^T (P^T P / N) W)
(AdaRound); bias correction takes the float inputs' mean row (a weight change dW moves the output's mean by
mean(P) @ dW). Four statistics over the calibration patches hold all they need. Other layers (depthwise,
transposed or grouped convolutions, 1-D and 3-D ones) get none: the algorithms leave them at round-to-nearest.
"""
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from quantization.plan import layer_at, walk
from quantization.taps import Recorder

BATCH = 64  # calibration images per pass (bounds the patch matrix's memory)


@dataclass
class InputStats:
    """Patch statistics of one layer's input over `rows` patches: P through the float model, Q through the copy with
    the earlier layers quantized (the same arrays as P's when there is none).

    Attributes:
        mean: mean row of P, (K,).
        gram: P^T P / N, (K, K).
        quantized_gram: Q^T Q / N.
        cross: Q^T P / N.
        rows: N.
    """

    mean: np.ndarray
    gram: np.ndarray
    quantized_gram: np.ndarray
    cross: np.ndarray
    rows: int


def supported(layer: Any) -> bool:
    """True for a plain Conv2D (no groups) or a Dense layer: those whose output is patches @ kernel."""
    kind = type(layer).__name__
    if kind == "Dense":
        return True
    return kind == "Conv2D" and getattr(layer, "groups", 1) == 1 and layer.data_format == "channels_last"


def patches(layer: Any, x: Any) -> np.ndarray:
    """The layer's input `x` unrolled to rows of K taps in its kernel's order (flattened kernel = K x C_out)."""
    from keras import ops

    kernel_shape = tuple(layer.kernel.shape)
    if type(layer).__name__ == "Dense":
        return np.asarray(x, np.float32).reshape(-1, kernel_shape[0])
    rows = ops.image.extract_patches(ops.convert_to_tensor(x), size=kernel_shape[:2], strides=layer.strides,
                                     dilation_rate=layer.dilation_rate, padding=layer.padding)
    return np.asarray(rows, np.float32).reshape(-1, int(np.prod(kernel_shape[:3])))


def flat_kernel(kernel: np.ndarray) -> np.ndarray:
    """A Conv2D or Dense kernel as K x C_out."""
    kernel = np.asarray(kernel)
    return kernel.reshape(-1, kernel.shape[-1])


def recorder(model: Any) -> Recorder:
    """A `Recorder` of the inputs of every supported planned layer of `model` (for `input_statistics`)."""
    return Recorder(model, {"/".join(path): "input" for path, layer in walk(model) if supported(layer)})


def input_statistics(model: Any, keys: Sequence[str], images: np.ndarray, quantized: Recorder | None = None,
                     batch: int = BATCH) -> dict:
    """{key: InputStats} for the named (supported) planned layers of `model`, over `images`.

    Args:
        model: a functional Keras model (nested models included: keys are layer-plan keys).
        keys: plan keys of layers for which `supported` holds (others are skipped).
        images: float calibration images shaped like the model input.
        quantized: the `recorder` of a copy of `model` whose earlier layers are quantized, giving Q; None: Q = P.
        batch: images per forward pass.

    Returns:
        {key: InputStats}.
    """
    floats = recorder(model)
    keys = [key for key in keys if key in floats.sides]
    twins = None if quantized is None else quantized(images, keys, batch)
    return statistics({key: layer_at(floats.model, key) for key in keys}, floats(images, keys, batch), twins)


def statistics(layers: Mapping[str, Any], floats: Iterable[dict], twins: Iterator[dict] | None = None) -> dict:
    """{key: InputStats} of `layers` ({plan key: layer}) from their inputs recorded batch by batch (`Recorder`):
    `floats` through the float model (P), `twins` through the copy with the earlier layers quantized (Q, the same
    batches; None: Q = P)."""
    names = ("mean", "gram", "quantized_gram", "cross")
    sums: dict[str, dict[str, Any]] = {key: dict.fromkeys(names, 0.0) for key in layers}
    counts = dict.fromkeys(layers, 0)
    for found in floats:
        others = found if twins is None else next(twins)
        for key, layer in layers.items():
            p = patches(layer, found[key])
            q = p if twins is None else patches(layer, others[key])
            total = sums[key]
            total["mean"] = total["mean"] + p.sum(axis=0, dtype=np.float64)
            total["gram"] = total["gram"] + (p.T @ p).astype(np.float64)
            if twins is not None:
                total["quantized_gram"] = total["quantized_gram"] + (q.T @ q).astype(np.float64)
                total["cross"] = total["cross"] + (q.T @ p).astype(np.float64)
            counts[key] += len(p)
    stats = {}
    for key, total in sums.items():
        mean, gram = total["mean"] / counts[key], total["gram"] / counts[key]
        if twins is None:
            stats[key] = InputStats(mean, gram, gram, gram, counts[key])
        else:
            stats[key] = InputStats(mean, gram, total["quantized_gram"] / counts[key], total["cross"] / counts[key],
                                    counts[key])
    return stats
