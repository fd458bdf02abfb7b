"""Bias correction (Nagel et al. 2019; Banner et al. 2019): undo the mean output shift that weight rounding causes.

Quantizing a kernel W to W~ moves each output channel's mean by mean(x) @ (W~ - W), a bias error that rounding
noise does not average away (it is the same on every image). kdeep measures mean(x) on the layer's calibration
patches through the float model (`quantization.layer_inputs`) and subtracts the shift where the network can hold
it: from the layer's own bias, or, for a convolution without bias whose only consumer is batch normalization
(ResNets), by adding it to the batch norm's moving mean (BN(y + m) with mean mu + m equals BN(y) with mean mu).
Both survive the export: LiteRT folds the batch norm into the convolution's bias. A layer with neither keeps
its shift (`target` returns None).
"""
from typing import Any

import numpy as np

from quantization.layer_inputs import flat_kernel
from quantization.plan import consumers, find_layer


def target(model: Any, key: str) -> tuple[str, str, float] | None:
    """Where planned layer `key`'s output shift is absorbed: (key, attribute, sign) of the variable whose corrected
    value is float_value + sign * shift; None when the layer has no bias and does not feed batch normalization
    alone (keys are plan-style: "outer/inner" inside a nested model)."""
    path = tuple(key.split("/"))
    layer = find_layer(model, path)
    if getattr(layer, "bias", None) is not None:
        return key, "bias", -1.0
    takers = consumers(layer)
    batchnorm = takers[0] if len(takers) == 1 else None
    if batchnorm is None or type(batchnorm).__name__ != "BatchNormalization":
        return None
    axis = batchnorm.axis if isinstance(batchnorm.axis, int) else batchnorm.axis[0]
    rank = len(batchnorm.input.shape)
    return ("/".join((*path[:-1], batchnorm.name)), "moving_mean", 1.0) if axis % rank == rank - 1 else None


def output_shift(float_kernel: np.ndarray, quantized_kernel: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Each output channel's mean shift, mean(x) @ (W~ - W), for a Conv2D or Dense kernel."""
    delta = flat_kernel(quantized_kernel).astype(np.float64) - flat_kernel(float_kernel)
    return (np.asarray(mean, np.float64) @ delta).astype(np.float32)
