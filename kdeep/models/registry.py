"""The model registry: every model's family, defaults and limits, `build` by name, and the checks every builder runs.

Each model is one documented function registered with `@register_model` (timm's style), e.g.
`kdeep.models.resnet.resnet50`. A builder, called directly or through `build`, checks its arguments here
(`check`) before it makes a layer, and declares its contract here (`finish`).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
import numbers
import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from kdeep.contract import Contract, attach
from kdeep.errors import ModelError

if TYPE_CHECKING:
    from kdeep.models.blocks import Top

STEMS = ("auto", "imagenet", "small")
POOLINGS = (None, "avg", "max")
# `stem="auto"` picks the small-input stem when the shorter image side is below this.
SMALL_STEM_BELOW = 64
# The width multiplier's range (0, MAX_WIDTH]; families whose builder has a `width` argument take it.
MAX_WIDTH = 4.0
# What a builder's input pixels span: kdeep's models take images scaled to [0, 1].
INPUT_RANGE = (0.0, 1.0)

Builder = TypeVar("Builder", bound=Callable[..., Any])
InputShape = tuple[int, int, int]
Weights = str | os.PathLike | None


@dataclasses.dataclass(frozen=True)
class Family:
    """Defaults and limits every model of one family shares.

    Attributes:
        name: "deepconvnet", "vgg", "googlenet", "resnet", "cifar_resnet" or "plain".
        input_shape: default input (H, W, C).
        small_input_shape: the small input its models are also tested at (H, W, C).
        num_classes: default number of classes.
        min_size: smallest image side the default (paper) stem accepts.
        small_min_size: smallest side with the small-input stem; None when the family has no stem option.
        parent: a wider family its models are also listed under (`list_models("resnet")` includes the CIFAR
            ResNets), or None.
        variant_args: the family builder's arguments a model fixes (depth, ...): not options of its models.
    """

    name: str
    input_shape: tuple[int, int, int]
    small_input_shape: tuple[int, int, int]
    num_classes: int
    min_size: int
    small_min_size: int | None = None
    parent: str | None = None
    variant_args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: registry name, e.g. "resnet50".
        family: "deepconvnet", "vgg", "googlenet", "resnet", "cifar_resnet" or "plain".
        input_shape: default input (H, W, C).
        small_input_shape: the small input it is also tested at (H, W, C).
        num_classes: default number of classes.
        min_size: smallest image side the default (paper) stem accepts.
        small_min_size: smallest side with the small-input stem; None when the family has no stem option.
        builder: the model's function (`kdeep.models.resnet50`), which `build` calls.
        description: one line for listings (the first line of the builder's docstring).
        params: trainable parameters at the default input and classes (its docstring states them too).
        families: the family and the wider one it is also listed under.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int]
    small_input_shape: tuple[int, int, int]
    num_classes: int
    min_size: int
    small_min_size: int | None
    builder: Callable[..., Any]
    description: str
    params: int
    families: tuple[str, ...]

    @property
    def has_stem_option(self) -> bool:
        """Whether `stem="small"` exists for this model."""
        return self.small_min_size is not None


_REGISTRY: dict[str, ModelInfo] = {}
_FAMILY_BUILDERS: dict[str, Callable[..., Any]] = {}
_FAMILIES: dict[str, Family] = {}
# The modules whose models register themselves when imported (with Keras), in the order `list_models()` gives.
FAMILY_MODULES = ("kdeep.models.deep_convnet", "kdeep.models.vgg", "kdeep.models.inception", "kdeep.models.resnet",
                  "kdeep.models.cifar")


def _load_families() -> dict[str, ModelInfo]:
    """The registry, every family module imported first (Keras loads only when a model or the registry is asked for)."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    return _REGISTRY


def _registered() -> list[ModelInfo]:
    """Every registered model, ordered by `FAMILY_MODULES` and, within a module, as it defines them: the registry is
    whole and in one order whichever module a program imported first."""
    return sorted(_load_families().values(), key=lambda entry: FAMILY_MODULES.index(entry.builder.__module__))


def register_model(family: Family, *, params: int) -> Callable[[Builder], Builder]:
    """Registers the decorated builder under its own name (timm's `@register_model`); returns it unchanged.

    Args:
        family: the model's family (defaults and limits).
        params: trainable parameters at the family's default input and classes; the builder's docstring states
            the same number (tests build every model and check both).

    Returns:
        The decorator: the builder, taking also a pretrained preset's tag as `weights` (`weights="fashion_mnist"`
        builds the preset `<name>.fashion_mnist` with its input shape, classes and width: `kdeep presets`).
    """

    def decorator(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice; pick a unique name")
        description = (builder.__doc__ or "").strip().splitlines()
        if not description:
            raise ModelError(f"model {name!r} has no docstring; its first line is the model's description")
        families = (family.name, family.parent) if family.parent else (family.name,)

        @functools.wraps(builder)
        def with_presets(input_shape: InputShape | None = None, num_classes: int | None = None, *,
                         weights: Weights = None, **options: Any) -> Any:
            if is_preset_tag(weights):  # `resnet20(weights="fashion_mnist")`: the preset resnet20.fashion_mnist
                from kdeep.models import presets

                return presets.build(name, str(weights), input_shape, num_classes, **options)
            return builder(input_shape, num_classes, weights=weights, **options)

        _REGISTRY[name] = ModelInfo(name, family.name, family.input_shape, family.small_input_shape,
                                    family.num_classes, family.min_size, family.small_min_size, with_presets,
                                    description[0].rstrip("."), params, families)
        return with_presets  # type: ignore[return-value]

    return decorator


def family_builder(*families_built: Family) -> Callable[[Builder], Builder]:
    """Marks the decorated function as the generic builder of `families_built`: the function a model's
    `**options` go to (`resnet50(**options)` calls `resnet(depth=50, **options)`). Returns it unchanged."""

    def decorator(builder: Builder) -> Builder:
        for family in families_built:
            _FAMILY_BUILDERS[family.name] = builder
            _FAMILIES[family.name] = family
        return builder

    return decorator


def options_of(name: str) -> list[str]:
    """The keyword options model `name` takes: its own, and for `**options` its family builder's, less the
    arguments its family's models fix (`variant_args`) and input_shape/num_classes."""
    entry = info(name)
    own = inspect.signature(entry.builder).parameters
    names = [p for p, parameter in own.items() if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(names) < len(own):
        fixed = _FAMILIES[entry.family].variant_args
        names += [p for p in inspect.signature(_FAMILY_BUILDERS[entry.family]).parameters
                  if p not in names and p not in fixed]
    return [p for p in names if p not in ("input_shape", "num_classes")]


def families() -> list[str]:
    """Returns the family names (and the wider ones, e.g. "resnet" over "cifar_resnet") in listing order."""
    return list(dict.fromkeys(family for entry in _registered() for family in entry.families))


def list_models(family: str | None = None) -> list[str]:
    """Returns the registered model names (in `FAMILY_MODULES` order), optionally of one family.

    Args:
        family: a name from `families()`; "resnet" includes the CIFAR ResNets ("cifar_resnet").

    Raises:
        ModelError: an unknown family (with the closest names).
    """
    if family is not None and family not in families():
        raise ModelError(f"unknown family {family!r}; {_suggest(family, families(), 'families')}")
    return [entry.name for entry in _registered() if family is None or family in entry.families]


def info(name: str) -> ModelInfo:
    """Returns the registry entry of `name`; ModelError with the closest names when unknown."""
    known = _load_families()
    if name not in known:
        raise ModelError(f"unknown model {name!r}; {_suggest(name, [entry.name for entry in _registered()], 'models')}")
    return known[name]


def _suggest(wrong: str, valid: list[str], what: str) -> str:
    """'did you mean a, b?' (difflib's closest matches); the valid names themselves when there are few."""
    close = difflib.get_close_matches(str(wrong), valid, n=3, cutoff=0.7)
    guess = f"did you mean {', '.join(close)}? " if close else ""
    if len(valid) <= 8:
        return f"{guess}(valid: {', '.join(valid)})" if close else f"valid: {', '.join(valid)}"
    return f"{guess}(`kdeep models` lists all {len(valid)} {what})" if close else \
        f"`kdeep models` (or kdeep.models.list_models()) lists all {len(valid)} {what}"


def build(name: str, /, *, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
          **options: Any) -> Any:
    """Builds a registered model by name: the same as calling its function (`build("resnet50")` is `resnet50()`).

    Args:
        name: a name from `list_models()`.
        input_shape: (H, W, C); the model's default when None.
        num_classes: classifier width; the model's default when None.
        **options: the model function's keyword arguments: weights (a `.weights.h5` path), include_top, pooling
            (None/"avg"/"max"), classifier_activation ("softmax" default, None for logits), name, stem
            ("auto"/"imagenet"/"small" where the family has one), width (channel multiplier in (0, 4] for VGG,
            GoogLeNet and the ResNets; 1.0, the default, is accepted by every model), and the family's own
            options (dropout, batchnorm, ...).

    Returns:
        A `keras.Model` carrying the contract its builder declared (`kdeep.contract.contract_of`).

    Raises:
        ModelError: unknown name or option, impossible shape, num_classes < 1, missing weights file.
    """
    entry = info(name)
    _check_options(entry, options)
    return entry.builder(input_shape, num_classes, **options)


def takes_width(name: str) -> bool:
    """Whether model `name` has the width multiplier (VGG, GoogLeNet and the ResNets do)."""
    return "width" in options_of(name)


def _check_options(entry: ModelInfo, options: dict[str, Any]) -> None:
    """Unknown options; `width=1.0` is dropped (and any other width refused) for models without a width."""
    parameters = options_of(entry.name)
    if "width" in options and "width" not in parameters:
        if check_width(entry.name, options.pop("width")) != 1.0:
            raise ModelError(f"{entry.name}: has no width option (VGG, GoogLeNet and the ResNets have one); "
                             f"use width=1.0")
    if "stem" in options and "stem" not in parameters:
        raise ModelError(f"{entry.name}: has no stem option (it is defined for one input geometry)")
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ModelError(f"{entry.name}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(parameters)}")


@dataclasses.dataclass(frozen=True)
class Checked:
    """A builder's arguments after `check`: defaults filled in, every value valid.

    Attributes:
        name: the model name (for messages and the Keras model).
        family: the family's name (declared in the contract).
        input_shape: (H, W, C).
        num_classes: classes.
        stem: "imagenet" or "small" ("auto" resolved); None for families without a stem option.
        weights: the weights file to load after building, or None.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    stem: str | None
    weights: str | None


def check(family: Family, name: str, input_shape: tuple[int, ...] | None, num_classes: int | None, *,
          weights: Weights = None, stem: str | None = None, pooling: str | None = None,
          classifier_activation: str | None = "softmax", dropout: float | None = None,
          width: float = 1.0) -> Checked:
    """Checks the arguments every builder shares, before any layer is made; one-line ModelErrors naming the fix.

    Args:
        family: the model's family (defaults and limits).
        name: the model name, for messages.
        input_shape: (H, W, C) or None for the family's default.
        num_classes: classes or None for the family's default.
        weights: None or a `.weights.h5` path (`resolve_weights`).
        stem: "auto", "imagenet" or "small" for families with a stem option; None for the others.
        pooling: None, "avg" or "max".
        classifier_activation: a Keras activation name, or None for logits.
        dropout: a rate in [0, 1), or None where the family has no dropout.
        width: the width multiplier, in (0, MAX_WIDTH].

    Returns:
        The checked arguments (the stem resolved from the input size when "auto").
    """
    shape = _check_shape(name, family.input_shape if input_shape is None else input_shape)
    classes = family.num_classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
        raise ModelError(f"{name}: num_classes must be an integer >= 1, got {classes!r}")
    if pooling not in POOLINGS:
        raise ModelError(f"{name}: pooling must be one of {POOLINGS}, got {pooling!r}")
    if classifier_activation is not None and not isinstance(classifier_activation, str):
        raise ModelError(f"{name}: classifier_activation must be a Keras activation name or None (logits)")
    if dropout is not None and not (isinstance(dropout, numbers.Real) and 0.0 <= dropout < 1.0):
        raise ModelError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
    check_width(name, width)
    stem = _resolve_stem(family, name, shape, stem)
    return Checked(name, family.name, shape, int(classes), stem, resolve_weights(name, weights))


def choose(name: str, what: str, value: Any, table: dict[Any, Any] | tuple[Any, ...]) -> Any:
    """`table[value]` (or `value` when it is in a tuple); ModelError naming the valid values when it is not there."""
    try:
        hit = value in table
    except TypeError:  # an unhashable value
        hit = False
    if not hit:
        valid = ", ".join(map(str, table))
        raise ModelError(f"{name}: {what} must be one of {valid}, got {value!r}")
    return table[value] if isinstance(table, dict) else value


def check_width(name: str, width: Any) -> float:
    """Returns `width` as a float; ModelError unless it is a number in (0, MAX_WIDTH]."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not 0 < width <= MAX_WIDTH:
        raise ModelError(f"{name}: width must be a number in (0, {MAX_WIDTH:g}], got {width!r}")
    return float(width)


def is_preset_tag(weights: Weights) -> bool:
    """Whether a builder's `weights=` names a pretrained preset's tag (`"fashion_mnist"`), not a file."""
    return isinstance(weights, str) and weights.isidentifier() and not os.path.exists(weights)


def resolve_weights(name: str, weights: Weights) -> str | None:
    """Where a builder's `weights=` file is checked: None, or a `.weights.h5` file (a preset tag never gets here:
    `register_model`'s wrapper builds the preset).

    Args:
        name: the model name, for messages.
        weights: None (random initialization) or the path of a `.weights.h5` file saved by `model.save_weights`.

    Returns:
        The file to load after building, or None.

    Raises:
        ModelError: not a `.weights.h5` path, or no such file.
    """
    if weights is None:
        return None
    path = os.fspath(weights)
    if not path.endswith(".weights.h5"):
        raise ModelError(f"{name}: weights must be None, a preset tag (`kdeep presets`) or a path to a "
                         f"'.weights.h5' file, got {path!r}")
    if not os.path.isfile(path):
        raise ModelError(f"{name}: weights file {path!r} does not exist; save one with model.save_weights(path)")
    return path


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Loads a `.weights.h5` file into `model`; ModelError when it is missing or does not fit."""
    path = resolve_weights(model.name, path)
    try:
        with warnings.catch_warnings():  # Keras 3.15 warns about every functional model's layer containers
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(path)
    except ValueError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ModelError(f"weights file {path!r} does not fit model {model.name!r}: {first_line}") from None


def finish(model: Any, checked: Checked, top: Top, *, first_conv: str, blocks: tuple[str, ...],
           width: float = 1.0) -> Any:
    """Loads the checked weights into a freshly built model and attaches the contract its builder declares.

    Args:
        model: the Keras model.
        checked: the builder's checked arguments (family, weights).
        top: the classifier head `blocks.top` built (classifier layers, output kind).
        first_conv: the name of the first convolution.
        blocks: the block names of the layers with weights below the classifier, bottom to top.
        width: the width multiplier the model was built with.

    Returns:
        The model.
    """
    if checked.weights is not None:
        load_weights(model, checked.weights)
    return attach(model, Contract(input_range=INPUT_RANGE, output=top.output, classifier=top.classifier,
                                  first_conv=first_conv, blocks=blocks, family=checked.family, width=float(width)))


def _check_shape(name: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ModelError(f"{name}: input_shape must be (height, width, channels) of positive ints, got {shape}")
    return tuple(int(d) for d in shape)  # type: ignore[return-value]


def _resolve_stem(family: Family, name: str, shape: tuple[int, int, int], stem: str | None) -> str | None:
    """Replaces stem="auto" by a concrete stem and checks the image is big enough for it."""
    side = min(shape[:2])
    if family.small_min_size is not None:
        stem = choose(name, "stem", stem, STEMS)
        if stem == "auto":
            stem = "small" if side < SMALL_STEM_BELOW else "imagenet"
        minimum = family.small_min_size if stem == "small" else family.min_size
        hint = "" if stem == "small" else f" (or {family.small_min_size} with stem='small')"
    else:
        minimum, hint = family.min_size, ""
    if side < minimum:
        what = f"the {stem} stem" if stem else "it"
        raise ModelError(f"{name}: input {shape[0]}x{shape[1]} is too small; {what} needs at least "
                         f"{minimum}x{minimum}{hint}")
    return stem
