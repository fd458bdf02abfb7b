"""Simulated quantization in Keras: per-channel weights, per-tensor activations at any width; the bit-width sweep.

One `Simulator` serves the sweep, the per-layer sensitivity and the mixed-precision search: it quantizes a chosen
set of layers' weights at chosen widths (the rest stay float) and, optionally, every activation at one width.

- Weights: per output channel, symmetric, as LiteRT and the LiteRT quantizer store them:
  scale = c / (2^(b-1) - 1), q = clip(round(w / scale), -(2^(b-1) - 1), 2^(b-1) - 1), with c = max|w| from 5 bits
  up and, at 2-4 bits, the range that minimises the channel's rounding error (`quantization.clipping`; kdeep's
  LiteRT exports clip the weights the same way). One bit has no symmetric grid (2^0 - 1 = 0 levels), so 1-bit
  weights are binarised: sign(w) * mean|w| per channel (XNOR-Net's scale).
  Batch-norm folding scales each output channel, which per-channel quantization commutes with, so quantizing the
  unfolded kernel gives the folded kernel's grid.
- Activations: per tensor, asymmetric, from min/max over calibration images (0 always inside the range), as the
  TFLite converter calibrates (a softmax output on LiteRT's fixed grid, scale 1/256); applied to the input and to
  each tensor LiteRT keeps as its own int8 tensor: not to
  a conv/dense output that feeds only a ReLU or batch norm (fused into the op), nor to the output of layers that
  only move values (pooling by max, padding, flatten, reshape, dropout), which keep their input's quantization.

Every figure this module yields is "simulated": reports label it so.
"""
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from kdeep.errors import QuantizationError
from kdeep.scoring import accuracy
from quantization.clipping import clip_range, reduce_axes
from quantization.plan import plan as layer_plan

WEIGHT_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
ACTIVATION_BITS = (None, 4, 6, 8, 16)  # None: float activations (weight-only quantization)
SOFTMAX_RANGE = (0.0, 255 / 256)  # LiteRT's int8 softmax output: scale 1/256, zero point -128
BATCH = 256  # images per Keras predict step (faster than 1000 on a small CPU)
# Layers whose output LiteRT keeps in its input's quantization (no requantization of their own).
_PASS_THROUGH = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling2D", "ZeroPadding2D", "Flatten",
                 "Reshape", "Dropout", "Cropping2D", "Rescaling")


def quantize_kernel(kernel: np.ndarray, bits: int, channel_axes: Sequence[int] = (-1,)) -> np.ndarray:
    """Per-channel symmetric fake quantization of a weight tensor (round to the grid, back to float).

    The grid spans `quantization.clipping.clip_range`: max|w| from 5 bits up, the error-minimising range below.

    Args:
        kernel: the float weights.
        bits: 1-8 (or more); 1 binarises to sign(w) * mean|w| per channel.
        channel_axes: the axes that index a channel (one scale each); the others are reduced.

    Returns:
        float32 weights on the quantization grid, shaped like `kernel`.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    if bits == 1:
        return (np.where(kernel >= 0, 1.0, -1.0)
                * np.abs(kernel).mean(axis=reduce_axes(kernel, channel_axes), keepdims=True)).astype(np.float32)
    qmax = 2 ** (bits - 1) - 1
    scale = clip_range(kernel, bits, channel_axes) / qmax
    return (np.clip(np.round(kernel / scale), -qmax, qmax) * scale).astype(np.float32)


def activation_grid(low: float, high: float, bits: int) -> tuple[float, float]:
    """(scale, zero point) of a per-tensor asymmetric grid over [low, high] widened to hold 0, as TFLite nudges it."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scale = max(high - low, 1e-9) / (qmax - qmin)
    return scale, float(np.clip(np.round(qmin - low / scale), qmin, qmax))


def fake_quantize(x: Any, low: float, high: float, bits: int) -> Any:
    """Rounds `x` (numpy array or Keras tensor) to the asymmetric `bits`-wide grid over [low, high], back to float."""
    from keras import ops

    scale, zero = activation_grid(low, high, bits)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return (ops.clip(ops.round(x / scale) + zero, qmin, qmax) - zero) * scale


def _is_softmax(layer: Any) -> bool:
    """True for a softmax output (its own layer or a layer's activation): LiteRT fixes its int8 grid."""
    return type(layer).__name__ == "Softmax" or getattr(getattr(layer, "activation", None), "__name__", "") == "softmax"


def _fuses(consumer: Any) -> bool:
    """True when LiteRT folds `consumer` into the op before it (batch norm, or a ReLU/ReLU6 activation)."""
    kind = type(consumer).__name__
    if kind in ("BatchNormalization", "ReLU"):
        return True
    return kind == "Activation" and getattr(consumer.activation, "__name__", "") in ("relu", "relu6")


def _requantizes(layer: Any) -> bool:
    """True when LiteRT gives this layer's output its own quantization parameters (see the module docstring)."""
    kind = type(layer).__name__
    if kind in _PASS_THROUGH or kind == "InputLayer":
        return False
    consumers = [node.operation for node in getattr(layer, "_outbound_nodes", [])]
    fusable = getattr(layer, "kernel", None) is not None or kind in ("BatchNormalization", "Add")
    return not (fusable and consumers and all(_fuses(c) for c in consumers))


@dataclass
class _QuantizeOutput:
    """Wraps a layer so its output is fake-quantized (a clone_function for keras.models.clone_model)."""

    ranges: Mapping[str, tuple[float, float]]
    bits: int

    def __call__(self, layer: Any) -> Any:
        import keras

        ranges, bits = self.ranges, self.bits
        if layer.name not in ranges:
            return layer

        class FakeQuantOutput(keras.layers.Layer):
            def __init__(self) -> None:
                super().__init__(name=layer.name)
                self.inner = layer

            def call(self, *args: Any, **kwargs: Any) -> Any:
                return fake_quantize(self.inner(*args, **kwargs), *ranges[layer.name], bits)

        return FakeQuantOutput()


class Simulator:
    """A float Keras model and a twin whose weights and activations can be fake-quantized layer by layer.

    Args:
        model: the float Keras model (never modified).
        calibration: float images for the activation ranges (needed only for activation widths).
    """

    def __init__(self, model: Any, calibration: np.ndarray | None = None) -> None:
        import keras

        self.model = model
        self.plan = layer_plan(model)  # the quantizable layers, nested models included, by plan key
        self.twin = keras.models.clone_model(model)
        self.twin.set_weights(model.get_weights())
        self._float = {entry.key: np.asarray(entry.kernel(self.twin)) for entry in self.plan}
        self._current: dict[str, int | None] = {name: None for name in self._float}
        self._calibration = calibration
        self._ranges: dict[str, tuple[float, float]] | None = None
        self._quantized_activations: dict[int, Any] = {}

    @property
    def layers(self) -> list[str]:
        """Plan keys of the layers with weights to quantize (`quantization.plan`: nested models included), in
        model order."""
        return list(self._float)

    def parameters(self, layer: str) -> int:
        """Weights in `layer`'s kernel."""
        return int(self._float[layer].size)

    def _ranges_from_calibration(self) -> dict[str, tuple[float, float]]:
        """min/max per requantizing layer output (and the input) over the calibration images, float weights."""
        import keras

        if self._calibration is None:
            raise QuantizationError("simulated activation quantization needs calibration images; "
                                    "pass Simulator(model, calibration=...)")
        chosen = [layer for layer in self.model.layers if _requantizes(layer)]
        probe = keras.Model(self.model.inputs, [layer.output for layer in chosen])
        outputs = probe.predict(self._calibration, batch_size=BATCH, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        ranges = {layer.name: SOFTMAX_RANGE if _is_softmax(layer) else (float(np.min(o)), float(np.max(o)))
                  for layer, o in zip(chosen, outputs)}
        ranges["<input>"] = (float(np.min(self._calibration)), float(np.max(self._calibration)))
        return ranges

    def _activation_model(self, bits: int) -> Any:
        """The twin with every requantizing output fake-quantized at `bits` (built once per width, sharing weights)."""
        import keras

        if bits not in self._quantized_activations:
            self._ranges = self._ranges or self._ranges_from_calibration()
            self._quantized_activations[bits] = keras.models.clone_model(
                self.twin, clone_function=_QuantizeOutput(self._ranges, bits))
        return self._quantized_activations[bits]

    def set_weights(self, weight_bits: Mapping[str, int | None]) -> None:
        """Puts the twin's kernels on the grid of each layer's width (None or absent: float).

        Raises:
            QuantizationError: a layer name that has no kernel to quantize.
        """
        unknown = set(weight_bits) - set(self._float)
        if unknown:
            raise QuantizationError(f"no quantizable layer named {', '.join(sorted(unknown))}; "
                                    f"layers: {', '.join(self._float)}")
        for entry in self.plan:
            bits = weight_bits.get(entry.key)
            if bits == self._current[entry.key]:
                continue
            kernel = self._float[entry.key]
            entry.kernel(self.twin).assign(kernel if bits is None else
                                           quantize_kernel(kernel, bits, entry.channel_axes))
            self._current[entry.key] = bits

    def uniform(self, bits: int | None) -> dict[str, int | None]:
        """Every quantizable layer at one width."""
        return {name: bits for name in self._float}

    def predict(self, x: np.ndarray, weight_bits: Mapping[str, int | None],
                activation_bits: int | None = None) -> np.ndarray:
        """Outputs of the simulated model: weights per `weight_bits`, activations at `activation_bits` (None: float)."""
        self.set_weights(weight_bits)
        if activation_bits is None:
            return np.asarray(self.twin.predict(x, batch_size=BATCH, verbose=0))
        self._ranges = self._ranges or self._ranges_from_calibration()
        x = np.asarray(fake_quantize(x, *self._ranges["<input>"], activation_bits))
        return np.asarray(self._activation_model(activation_bits).predict(x, batch_size=BATCH, verbose=0))

    def accuracy(self, x: np.ndarray, y: np.ndarray, weight_bits: Mapping[str, int | None],
                 activation_bits: int | None = None) -> float:
        """Top-1 accuracy of the simulated model on labelled images."""
        return accuracy(self.predict(x, weight_bits, activation_bits), y)


def sweep(simulator: Simulator, x: np.ndarray, y: np.ndarray, *,
          weight_bits: Iterable[int | None] = (*WEIGHT_BITS, None),
          activation_bits: Iterable[int | None] = ACTIVATION_BITS) -> list[dict]:
    """Simulated accuracy of the whole model at every (weight width, activation width) pair.

    Args:
        simulator: the model's `Simulator` (with calibration images when an activation width is given).
        x, y: float images and labels to score (the test set, or a subset of it).
        weight_bits: widths for every layer's weights (None: float weights).
        activation_bits: widths for every activation (None: float activations).

    Returns:
        Rows {"weight_bits", "activation_bits", "accuracy", "n", "simulated": True}.
    """
    rows = []
    for a_bits in activation_bits:
        for w_bits in weight_bits:
            rows.append({"weight_bits": w_bits, "activation_bits": a_bits, "n": int(len(x)), "simulated": True,
                         "accuracy": simulator.accuracy(x, y, simulator.uniform(w_bits), a_bits)})
    return rows


def collapse_width(rows: Sequence[dict], float_accuracy: float, fraction: float = 0.9) -> int | None:
    """The widest weight width (float activations) whose simulated accuracy is below `fraction` x float's, or None."""
    below = [r["weight_bits"] for r in rows if r["activation_bits"] is None and r["weight_bits"] is not None
             and r["accuracy"] < fraction * float_accuracy]
    return max(below, default=None)
