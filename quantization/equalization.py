"""Cross-layer equalization (Nagel et al. 2019, data-free quantization): rescale channels between two layers.

For a layer A whose output reaches a layer B only through positively homogeneous steps (batch norm right after
A, ReLU, max pooling, zero padding, dropout), A's output channel i can be divided by s_i > 0 and B's input
channel i multiplied by s_i without changing the float function: ReLU(x / s) = ReLU(x) / s. With
s_i = sqrt(r_A,i / r_B,i), r being A's output-channel and B's input-channel weight ranges (A's with its batch
norm folded in), both become sqrt(r_A,i r_B,i): B's kernel then spends no grid on a few input channels that
carry large weights, and A's channels are no longer spread over decades. Pairs are equalized in turn until
the scales settle (chains such as conv1 -> conv2 -> conv3 share layers). With batch norm after A, the scale is
applied to its gamma and beta (A's own kernel keeps its values; the folded kernel is what LiteRT quantizes).
Pairs through a residual addition, a concatenation, a flatten or any other step are not formed.
"""
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantization.layer_inputs import supported
from quantization.plan import consumers, layer_at, walk

ROUNDS = 20  # passes over the pairs at most
TOLERANCE = 1e-3  # stop when every scale of a pass is within this of 1 (in log)
_HOMOGENEOUS = ("MaxPooling2D", "ZeroPadding2D", "Dropout", "ReLU")


@dataclass
class Equalized:
    """The equalized copy of a model and the pairs it rescaled ([(A, B, batch norm between or None)], by layer-plan
    key: "outer/inner" inside a nested model)."""

    model: Any
    pairs: list[tuple[str, str, str | None]] = field(default_factory=list)
    rounds: int = 0


def _relu_or_linear(layer: Any) -> bool:
    """True when the layer's own activation is positively homogeneous (ReLU or none)."""
    return getattr(getattr(layer, "activation", None), "__name__", "linear") in ("relu", "linear")


def find_pairs(model: Any) -> list[tuple[str, str, str | None]]:
    """[(A, B, batch norm right after A or None)] by key for every pair CLE may rescale (see the module docstring),
    nested models included (a pair lies inside one model)."""
    pairs = []
    for path, first in walk(model):
        if not (supported(first) and _relu_or_linear(first)):
            continue
        batchnorm, current = None, first
        while True:
            takers = consumers(current)
            if len(takers) != 1:
                break
            nxt = takers[0]
            kind = type(nxt).__name__
            if kind == "BatchNormalization" and current is first and nxt.scale and nxt.center:
                batchnorm, current = nxt.name, nxt
            elif (kind in _HOMOGENEOUS and getattr(nxt, "max_value", None) is None
                  and not getattr(nxt, "threshold", 0)) or (kind == "Activation" and _relu_or_linear(nxt)):
                current = nxt
            elif supported(nxt) and len(nxt.input.shape) == len(first.output.shape):
                key = "/".join(path[:-1] + (nxt.name,))
                pairs.append(("/".join(path), key, None if batchnorm is None else "/".join(path[:-1] + (batchnorm,))))
                break
            else:
                break
    return pairs


def _output_range(model: Any, first: str, batchnorm: str | None) -> np.ndarray:
    """Per output channel, max |w| of A's kernel with its batch norm's scale folded in."""
    kernel = np.asarray(layer_at(model, first).kernel)
    peak = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    if batchnorm is None:
        return peak
    bn = layer_at(model, batchnorm)
    return peak * np.abs(np.asarray(bn.gamma)) / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)


def _input_range(model: Any, second: str) -> np.ndarray:
    """Per input channel, max |w| of B's kernel."""
    kernel = np.asarray(layer_at(model, second).kernel)
    return np.abs(np.moveaxis(kernel, -2, -1).reshape(-1, kernel.shape[-2])).max(axis=0)


def pair_ranges(model: Any, pair: tuple[str, str, str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(A's output-channel ranges, B's input-channel ranges) of a pair: equal after equalization."""
    first, second, batchnorm = pair
    return _output_range(model, first, batchnorm), _input_range(model, second)


def _rescale(model: Any, pair: tuple[str, str, str | None]) -> float:
    """Equalizes one pair in place; returns max |log s| (0 when nothing moved)."""
    first, second, batchnorm = pair
    r_out, r_in = pair_ranges(model, pair)
    usable = (r_out > 0) & (r_in > 0)
    scale = np.where(usable, np.sqrt(np.where(usable, r_out / np.where(usable, r_in, 1), 1)), 1.0).astype(np.float32)
    if batchnorm is not None:
        bn = layer_at(model, batchnorm)
        bn.gamma.assign(np.asarray(bn.gamma) / scale)
        bn.beta.assign(np.asarray(bn.beta) / scale)
    else:
        layer = layer_at(model, first)
        layer.kernel.assign(np.asarray(layer.kernel) / scale)
        if layer.bias is not None:
            layer.bias.assign(np.asarray(layer.bias) / scale)
    layer = layer_at(model, second)
    kernel = np.asarray(layer.kernel)
    shape = [1] * kernel.ndim
    shape[-2] = -1
    layer.kernel.assign(kernel * scale.reshape(shape))
    return float(np.max(np.abs(np.log(scale))))


def equalize(model: Any, *, rounds: int = ROUNDS, tolerance: float = TOLERANCE) -> Equalized:
    """A copy of `model` with every CLE pair equalized (the float function unchanged up to rounding).

    Args:
        model: a functional Keras model (never modified).
        rounds: passes over the pairs at most.
        tolerance: stop after a pass whose scales are all within exp(+-tolerance) of 1.

    Returns:
        `Equalized` (the copy is `model` itself when no pair exists).
    """
    import keras

    pairs = find_pairs(model)
    if not pairs:
        return Equalized(model)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    done = 0
    for done in range(1, rounds + 1):
        if max(_rescale(copy, pair) for pair in pairs) < tolerance:
            break
    return Equalized(copy, pairs, done)
