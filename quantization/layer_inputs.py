"""What a layer's inputs look like to its kernel: the mean and Gram matrix of its im2col patches on calibration images.

A Conv2D or Dense output is P @ W, with P the layer's input unrolled into one row of K = kh * kw * c_in taps per
output position (the taps in the kernel's own order) and W the kernel as K x C_out. Two statistics of P over the
calibration images serve the weight algorithms: its mean row (bias correction: a weight change dW moves the
output's mean by mean @ dW) and H = P^T P / N (AdaRound: the output's mean squared error is tr(dW^T H dW)).
Both come from the float model. Other layers (depthwise, transposed or grouped convolutions, 1-D and 3-D ones)
get none: the algorithms leave them at round-to-nearest.
"""
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from quantization.plan import layer_at
from quantization.taps import record

BATCH = 64  # calibration images per pass (bounds the patch matrix's memory)


@dataclass
class InputStats:
    """Patch statistics of one layer's input: `mean` (K,) and `gram` (K, K), over `rows` patches."""

    mean: np.ndarray
    gram: np.ndarray
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


def input_statistics(model: Any, keys: Sequence[str], images: np.ndarray, batch: int = BATCH) -> dict:
    """{key: InputStats} for the named (supported) planned layers of `model`, over `images` through the float model.

    Args:
        model: a functional Keras model (nested models included: keys are layer-plan keys).
        keys: plan keys of layers for which `supported` holds (others are skipped).
        images: float calibration images shaped like the model input.
        batch: images per forward pass.

    Returns:
        {key: InputStats}.
    """
    layers = {key: layer_at(model, key) for key in keys}
    layers = {key: layer for key, layer in layers.items() if supported(layer)}
    if not layers:
        return {}
    sums: dict[str, Any] = {key: 0.0 for key in layers}
    grams: dict[str, Any] = {key: 0.0 for key in layers}
    counts = {key: 0 for key in layers}
    for values in record(model, {key: "input" for key in layers}, images, batch):
        for key, value in values.items():
            rows = patches(layers[key], value)
            sums[key] = sums[key] + rows.sum(axis=0, dtype=np.float64)
            grams[key] = grams[key] + (rows.T @ rows).astype(np.float64)
            counts[key] += len(rows)
    return {key: InputStats(mean=sums[key] / counts[key], gram=grams[key] / counts[key], rows=counts[key])
            for key in layers}
