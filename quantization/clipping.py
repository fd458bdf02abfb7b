"""Weight clipping below 5 bits: each output channel's grid spans the range that minimises its rounding error.

A symmetric grid scaled to max|w| spends its few low-bit levels on a channel's outliers: at 2 bits (levels
{-s, 0, s}, s = max|w|) most weights round to 0. Below 5 bits kdeep instead clips each output channel at the
range c that minimises sum((w - Q_c(w))^2), found by trying `CANDIDATES` x max|w| on the channel's own weights
(the criterion the LiteRT quantizer's OCTAV solves by Newton iterations; a plain search is exact on the grid and has
no 2-bit special case). Weights clipped to [-c, c] and quantized on a grid scaled
to their own max are exactly Q_c(w), so the LiteRT export clips the Keras weights (`clipped_model`), converts
them to a float32 .tflite and lets the LiteRT quantizer's min/max recipe quantize them; the simulator
(`quantization.sweep.quantize_kernel`) rounds with the same ranges. At 5 bits and more the grid spans max|w|, as
LiteRT's converter does for its int8 variants.
"""
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from quantization.plan import plan

CLIP_BITS = 4  # widths at or below this are clipped
CANDIDATES = np.linspace(0.05, 1.0, 96)  # clipping ranges tried, as fractions of each channel's max|w|


def reduce_axes(kernel: np.ndarray, channel_axes: Sequence[int]) -> tuple[int, ...]:
    """The axes of `kernel` that do not index an output channel (one scale is shared over them)."""
    keep = {a % kernel.ndim for a in channel_axes}
    return tuple(a for a in range(kernel.ndim) if a not in keep)


def clips(bits: int | None) -> bool:
    """True for a width whose grid is clipped (2 to `CLIP_BITS` bits; 1 bit binarises instead)."""
    return bits is not None and 2 <= bits <= CLIP_BITS


def clip_range(kernel: np.ndarray, bits: int, channel_axes: Sequence[int] = (-1,)) -> np.ndarray:
    """Per-channel range c minimising the squared error of symmetric `bits`-wide rounding (max|w| from 5 bits up).

    Args:
        kernel: float weights.
        bits: the weight width (2 or more).
        channel_axes: the axes that index a channel.

    Returns:
        c, shaped like `kernel` reduced over the other axes (keepdims), at least 1e-9.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    reduce = reduce_axes(kernel, channel_axes)
    peak = np.maximum(np.abs(kernel).max(axis=reduce, keepdims=True), 1e-9)
    if not clips(bits):
        return peak
    return best_range(peak, lambda c: np.sum((symmetric(kernel, c, bits) - kernel) ** 2, axis=reduce, keepdims=True))


def symmetric(kernel: np.ndarray, bound: np.ndarray, bits: int) -> np.ndarray:
    """`kernel` rounded to nearest on the symmetric `bits`-wide grid spanning [-bound, bound] (per channel)."""
    qmax = 2 ** (bits - 1) - 1
    step = bound / qmax
    return np.clip(np.round(kernel / step), -qmax, qmax) * step


def best_range(peak: np.ndarray, error: Callable[[np.ndarray], np.ndarray],
               candidates: np.ndarray = CANDIDATES) -> np.ndarray:
    """Per channel, the range among `candidates` x `peak` with the least `error(ranges)` (an array shaped like
    `peak`: each channel's error for its own range; channels are chosen independently).

    Args:
        peak: each channel's max|w|.
        error: the error of rounding every channel on the grid spanning the given ranges.
        candidates: the fractions of `peak` tried.

    Returns:
        The chosen ranges, shaped like `peak`.
    """
    best, best_error = peak, np.full(np.shape(peak), np.inf)
    for fraction in candidates:
        value = error(peak * fraction)
        better = value < best_error
        best, best_error = np.where(better, peak * fraction, best), np.where(better, value, best_error)
    return best


def clipped_model(model: Any, weight_bits: Mapping[str, int | None], default_bits: int | None = None) -> Any:
    """A copy of `model` whose kernels are clipped to `clip_range` for the layers quantized below 5 bits.

    Args:
        model: the float Keras model (never modified).
        weight_bits: {plan key (`quantization.plan`; nested layers included): width or None}; planned layers not
            named get `default_bits`.
        default_bits: width of the other planned layers (None: float).

    Returns:
        `model` itself when no layer is clipped, else a clone (same layer names) with clipped kernels.
    """
    import keras

    chosen = [(entry, weight_bits.get(entry.key, default_bits)) for entry in plan(model)]
    chosen = [(entry, bits) for entry, bits in chosen if clips(bits)]
    if not chosen:
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for entry, bits in chosen:
        kernel = np.asarray(entry.kernel(model))
        bound = clip_range(kernel, bits, entry.channel_axes)
        entry.kernel(copy).assign(np.clip(kernel, -bound, bound))
    return copy
