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

Both are options: `Simulator(weights=...)` takes another weight quantizer (`quantization.ptq.PTQWeights`: CLE,
AdaRound, bias correction) and `ranges=` another activation-range method (`quantization.ranges`: percentile,
MSE); activation widths may differ per tensor (`activation_tensors`).

Every figure this module yields is "simulated": reports label it so.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np

from kdeep.errors import QuantizationError
from kdeep.scoring import accuracy, outputs
from quantization.clipping import clip_range, reduce_axes, symmetric
from quantization.plan import consumers, find_layer, plan as layer_plan, walk
from quantization.ranges import RangeTable, activation_grid, activation_limits, check_method, fake_quantize, on_grid
from quantization.taps import record, wrapped_clone

WEIGHT_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
ACTIVATION_BITS = (None, 4, 6, 8, 16)  # None: float activations (weight-only quantization)
SOFTMAX_RANGE = (0.0, 255 / 256)  # LiteRT's int8 softmax output: scale 1/256, zero point -128
BATCH = 256  # images per Keras predict step (faster than 1000 on a small CPU)
INPUT = "<input>"  # the model input's activation tensor
KERNEL_CACHE_BYTES = 256 * 2**20  # quantized kernels a `KernelQuantizer` keeps (least recently used go first)
# Layers whose output LiteRT keeps in its input's quantization (no requantization of their own).
_PASS_THROUGH = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling2D", "ZeroPadding1D",
                 "ZeroPadding2D", "ZeroPadding3D", "Flatten", "Reshape", "Dropout", "Cropping2D", "Rescaling")


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
    return symmetric(kernel, clip_range(kernel, bits, channel_axes), bits).astype(np.float32)


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
    takers = consumers(layer)
    fusable = getattr(layer, "kernel", None) is not None or kind in ("BatchNormalization", "Add")
    return not (fusable and takers and all(_fuses(c) for c in takers))


def _producer(layer: Any) -> Any:
    """The layer whose output is `layer`'s (first) input, in the graph `layer` was first called in."""
    return layer._inbound_nodes[0].input_tensors[0]._keras_history.operation


def _fake_quant_output(layer: Any, key: str) -> Any:
    """A wrapper whose output is `layer`'s on a grid held in variables (`set_grid`; off: passed through)."""
    import keras
    from keras import ops

    class FakeQuantOutput(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__(name=layer.name)
            self.inner, self.key = layer, key
            self.grid = {name: self.add_weight(shape=(), initializer="zeros", trainable=False, name=name)
                         for name in ("scale", "zero", "qmin", "qmax", "on")}

        def call(self, *args: Any, **kwargs: Any) -> Any:
            x = self.inner(*args, **kwargs)
            g = self.grid
            quantized = on_grid(x, g["scale"], g["zero"], g["qmin"], g["qmax"], xp=ops)
            return g["on"] * quantized + (1.0 - g["on"]) * x

        def set_grid(self, grid: tuple[float, float, int] | None) -> None:
            """Quantizes to (low, high, bits) from the next call on (None: float)."""
            self.grid["on"].assign(0.0 if grid is None else 1.0)
            if grid is not None:
                low, high, bits = grid
                values = dict(zip(("scale", "zero", "qmin", "qmax"), (*activation_grid(low, high, bits),
                                                                      *activation_limits(bits))))
                for name, value in values.items():
                    self.grid[name].assign(float(value))

    return FakeQuantOutput()


class KernelQuantizer:
    """Round-to-nearest kernels on `quantize_kernel`'s grids: what `Simulator` assigns for a planned layer at a width.

    `quantization.ptq.PTQWeights` extends it (cross-layer equalization, AdaRound, bias correction): there a layer's
    kernel may also depend on the widths of the layers before it (`version`), so every method takes the whole
    configuration, `widths` ({plan key: width}, absent: float; None: every planned layer at the layer's own width).

    Quantized kernels are kept, least recently used dropped first, up to `cache_bytes` (a search over AdaRound's
    versions may ask for hundreds; one dropped and asked for again is computed again).

    Args:
        model: the float Keras model.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.plan = layer_plan(model)
        self.float_kernels = {entry.key: np.asarray(entry.kernel(model)) for entry in self.plan}
        self._entries = {entry.key: entry for entry in self.plan}
        self.cache_bytes = KERNEL_CACHE_BYTES
        self._cache: OrderedDict[tuple[str, Hashable], np.ndarray] = OrderedDict()

    def version(self, key: str, bits: int | None, widths: Mapping[str, int | None] | None = None) -> Hashable:
        """What planned layer `key`'s values at `bits` depend on in a model at `widths`: here its width alone."""
        return bits

    def kernel(self, key: str, bits: int, widths: Mapping[str, int | None] | None = None) -> np.ndarray:
        """The planned layer's kernel on its `bits`-wide grid in a model at `widths` (computed once per `version`
        while the cache keeps it)."""
        entry = (key, self.version(key, bits, widths))
        if entry in self._cache:
            self._cache.move_to_end(entry)
            return self._cache[entry]
        kernel = self._cache[entry] = self._quantize(key, bits, widths)
        while len(self._cache) > 1 and sum(value.nbytes for value in self._cache.values()) > self.cache_bytes:
            self._cache.popitem(last=False)
        return kernel

    def _quantize(self, key: str, bits: int, widths: Mapping[str, int | None] | None) -> np.ndarray:
        """The quantized kernel (round to nearest); subclasses round otherwise."""
        return quantize_kernel(self.float_kernels[key], bits, self._entries[key].channel_axes)

    def assignments(self, key: str, bits: int | None, widths: Mapping[str, int | None] | None = None
                    ) -> list[tuple[tuple[str, ...], str, np.ndarray]]:
        """[(layer path, variable attribute, value)] that put planned layer `key` at `bits` (None: float) in a model
        at `widths`."""
        entry = self._entries[key]
        kernel = self.float_kernels[key] if bits is None else self.kernel(key, bits, widths)
        return [(entry.path, entry.attribute, kernel)]


class Simulator:
    """A float Keras model and a twin whose weights and activations can be fake-quantized layer by layer.

    Args:
        model: the float Keras model (never modified).
        calibration: float images for the activation ranges (needed only for activation widths).
        weights: what puts a planned layer's kernel (and whatever else) on a width's grid (default: round to
            nearest; `quantization.ptq.PTQWeights` adds equalization, AdaRound and bias correction, and then
            `weights.model`, the equalized copy, is the float model simulated).
        ranges: how activation ranges come from the calibration values (`quantization.ranges.RANGE_METHODS`).
    """

    def __init__(self, model: Any, calibration: np.ndarray | None = None, *, weights: KernelQuantizer | None = None,
                 ranges: str = "minmax") -> None:
        import keras

        self.weights = weights or KernelQuantizer(model)
        self.model = self.weights.model
        self.plan = self.weights.plan  # the quantizable layers, nested models included, by plan key
        self.twin = keras.models.clone_model(self.model)
        self.twin.set_weights(self.model.get_weights())
        self._current: dict[str, Hashable] = {key: None for key in self.plan.keys}  # each layer's `version`
        self._calibration = calibration
        self.range_method = check_method(ranges)
        self._ranges: RangeTable | None = None
        self._wrappers: dict[str, Any] = {}
        self._activation_twin: Any = None
        self._tensors = {"/".join(path): layer for path, layer in walk(self.model) if _requantizes(layer)}

    @property
    def layers(self) -> list[str]:
        """Plan keys of the layers with weights to quantize (`quantization.plan`: nested models included), in
        model order."""
        return list(self._current)

    @property
    def activation_tensors(self) -> list[str]:
        """Keys of the tensors with their own activation grid: "<input>", then each requantizing layer's output
        (plan-style keys: "outer/inner" inside a nested model), in model order."""
        return [INPUT, *self._tensors]

    def activation_size(self, tensor: str) -> int:
        """Values per image in an activation tensor (`activation_tensors`)."""
        shape = self.model.input_shape if tensor == INPUT else self._tensors[tensor].output.shape
        return int(np.prod([int(d) for d in shape[1:]]))

    def input_tensor(self, key: str) -> str:
        """The activation tensor whose grid planned layer `key`'s input lies on (`INPUT` or a requantizing layer's
        key), found back through the layers that keep their input's grid, into and out of nested models."""
        path = self.plan[key].path
        while True:
            source = _producer(find_layer(self.model, path))
            while type(source).__name__ in _PASS_THROUGH:
                source = _producer(source)
            if type(source).__name__ != "InputLayer":
                found = "/".join((*path[:-1], source.name))
                inside = [name for name in self._tensors if name.startswith(found + "/")]
                return inside[-1] if hasattr(source, "layers") and inside else found  # a nested model: its output
            if len(path) == 1:
                return INPUT
            path = path[:-1]  # a nested model's input: look at what feeds the nested model

    def parameters(self, layer: str) -> int:
        """Weights in `layer`'s kernel."""
        return int(self.weights.float_kernels[layer].size)

    def ranges(self) -> RangeTable:
        """The activation ranges: every requantizing output's (and the input's) calibration values, float model."""
        if self._ranges is not None:
            return self._ranges
        if self._calibration is None:
            raise QuantizationError("simulated activation quantization needs calibration images; "
                                    "pass Simulator(model, calibration=...)")
        fixed = {key: SOFTMAX_RANGE for key, layer in self._tensors.items() if _is_softmax(layer)}
        table = RangeTable(self.range_method, fixed, images=len(self._calibration))
        table.observe(INPUT, np.asarray(self._calibration, np.float32))
        for values in record(self.model, {key: "output" for key in self._tensors}, self._calibration):
            for key, value in values.items():
                table.observe(key, value)
        self._ranges = table
        return table

    def _activation_model(self, bits: Mapping[str, int | None]) -> Any:
        """The twin with every requantizing output fake-quantized at its width in `bits` (built once)."""
        table = self.ranges()
        if self._activation_twin is None:
            def wrap(layer: Any, key: str) -> Any:
                self._wrappers[key] = _fake_quant_output(layer, key)
                return self._wrappers[key]

            self._activation_twin = wrapped_clone(self.twin, self._tensors, wrap)
        for key, wrapper in self._wrappers.items():
            width = bits.get(key)
            wrapper.set_grid((*table.range(key, width), width) if width else None)
        return self._activation_twin

    def set_weights(self, weight_bits: Mapping[str, int | None]) -> None:
        """Puts the twin's kernels on the grid of each layer's width (None or absent: float).

        Raises:
            QuantizationError: a layer name that has no kernel to quantize.
        """
        unknown = set(weight_bits) - set(self._current)
        if unknown:
            raise QuantizationError(f"no quantizable layer named {', '.join(sorted(unknown))}; "
                                    f"layers: {', '.join(self._current)}")
        for key in self._current:
            bits = weight_bits.get(key)
            version = self.weights.version(key, bits, weight_bits)
            if version == self._current[key]:
                continue
            for path, attribute, value in self.weights.assignments(key, bits, weight_bits):
                getattr(find_layer(self.twin, path), attribute).assign(value)
            self._current[key] = version

    def uniform(self, bits: int | None) -> dict[str, int | None]:
        """Every quantizable layer at one width."""
        return {key: bits for key in self._current}

    def activation_widths(self, bits: int | None | Mapping[str, int | None]) -> dict[str, int | None]:
        """{tensor: width} for every activation tensor: one width for all, or a mapping (absent tensors float).

        Raises:
            QuantizationError: a mapping that names a tensor the model does not have.
        """
        if isinstance(bits, Mapping):
            unknown = set(bits) - set(self.activation_tensors)
            if unknown:
                raise QuantizationError(f"no activation tensor named {', '.join(sorted(unknown))}; "
                                        f"tensors: {', '.join(self.activation_tensors)}")
            return {name: bits.get(name) for name in self.activation_tensors}
        return {name: bits for name in self.activation_tensors}

    def predict(self, x: np.ndarray, weight_bits: Mapping[str, int | None],
                activation_bits: int | None | Mapping[str, int | None] = None) -> np.ndarray:
        """Outputs of the simulated model: weights per `weight_bits`, activations at `activation_bits` (one width
        for every tensor, or {tensor key: width} over `activation_tensors`; None or absent: float)."""
        self.set_weights(weight_bits)
        widths = self.activation_widths(activation_bits)
        if not any(widths.values()):
            return outputs(self.twin, x, batch_size=BATCH)
        model = self._activation_model(widths)
        if widths[INPUT]:
            x = np.asarray(fake_quantize(x, *self.ranges().range(INPUT, widths[INPUT]), widths[INPUT]))
        return outputs(model, x, batch_size=BATCH)

    def accuracy(self, x: np.ndarray, y: np.ndarray, weight_bits: Mapping[str, int | None],
                 activation_bits: int | None | Mapping[str, int | None] = None) -> float:
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
