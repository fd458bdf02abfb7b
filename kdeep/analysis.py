"""Model analysis: per-layer shapes, parameters, MACs and receptive fields, and why 3x3 stacks beat big kernels."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import keras

from kdeep.errors import ModelError

# Layers that slide a window over H and W: their kernel and stride grow the receptive field.
_WINDOW_LAYERS = (
    keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
)


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer of a summary.

    Attributes:
        name: the layer name.
        kind: the layer class, e.g. "Conv2D".
        output_shape: output shape without the batch axis (the first output for multi-output layers).
        params: weights in the layer (trainable and not).
        macs: multiply-accumulates for one image (convolutions and dense layers; 0 for the rest).
        receptive_field: input pixels (along the height) one output position sees; None once the spatial
            axes are gone (the whole image).
        jump: input pixels between neighbouring output positions (the product of strides); None likewise.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: int | None
    jump: int | None


@dataclasses.dataclass(frozen=True)
class Summary:
    """A model's per-layer table and totals (`str(summary)` is the text table)."""

    name: str
    input_shape: tuple[int, ...]
    rows: tuple[LayerRow, ...]
    params: int
    trainable_params: int
    macs: int

    def row(self, name: str) -> LayerRow:
        """Returns the row of layer `name`; ModelError when there is none."""
        for row in self.rows:
            if row.name == name:
                return row
        raise ModelError(f"model {self.name!r} has no layer {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict (shapes as lists)."""
        return dataclasses.asdict(self) | {
            "input_shape": list(self.input_shape),
            "rows": [dataclasses.asdict(r) | {"output_shape": list(r.output_shape)} for r in self.rows],
        }

    def __str__(self) -> str:
        return format_summary(self)


def summarize(model: keras.Model | str, input_shape: Sequence[int] | None = None) -> Summary:
    """Walks a functional model in order and measures each layer.

    Args:
        model: a functional `keras.Model`, or a registry name (built with `kdeep.models.build`).
        input_shape: (H, W, C) to build a named model at; must be None or match for a built model.

    Returns:
        The Summary (rows in the model's topological order, totals).

    Raises:
        ModelError: unknown name, or an input_shape that does not match a built model.
    """
    if isinstance(model, str):
        from kdeep.models import build

        model = build(model, input_shape=tuple(input_shape) if input_shape else None)
    own_shape = tuple(model.inputs[0].shape[1:])
    if input_shape is not None and tuple(input_shape) != own_shape:
        raise ModelError(f"model {model.name!r} takes {own_shape}, not {tuple(input_shape)}; rebuild it at that shape")
    fields: dict[str, Field] = {}
    rows = []
    for layer in model.layers:
        inbound = [parent.operation.name for node in layer._inbound_nodes for parent in node.parent_nodes]
        rf, jump = _receptive_field(layer, [fields[name] for name in inbound if name in fields])
        fields[layer.name] = (rf, jump)
        rows.append(LayerRow(layer.name, type(layer).__name__, _output_shape(layer), layer.count_params(),
                             _macs(layer), rf, jump))
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return Summary(model.name, own_shape, tuple(rows), model.count_params(), trainable, sum(r.macs for r in rows))


def _output_shape(layer: keras.layers.Layer) -> tuple[int, ...]:
    output = layer.output[0] if isinstance(layer.output, (list, tuple)) else layer.output
    return tuple(output.shape[1:])


Field = tuple[int | None, int | None]  # (receptive field, jump); None once the spatial axes are gone


def _receptive_field(layer: keras.layers.Layer, inputs: list[Field]) -> Field:
    """(receptive field, jump) of the layer's output along the height, from its inputs'."""
    if not inputs:  # the input layer: one pixel, stride one
        return 1, 1
    if len(_output_shape(layer)) < 3 or any(rf is None for rf, _ in inputs):
        return None, None  # flattened or globally pooled: the output sees the whole image
    rf = max(r for r, _ in inputs)
    jump = max(j for _, j in inputs)
    if isinstance(layer, _WINDOW_LAYERS):
        kernel = layer.kernel_size[0] if hasattr(layer, "kernel_size") else layer.pool_size[0]
        dilation = layer.dilation_rate[0] if hasattr(layer, "dilation_rate") else 1
        rf += (dilation * (kernel - 1)) * jump
        jump *= layer.strides[0]
    return rf, jump


def _macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one forward pass for one image."""
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                              keras.layers.Dense)):
        return 0
    out = _output_shape(layer)
    c_in = layer.input.shape[-1]
    positions = math.prod(out[:-1])  # output pixels (or 1 for a vector)
    if isinstance(layer, keras.layers.Dense):
        return positions * c_in * out[-1]
    window = math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.SeparableConv2D):
        return positions * (window * c_in * layer.depth_multiplier + c_in * layer.depth_multiplier * out[-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * window * out[-1]
    return positions * window * (c_in // layer.groups) * out[-1]


def format_summary(summary: Summary) -> str:
    """Returns the summary as a text table with a totals line."""
    header = ("layer", "type", "output shape", "params", "MACs", "RF", "jump")
    body = [
        (r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}",
         "all" if r.receptive_field is None else str(r.receptive_field), "-" if r.jump is None else str(r.jump))
        for r in summary.rows
    ]
    total = (f"{summary.name} @ {'x'.join(map(str, summary.input_shape))}", "total", "",
             f"{summary.params:,}", f"{summary.macs:,}", "", "")
    return text_table(header, [*body, total], right=(3, 4, 5, 6))


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """One model of the registry as `kdeep models` lists it.

    Attributes:
        name: the registry name.
        family: its family ("cifar_resnet", ...).
        input_shape: the default input (H, W, C).
        num_classes: the default classes.
        params: trainable parameters at the default input (the registry's declared count, or measured with costs).
        description: the one-line description (the first line of the builder's docstring).
        macs: multiply-accumulates for one image at the default input; None unless measured (`costs=True`).
        all_params: parameters including BatchNorm's moving statistics; None unless measured.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    params: int
    description: str
    macs: int | None = None
    all_params: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict (the shape as a list; macs and all_params only when measured)."""
        row = dataclasses.asdict(self) | {"input_shape": list(self.input_shape)}
        return {key: value for key, value in row.items() if value is not None}


def model_rows(family: str | None = None, *, costs: bool = False) -> list[ModelRow]:
    """The registered models (of one family) from the registry alone, or with `costs` built and measured.

    Args:
        family: a family name (`kdeep.models.families()`); "resnet" includes the CIFAR ResNets.
        costs: build each model at its default input to measure MACs and all parameters (slow: every VGG holds
            over 130 M weights; the whole zoo takes about a minute).

    Returns:
        One row per model, in registration order.

    Raises:
        ModelError: an unknown family.
    """
    import kdeep.models as models

    rows = []
    for name in models.list_models(family):
        entry = models.info(name)
        row = ModelRow(name, entry.family, entry.input_shape, entry.num_classes, entry.params, entry.description)
        if costs:
            summary = summarize(models.build(name))
            row = dataclasses.replace(row, params=summary.trainable_params, macs=summary.macs,
                                      all_params=summary.params)
            keras.backend.clear_session()  # frees each model before the next (VGGs hold ~0.5 GiB of weights)
        rows.append(row)
    return rows


def format_model_rows(rows: Sequence[ModelRow]) -> str:
    """Returns model rows as a text table (with a MACs column when they were measured)."""
    measured = any(r.macs is not None for r in rows)
    header = ("model", "family", "input", "classes", "params", *(("MACs",) if measured else ()), "description")
    body = [(r.name, r.family, "x".join(map(str, r.input_shape)), str(r.num_classes), f"{r.params:,}",
             *((f"{(r.macs or 0) / 1e6:,.1f}M",) if measured else ()), r.description) for r in rows]
    return text_table(header, body, right=(3, 4, 5) if measured else (3, 4))


@dataclasses.dataclass(frozen=True)
class WhyDeeperRow:
    """One kxk conv against the stack of 3x3 convs with the same receptive field.

    Attributes:
        kernel: k of the single conv; `layers` = (k - 1) / 2 stacked 3x3 convs see the same k x k.
        layers: how many 3x3 convs the stack has.
        single_params: weights of the kxk conv, C_in -> C_out (+ C_out biases when bias).
        stack_params: weights of the stack, C_in -> C_out -> ... -> C_out.
        weights_per_pair: (k*k, 9*layers): weights per input/output channel pair, the book's 25 vs 18.
        single_macs: multiply-accumulates of the kxk conv on an H x W map ("same" padding).
        stack_macs: the same for the stack.
        nonlinearities: (1, layers): ReLUs each path can apply.
    """

    kernel: int
    layers: int
    single_params: int
    stack_params: int
    weights_per_pair: tuple[int, int]
    single_macs: int
    stack_macs: int
    nonlinearities: tuple[int, int]

    @property
    def saving(self) -> float:
        """Fraction of the single conv's parameters the stack saves."""
        return 1.0 - self.stack_params / self.single_params

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict (with the saving)."""
        return dataclasses.asdict(self) | {"saving": round(self.saving, 4)}


def why_deeper(c_in: int, c_out: int, kernel_sizes: Sequence[int] = (5, 7), *, size: tuple[int, int] = (28, 28),
               bias: bool = False) -> list[WhyDeeperRow]:
    """The book's chapter-8 argument made exact: one kxk conv vs a stack of 3x3 convs seeing k x k.

    A stack of n 3x3 convs (stride 1) has receptive field 2n + 1, so 5x5 = two 3x3 and 7x7 = three 3x3.
    Per channel pair the stack needs 9n weights instead of k*k (18 vs 25, 27 vs 49) and applies n ReLUs
    instead of one.

    Args:
        c_in: input channels.
        c_out: output channels (of the single conv and of every conv in the stack).
        kernel_sizes: odd kernel sizes k >= 3 to compare.
        size: (H, W) of the feature map, for MACs ("same" padding, stride 1).
        bias: count one bias per output channel and conv.

    Returns:
        One row per kernel size.

    Raises:
        ModelError: channels < 1, a size that is not two sides >= 1, or a kernel size that is not odd and >= 3.
    """
    if c_in < 1 or c_out < 1:
        raise ModelError(f"why_deeper: channels must be >= 1, got c_in={c_in}, c_out={c_out}")
    if len(size) != 2 or any(not isinstance(side, int) or side < 1 for side in size):
        raise ModelError(f"why_deeper: size must be (H, W) with both >= 1, got {tuple(size)}")
    rows = []
    pixels = size[0] * size[1]
    for k in kernel_sizes:
        if k < 3 or k % 2 == 0:
            raise ModelError(f"why_deeper: kernel sizes must be odd and >= 3 (a 3x3 stack sees 2n+1), got {k}")
        n = (k - 1) // 2
        single_weights = k * k * c_in * c_out
        stack_weights = 9 * c_in * c_out + (n - 1) * 9 * c_out * c_out
        rows.append(WhyDeeperRow(
            kernel=k, layers=n,
            single_params=single_weights + (c_out if bias else 0),
            stack_params=stack_weights + (n * c_out if bias else 0),
            weights_per_pair=(k * k, 9 * n),
            single_macs=pixels * single_weights, stack_macs=pixels * stack_weights,
            nonlinearities=(1, n),
        ))
    return rows


def format_why_deeper(rows: Sequence[WhyDeeperRow], c_in: int, c_out: int) -> str:
    """Returns the why_deeper comparison as a text table."""
    header = ("receptive field", "single conv", "params", "3x3 stack", "params", "per pair", "saving", "ReLUs")
    body = [
        (f"{r.kernel}x{r.kernel}", f"1 x {r.kernel}x{r.kernel}", f"{r.single_params:,}", f"{r.layers} x 3x3",
         f"{r.stack_params:,}", f"{r.weights_per_pair[0]} vs {r.weights_per_pair[1]}", f"{r.saving:.0%}",
         f"{r.nonlinearities[0]} vs {r.nonlinearities[1]}")
        for r in rows
    ]
    return f"C_in={c_in} -> C_out={c_out}\n" + text_table(header, body, right=(2, 4, 6))


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Returns rows as aligned text columns under a header; columns in `right` are right-aligned."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
