"""The layer plan: every quantizable Keras layer (nested models included), its kernel, the TFLite op it becomes and
the weight widths the LiteRT runtime accepts for that op.

One `LayerPlan` (`plan(model)`) is shared by the simulator (`quantization.sweep`), clipping, the width search, the
sensitivity analysis and the LiteRT quantizer recipes (`quantization.aiedge`), so they all see the same layers under
the same keys:

- `key`: the layer's Keras name, or for a layer inside a nested model (an `ensemble.keras` holds its members as
  nested models) the names from the outer model down joined by "/" (`member1/block1_conv1`).
- `op`: the TFLite op the converter makes of it (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV).
- `widths`: the weight widths per quantization mode, read from the LiteRT quantizer's own policy
  (`litert_quantizer.default_policy.DEFAULT_JSON_POLICY`: per-channel configs only), minus what LiteRT 2.3.0 runs
  wrongly (`RUNTIME_WRONG`: 2-bit CONV_2D). So a depthwise convolution is never given 4 bits (the policy has only
  8-bit configs for DEPTHWISE_CONV_2D), and a width the runtime cannot run is refused before any file is written.
- `fast_bits`: the widths XNNPACK, LiteRT's default CPU delegate, runs itself for that op in dynamic range
  (`FAST_DYNAMIC_BITS`: int4 and int8 for FULLY_CONNECTED, int8 only for convolutions).
- `converter_keeps_float`: the TF converter's `dynamic` variant leaves weight tensors under
  `CONVERTER_MIN_ELEMENTS` (1,024) elements in float, so the simulated `dynamic` twin does too
  (`LayerPlan.dynamic_twin`).

Layers with a kernel of a kind the plan does not know (an Embedding, a SeparableConv2D) stay float and are listed in
`LayerPlan.skipped` with the reason, never dropped silently.

    from quantization.plan import plan
    layers = plan(model)                  # LayerPlan
    layers.keys                           # ["block1_conv1", ..., "fc1", "logits"] (nested: "member1/fc1", ...)
    entry = layers["fc1"]                 # PlannedLayer(op="FULLY_CONNECTED", shape=(1024, 50), ...)
    entry.kernel(model)                   # the Keras variable (of `model` or of any clone with the same names)
    entry.accepts(4, "dynamic")           # True; layers["block1_conv1"].accepts(2, "dynamic") -> False
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from kdeep.errors import QuantizationError

MODES = ("weight_only", "dynamic", "static")
CONVERTER_MIN_ELEMENTS = 1024  # the TF converter's dynamic range leaves smaller weight tensors float
# (TFLite op, weight bits) pairs the policy allows but LiteRT 2.3.0 computes wrongly: a 2-bit CONV_2D scores chance
# (8.5 % on MNIST for one 2-bit convolution of a 99.4 % DeepConvNet, clipped grid or not).
RUNTIME_WRONG = {("CONV_2D", 2): "LiteRT runs CONV_2D with 2-bit weights but computes wrong outputs"}
# Weight widths XNNPACK (LiteRT's default CPU delegate) runs itself in dynamic range (float input, integer filter);
# LiteRT's slower builtin kernels run the rest. tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc:
# VisitFullyConnectedNode accepts INT4 and INT8 filters (CheckTensorFloat32OrQCInt4OrQCInt8Type, a float input with
# either is "dynamically_quantized"), VisitConv2DNode INT8 only (CheckTensorFloat32OrQCInt8Type); measured here by
# benchmarks/bench_int4_kernels.py (docs/BENCHMARKS.md).
FAST_DYNAMIC_BITS: dict[str, tuple[int, ...]] = {"FULLY_CONNECTED": (4, 8), "CONV_2D": (8,), "DEPTHWISE_CONV_2D": (8,)}
# Keras layer class -> (TFLite op, kernel attribute, kernel axes that index an output channel).
KINDS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "Conv2D": ("CONV_2D", "kernel", (-1,)),
    "Conv1D": ("CONV_2D", "kernel", (-1,)),
    "DepthwiseConv2D": ("DEPTHWISE_CONV_2D", "kernel", (-2, -1)),  # Keras 3: (h, w, in, multiplier)
    "Dense": ("FULLY_CONNECTED", "kernel", (-1,)),
    "Conv2DTranspose": ("TRANSPOSE_CONV", "kernel", (-2,)),
}
# Attributes that hold a layer's weight matrix or filter (a layer with one but not in KINDS is listed as skipped).
WEIGHT_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")
# The LiteRT quantizer names some ops differently from the flatbuffer.
QUANTIZER_OP_NAMES = {"TRANSPOSE_CONV": "CONV_2D_TRANSPOSE"}


@dataclass(frozen=True)
class OpWidths:
    """Per-channel weight widths the LiteRT quantizer's policy allows for one TFLite op, per mode.

    Attributes:
        weight_only: float activations, weights dequantized before the op.
        dynamic: float activations quantized on the fly (dynamic range).
        static: ((activation bits, weight widths), ...): activations calibrated to integers.
    """

    weight_only: tuple[int, ...] = ()
    dynamic: tuple[int, ...] = ()
    static: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def allowed(self, mode: str, activation_bits: int | None = None) -> tuple[int, ...]:
        """The widths for a mode ("weight_only", "dynamic" or "static" with `activation_bits`), narrowest first."""
        if mode == "static":
            return dict(self.static).get(activation_bits, ())
        if mode not in MODES:
            raise QuantizationError(f"unknown quantization mode {mode!r}; use one of {', '.join(MODES)}")
        return getattr(self, mode)


def _mode(config: dict) -> tuple[str, int | None] | None:
    """(mode, activation bits) of one policy config; None for configs kdeep does not use (unsigned activations)."""
    activation = config.get("activation_tensor_config")
    if activation is not None:
        return ("static", int(activation["num_bits"])) if activation["dtype"] == "INT" else None
    return ("weight_only", None) if config["compute_precision"] == "FLOAT" else ("dynamic", None)


@functools.lru_cache(maxsize=None)
def policy_widths(op: str) -> OpWidths:
    """The per-channel weight widths the LiteRT quantizer's policy allows for a TFLite op, per mode, without the
    pairs LiteRT runs wrongly (`RUNTIME_WRONG`).

    Args:
        op: a flatbuffer op name (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, ...).
    """
    from litert_quantizer import default_policy

    policy = json.loads(default_policy.DEFAULT_JSON_POLICY)
    name = QUANTIZER_OP_NAMES.get(op, op)
    found: dict[tuple[str, int | None], set[int]] = {}
    for config_name, ops in policy["ops_per_config"].items():
        config = policy["configs"][config_name]
        weights, mode = config["weight_tensor_config"], _mode(config)
        if name not in ops or mode is None or "CHANNELWISE" not in weights["granularity"]:
            continue
        bits = int(weights["num_bits"])
        if (op, bits) not in RUNTIME_WRONG:
            found.setdefault(mode, set()).add(bits)
    static = tuple(sorted((a, tuple(sorted(b))) for (m, a), b in found.items() if m == "static"))
    return OpWidths(weight_only=tuple(sorted(found.get(("weight_only", None), ()))),
                    dynamic=tuple(sorted(found.get(("dynamic", None), ()))), static=static)


@dataclass(frozen=True)
class PlannedLayer:
    """One quantizable Keras layer.

    Attributes:
        key: the plan's name for it: the Keras name, or "outer/inner" for a layer of a nested model.
        path: the Keras names from the outermost nested model down to the layer (`key` split on "/").
        kind: the Keras class name (Conv2D, DepthwiseConv2D, Dense, ...).
        op: the TFLite op it becomes.
        attribute: the kernel's attribute on the layer ("kernel" for every kind planned today).
        shape: the kernel's shape, Keras layout.
        channel_axes: the kernel axes that index an output channel (one scale each).
        widths: the widths the LiteRT quantizer's policy (and runtime) accept for `op`.
    """

    key: str
    path: tuple[str, ...]
    kind: str
    op: str
    attribute: str
    shape: tuple[int, ...]
    channel_axes: tuple[int, ...]
    widths: OpWidths

    @property
    def size(self) -> int:
        """Elements in the kernel."""
        size = 1
        for dim in self.shape:
            size *= int(dim)
        return size

    @property
    def converter_keeps_float(self) -> bool:
        """True when the TF converter's dynamic range leaves this kernel float (under 1,024 elements)."""
        return self.size < CONVERTER_MIN_ELEMENTS

    @property
    def fast_bits(self) -> tuple[int, ...]:
        """The dynamic-range weight widths XNNPACK runs itself for this op (`FAST_DYNAMIC_BITS`); others run on
        LiteRT's builtin kernels (slower: an int4 convolution is)."""
        return FAST_DYNAMIC_BITS.get(self.op, ())

    def layer(self, model: Any) -> Any:
        """This layer in `model` (the planned model or a clone with the same layer names)."""
        return find_layer(model, self.path)

    def kernel(self, model: Any) -> Any:
        """This layer's kernel variable in `model`."""
        return getattr(self.layer(model), self.attribute)

    def accepts(self, bits: int | None, mode: str = "weight_only", activation_bits: int | None = None) -> bool:
        """True when LiteRT takes `bits`-wide weights for this op in this mode (None: float, always)."""
        return bits is None or bits in self.widths.allowed(mode, activation_bits)

    def lowest(self, mode: str = "dynamic", activation_bits: int | None = None) -> int | None:
        """The narrowest width this op takes in a mode (None when the mode has none for it)."""
        return min(self.widths.allowed(mode, activation_bits), default=None)


@dataclass(frozen=True)
class LayerPlan:
    """The quantizable layers of a model, in model order (outer layers first, a nested model's layers in place).

    Attributes:
        layers: the planned layers.
        skipped: {key: reason} for layers with weights the plan leaves float.
    """

    layers: tuple[PlannedLayer, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The planned layers' keys, in model order."""
        return [layer.key for layer in self.layers]

    def __getitem__(self, key: str) -> PlannedLayer:
        for layer in self.layers:
            if layer.key == key:
                return layer
        raise QuantizationError(f"no quantizable layer named {key}; layers: {', '.join(self.keys)}")

    def __iter__(self) -> Iterator[PlannedLayer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def uniform(self, bits: int | None) -> dict[str, int | None]:
        """Every planned layer at one width."""
        return {key: bits for key in self.keys}

    def dynamic_twin(self, bits: int = 8) -> dict[str, int | None]:
        """The widths of the TF converter's `dynamic` variant: `bits` except float for kernels under 1,024 values."""
        return {layer.key: None if layer.converter_keeps_float else bits for layer in self.layers}

    def check(self, weight_bits: Mapping[str, int | None], mode: str,
              activation_bits: int | None = None) -> None:
        """Raises QuantizationError for an unknown key or a width LiteRT does not take for a layer's op in a mode."""
        for key, bits in weight_bits.items():
            check_width(key, self[key].op, bits, mode, activation_bits)


def check_width(label: str, op: str, bits: int | None, mode: str, activation_bits: int | None = None) -> None:
    """Raises QuantizationError, naming the layer and the widths it takes, when LiteRT does not take `bits`-wide
    weights for `op` in `mode` ("weight_only", "dynamic", or "static" with `activation_bits`); None (float) passes."""
    allowed = policy_widths(op).allowed(mode, activation_bits)
    if bits is None or bits in allowed:
        return
    fix = f"give it {' or '.join(map(str, allowed))} bits or None (float)" if allowed else "leave it float (None)"
    reason = RUNTIME_WRONG.get((op, bits)) or (f"the LiteRT quantizer cannot give {op} {bits}-bit weights "
                                               f"({_label(mode, activation_bits)})")
    raise QuantizationError(f"layer {label}: {reason}; {fix}")


def _label(mode: str, activation_bits: int | None) -> str:
    """A mode in words."""
    return f"{activation_bits}-bit activations" if mode == "static" else mode.replace("_", "-")


def _entry(layer: Any, path: tuple[str, ...]) -> PlannedLayer | str:
    """The planned entry for a layer with weights, or the reason it stays float."""
    kind = type(layer).__name__
    if kind not in KINDS:
        return f"{kind} has no quantization recipe in kdeep's plan; it stays float"
    op, attribute, axes = KINDS[kind]
    if kind == "Conv2D" and getattr(layer, "groups", 1) != 1:
        return "a grouped Conv2D has no quantization recipe in kdeep's plan; it stays float"
    kernel = getattr(layer, attribute)
    return PlannedLayer("/".join(path), path, kind, op, attribute, tuple(int(d) for d in kernel.shape), axes,
                        policy_widths(op))


def _has_kernel(layer: Any) -> bool:
    """True for a layer holding a weight matrix or filter (not a bias-only or normalisation layer)."""
    return any(getattr(layer, name, None) is not None for name in WEIGHT_ATTRIBUTES)


def find_layer(model: Any, path: tuple[str, ...]) -> Any:
    """The layer at `path` (Keras names from the outer model down) in `model` or a clone with the same names."""
    found = model
    for name in path:
        found = found.get_layer(name)
    return found


def layer_at(model: Any, key: str) -> Any:
    """The layer at a plan key ("outer/inner" inside a nested model)."""
    return find_layer(model, tuple(key.split("/")))


def consumers(layer: Any) -> list[Any]:
    """The layers that take `layer`'s output."""
    return [node.operation for node in getattr(layer, "_outbound_nodes", [])]


def walk(model: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, layer) of every layer of `model` in model order, a nested model's layers in its place (neither the
    nested model itself nor its input layer is yielded); a layer's key is "/".join(path)."""
    import keras

    for layer in model.layers:
        path = (*prefix, layer.name)
        if isinstance(layer, keras.Model):
            yield from walk(layer, path)
        elif prefix == () or type(layer).__name__ != "InputLayer":
            yield path, layer


def plan(model: Any) -> LayerPlan:
    """The layer plan of a Keras model: every layer with a kernel LiteRT can quantize, nested models included.

    Args:
        model: a built Keras model.

    Returns:
        The `LayerPlan`.
    """
    layers: list[PlannedLayer] = []
    skipped: dict[str, str] = {}
    for path, layer in walk(model):
        if _has_kernel(layer):
            entry = _entry(layer, path)
            if isinstance(entry, str):
                skipped["/".join(path)] = entry
            else:
                layers.append(entry)
    return LayerPlan(tuple(layers), skipped)
