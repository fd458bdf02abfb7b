"""AdaRound (Nagel et al. 2020): learn whether each weight rounds up or down to minimise the layer's output error.

Round-to-nearest minimises each weight's own error, not the error of the layer's output. AdaRound rounds
w / s to floor(w / s) + h, with h = clip(sigmoid(V) (ZETA - GAMMA) + GAMMA, 0, 1) learnt per weight, minimising
the layer's reconstruction error plus a regulariser that drives every h to 0 or 1 (its exponent annealed from 20
to 2 after a warm-up), then rounds h to {0, 1}.

The error is the paper's asymmetric one, ||P W - Q W~||^2 / N: the float layer on its float inputs P against the
quantized layer on Q, its inputs in the network whose earlier layers are already quantized, so each layer also
makes up for the error that reaches it. It is a quadratic in W~ whose coefficients are the patch statistics of
`quantization.layer_inputs.InputStats` (K x K matrices, K = kh * kw * c_in), so every step is a K x K by K x C_out
product in numpy, full batch (no sampling noise, no TensorFlow graph). The loss is the pre-activation one (the
paper's equation 20, without the activation function of equation 25).

The grid step is learnt with the rounding: `adaround_steps` runs AdaRound at `STEPS` multiples of the step whose
round-to-nearest has the least output error (`output_scale`) and keeps, per output channel (the error is a sum of
independent per-channel terms), the step and rounding with the least error, round-to-nearest included.
"""
from dataclasses import dataclass

import numpy as np

from quantization.clipping import CANDIDATES, best_range, symmetric
from quantization.layer_inputs import InputStats

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (the paper's values)
ITERATIONS = 500
WARMUP = 0.2  # fraction of the iterations without the regulariser
BETA = (20.0, 2.0)  # the regulariser's exponent, annealed from the first to the second after the warm-up
LAMBDA = 0.01  # regulariser weight, against the reconstruction error normalised to 1 at round-to-nearest
LEARNING_RATE = 1e-2
STEPS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)  # multiples of `output_scale`'s step AdaRound learns at


@dataclass
class Rounding:
    """AdaRound's result for one layer.

    Attributes:
        integers: the rounded weights in grid steps (kernel / scale, rounded), shaped like the kernel.
        nearest_error: `reconstruction_error` with round-to-nearest.
        error: the same with the learnt rounding.
        flipped: fraction of weights rounded the other way from nearest.
    """

    integers: np.ndarray
    nearest_error: float
    error: float
    flipped: float


def channel_errors(kernel: np.ndarray, quantized: np.ndarray, stats: InputStats) -> np.ndarray:
    """`reconstruction_error` per output channel, shape (C,)."""
    kernel, quantized = np.asarray(kernel, np.float64), np.asarray(quantized, np.float64)
    return (np.sum(quantized * (stats.quantized_gram @ quantized), axis=0)
            - 2 * np.sum(quantized * (stats.cross @ kernel), axis=0) + np.sum(kernel * (stats.gram @ kernel), axis=0))


def reconstruction_error(kernel: np.ndarray, quantized: np.ndarray, stats: InputStats) -> float:
    """||P W - Q W~||^2 / N, the mean squared output error over the calibration patches of the quantized kernel
    `quantized` (W~) on the quantized network's inputs against the float `kernel` (W) on the float ones (both K x C,
    flattened to their K input taps)."""
    return float(np.sum(channel_errors(kernel, quantized, stats)))


def output_scale(kernel: np.ndarray, bits: int, stats: InputStats, candidates: np.ndarray = CANDIDATES) -> np.ndarray:
    """Each output channel's grid step, chosen among `candidates` x max|w| / qmax as the one whose round-to-nearest
    kernel has the least `reconstruction_error` (the layer's output error, not the weights' own: the error each
    channel's column adds is independent of the others').

    Args:
        kernel: K x C float weights.
        bits: the width.
        stats: the layer's input statistics.
        candidates: clipping ranges tried, as fractions of each channel's max|w|.

    Returns:
        The steps, shape (C,).
    """
    kernel = np.asarray(kernel, np.float64)
    peak = np.maximum(np.abs(kernel).max(axis=0), 1e-9)
    hessian, target = np.asarray(stats.quantized_gram, np.float64), np.asarray(stats.cross, np.float64) @ kernel

    def error(bound: np.ndarray) -> np.ndarray:  # the reconstruction error per channel, less its constant part
        quantized = symmetric(kernel, bound, bits)
        return np.sum(quantized * (hessian @ quantized), axis=0) - 2 * np.sum(quantized * target, axis=0)

    return best_range(peak, error, candidates) / (2 ** (bits - 1) - 1)


def _rectified_sigmoid(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h(V) and dh/dV (zero where h is clipped)."""
    sigmoid = 1.0 / (1.0 + np.exp(-v))
    raw = sigmoid * (ZETA - GAMMA) + GAMMA
    inside = (raw > 0) & (raw < 1)
    return np.clip(raw, 0.0, 1.0), np.where(inside, sigmoid * (1 - sigmoid) * (ZETA - GAMMA), 0.0)


def adaround(kernel: np.ndarray, scale: np.ndarray, bits: int, stats: InputStats, *,
             iterations: int = ITERATIONS, lam: float = LAMBDA, learning_rate: float = LEARNING_RATE) -> Rounding:
    """Learns the rounding of one layer's kernel on a symmetric per-channel grid.

    Args:
        kernel: K x C float weights (the kernel reshaped so that rows are input taps, columns output channels).
        scale: the grid step per output channel, shape (C,) or (1, C).
        bits: the width; integers lie in [-(2^(bits-1) - 1), 2^(bits-1) - 1].
        stats: the layer's input statistics (`quantization.layer_inputs.input_statistics`).
        iterations: Adam steps (full batch).
        lam: the regulariser's weight.
        learning_rate: Adam's step size on V.

    Returns:
        The `Rounding` (its integers keep each channel's largest magnitude where round-to-nearest puts it, so a
        quantizer that scales the grid to the channel's max recovers `scale`; round-to-nearest itself when the
        learnt rounding is not better on the calibration inputs).
    """
    kernel = np.asarray(kernel, np.float64)
    scale = np.asarray(scale, np.float64).reshape(1, -1)
    hessian = np.asarray(stats.quantized_gram, np.float64)
    target = np.asarray(stats.cross, np.float64) @ kernel  # (Q^T P / N) W: the gradient's fixed part
    qmax = 2 ** (bits - 1) - 1
    ratio = kernel / scale
    floor = np.floor(ratio)
    nearest = np.clip(np.round(ratio), -qmax, qmax)
    nearest_error = reconstruction_error(kernel, nearest * scale, stats)
    norm = max(nearest_error, 1e-30)
    rest = np.clip((ratio - floor - GAMMA) / (ZETA - GAMMA), 1e-4, 1 - 1e-4)
    v = np.log(rest / (1 - rest))
    m, s = np.zeros_like(v), np.zeros_like(v)
    start = int(WARMUP * iterations)
    for step in range(iterations):
        h, dh = _rectified_sigmoid(v)
        unclipped = floor + h
        inside = (unclipped >= -qmax) & (unclipped <= qmax)
        quantized = np.clip(unclipped, -qmax, qmax) * scale
        grad_h = 2 * (hessian @ quantized - target) * scale * inside / norm
        if step >= start:
            beta = BETA[1] + (BETA[0] - BETA[1]) * (1 - (step - start) / max(iterations - start, 1))
            centred = 2 * h - 1
            grad_h += lam * -beta * np.abs(centred) ** (beta - 1) * np.sign(centred) * 2 / h.size
        grad = grad_h * dh
        m = 0.9 * m + 0.1 * grad
        s = 0.999 * s + 0.001 * grad ** 2
        v -= learning_rate * (m / (1 - 0.9 ** (step + 1))) / (np.sqrt(s / (1 - 0.999 ** (step + 1))) + 1e-12)
    integers = np.clip(floor + (_rectified_sigmoid(v)[0] >= 0.5), -qmax, qmax)
    integers = _keep_channel_peaks(integers, nearest)
    error = reconstruction_error(kernel, integers * scale, stats)
    if error >= nearest_error:  # never worse than nearest on the calibration inputs (tiny kernels: the stem)
        integers, error = nearest, nearest_error
    return Rounding(integers=integers.astype(np.float32), nearest_error=nearest_error, error=error,
                    flipped=float(np.mean(integers != nearest)))


def adaround_steps(kernel: np.ndarray, bits: int, stats: InputStats, *, steps: tuple[float, ...] = STEPS,
                   iterations: int = ITERATIONS) -> tuple[Rounding, np.ndarray]:
    """AdaRound with the grid step learnt too: the rounding is learnt at each of `steps` x `output_scale`'s step
    (capped at max|w| / qmax, so each channel's peak stays on the grid's edge) and each output channel keeps the
    step and rounding with the least output error on the calibration inputs, round-to-nearest at `output_scale`'s
    step among them (so no channel is worse than nearest there).

    Args:
        kernel: K x C float weights.
        bits: the width.
        stats: the layer's input statistics.
        steps: the multiples of `output_scale`'s step tried.
        iterations: Adam steps of each AdaRound.

    Returns:
        (the `Rounding`, its errors summed over channels and `flipped` against nearest at each channel's own
        step; the steps, shape (C,)).
    """
    kernel = np.asarray(kernel, np.float64)
    qmax = 2 ** (bits - 1) - 1
    base = output_scale(kernel, bits, stats)
    cap = np.maximum(np.abs(kernel).max(axis=0), 1e-9) / qmax
    integers = np.clip(np.round(kernel / base), -qmax, qmax)
    errors = channel_errors(kernel, integers * base, stats)
    nearest_error, scale = float(np.sum(errors)), base.copy()
    for multiple in steps:
        candidate = np.minimum(base * multiple, cap)
        rounding = adaround(kernel, candidate, bits, stats, iterations=iterations)
        candidate_errors = channel_errors(kernel, rounding.integers * candidate, stats)
        better = candidate_errors < errors
        integers[:, better], scale[better] = rounding.integers[:, better], candidate[better]
        errors = np.where(better, candidate_errors, errors)
    nearest = np.clip(np.round(kernel / scale), -qmax, qmax)
    return Rounding(integers=integers.astype(np.float32), nearest_error=nearest_error, error=float(np.sum(errors)),
                    flipped=float(np.mean(integers != nearest))), scale


def _keep_channel_peaks(integers: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """`integers` with each channel's largest-magnitude nearest value restored where the learnt rounding lowered
    the channel's peak (a max-scaled quantizer would otherwise pick another grid step)."""
    integers = integers.copy()
    lowered = np.abs(integers).max(axis=0) < np.abs(nearest).max(axis=0)
    for channel in np.flatnonzero(lowered):
        row = int(np.argmax(np.abs(nearest[:, channel])))
        integers[row, channel] = nearest[row, channel]
    return integers
