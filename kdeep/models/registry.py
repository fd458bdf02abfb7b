"""The model registry: one table of every model's family, default shapes and limits, and `build` by name."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import os
import warnings
from typing import Any, Callable

from kdeep.contract import attach, infer
from kdeep.errors import ModelError

STEMS = ("auto", "imagenet", "small")
POOLINGS = (None, "avg", "max")
# `stem="auto"` picks the small-input stem when the shorter image side is below this.
SMALL_STEM_BELOW = 64
# The width multiplier's range (0, MAX_WIDTH]; families whose builder has a `width` argument take it.
MAX_WIDTH = 4.0


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: registry name, e.g. "resnet50".
        family: "deepconvnet", "vgg", "googlenet", "resnet" or "cifar_resnet".
        input_shape: default input (H, W, C).
        small_input_shape: the small input it is also tested at (H, W, C).
        num_classes: default number of classes.
        min_size: smallest image side the default (paper) stem accepts.
        small_min_size: smallest side with the small-input stem; None when the family has no stem option.
        builder: the family function that makes the layers (called with resolved, validated options).
        description: one line for listings.
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

    @property
    def has_stem_option(self) -> bool:
        """Whether `stem="small"` exists for this model."""
        return self.small_min_size is not None


_REGISTRY: dict[str, ModelInfo] = {}


def register(
    name: str,
    *,
    family: str,
    input_shape: tuple[int, int, int],
    small_input_shape: tuple[int, int, int],
    num_classes: int,
    min_size: int,
    small_min_size: int | None = None,
    description: str = "",
    **fixed: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers a family builder under `name`; `fixed` are the variant's own arguments (e.g. depth=50).

    Returns:
        A decorator that records the builder and returns it unchanged, so one family function can be
        registered under several names. Use `model_function(name)` for the public `resnet50(...)` form.
    """

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice; pick a unique name")
        bound = functools.partial(builder, **fixed) if fixed else builder
        _REGISTRY[name] = ModelInfo(
            name, family, tuple(input_shape), tuple(small_input_shape), num_classes, min_size,
            small_min_size, bound, description or (builder.__doc__ or "").strip().splitlines()[0],
        )
        return builder

    return decorator


def list_models(family: str | None = None) -> list[str]:
    """Returns the registered model names (in registration order), optionally of one family."""
    return [n for n, info in _REGISTRY.items() if family is None or info.family == family]


def info(name: str) -> ModelInfo:
    """Returns the registry entry of `name`; ModelError listing the valid names when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(_REGISTRY)}") from None


def build(name: str, /, *, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
          **options: Any) -> Any:
    """Builds a registered model as a Keras functional model.

    Args:
        name: a name from `list_models()`.
        input_shape: (H, W, C); the model's default when None.
        num_classes: classifier width; the model's default when None.
        **options: include_top, pooling (None/"avg"/"max"), classifier_activation ("softmax" default, None
            for logits), weights (path to a `.weights.h5`), name, stem ("auto"/"imagenet"/"small" where the
            family has one), width (channel multiplier in (0, 4] for VGG, GoogLeNet and ResNet; 1.0, the
            default, is accepted by every model), and the family's own options (dropout, batchnorm, ...).

    Returns:
        A `keras.Model` carrying its contract (`kdeep.contract.contract_of`: input range, output kind,
        classifier layers, blocks, family).

    Raises:
        ModelError: unknown name or option, impossible shape, num_classes < 1, missing weights file.
    """
    entry = info(name)
    shape = _check_shape(name, entry.input_shape if input_shape is None else input_shape)
    classes = entry.num_classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
        raise ModelError(f"{name}: num_classes must be an integer >= 1, got {classes!r}")
    weights = options.pop("weights", None)
    options.setdefault("name", name)
    _check_common(name, options)
    _resolve_width(entry, options)
    _resolve_stem(entry, shape, options)
    _check_options(entry, options)
    model = entry.builder(input_shape=shape, num_classes=int(classes), **options)
    if weights is not None:
        load_weights(model, weights)
    return attach(model, infer(model, family=entry.family, width=float(options.get("width", 1.0))))


def model_function(name: str) -> Callable[..., Any]:
    """Returns the public builder `name(input_shape=None, num_classes=None, **options)` for the registry entry."""

    def build_named(input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
                    **options: Any) -> Any:
        return build(name, input_shape=input_shape, num_classes=num_classes, **options)

    entry = info(name)
    build_named.__name__ = build_named.__qualname__ = name
    build_named.__doc__ = (
        f"Builds `{name}` ({entry.description}); default input {entry.input_shape}, "
        f"{entry.num_classes} classes. Same arguments as `kdeep.models.build`."
    )
    return build_named


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Loads a `.weights.h5` file into `model`; ModelError when it is missing or does not fit."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ModelError(f"weights must be a path to a '.weights.h5' file, got {path!r}")
    if not os.path.isfile(path):
        raise ModelError(f"weights file {path!r} does not exist; save one with model.save_weights(path)")
    try:
        with warnings.catch_warnings():  # Keras 3.15 warns about every functional model's layer containers
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(path)
    except ValueError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ModelError(f"weights file {path!r} does not fit model {model.name!r}: {first_line}") from None


def _check_shape(name: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ModelError(f"{name}: input_shape must be (height, width, channels) of positive ints, got {shape}")
    return tuple(int(d) for d in shape)  # type: ignore[return-value]


def _check_common(name: str, options: dict[str, Any]) -> None:
    if options.get("pooling") not in POOLINGS:
        raise ModelError(f"{name}: pooling must be one of {POOLINGS}, got {options['pooling']!r}")
    activation = options.get("classifier_activation", "softmax")
    if activation is not None and not isinstance(activation, str):
        raise ModelError(f"{name}: classifier_activation must be a Keras activation name or None (logits)")
    dropout = options.get("dropout")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ModelError(f"{name}: dropout must be in [0, 1), got {dropout!r}")


def takes_width(name: str) -> bool:
    """Whether model `name` has the width multiplier (VGG, GoogLeNet and the ResNets do)."""
    return "width" in inspect.signature(info(name).builder).parameters


def _resolve_width(entry: ModelInfo, options: dict[str, Any]) -> None:
    """Checks `width` is in (0, MAX_WIDTH]; drops width=1.0 for models without the option."""
    if "width" not in options:
        return
    width = options["width"]
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not 0 < width <= MAX_WIDTH:
        raise ModelError(f"{entry.name}: width must be a number in (0, {MAX_WIDTH:g}], got {width!r}")
    if not takes_width(entry.name):
        if width != 1.0:
            raise ModelError(f"{entry.name}: has no width option (VGG, GoogLeNet and the ResNets have one); "
                             f"use width=1.0")
        del options["width"]
    else:
        options["width"] = float(width)


def _resolve_stem(entry: ModelInfo, shape: tuple[int, int, int], options: dict[str, Any]) -> None:
    """Replaces stem="auto" by a concrete stem and checks the image is big enough for it."""
    side = min(shape[:2])
    if entry.has_stem_option:
        stem = options.get("stem", "auto")
        if stem not in STEMS:
            raise ModelError(f"{entry.name}: stem must be one of {STEMS}, got {stem!r}")
        if stem == "auto":
            stem = "small" if side < SMALL_STEM_BELOW else "imagenet"
        options["stem"] = stem
        minimum = entry.small_min_size if stem == "small" else entry.min_size
        hint = "" if stem == "small" else f" (or {entry.small_min_size} with stem='small')"
    else:
        if "stem" in options:
            raise ModelError(f"{entry.name}: has no stem option (it is defined for one input geometry)")
        minimum, hint, stem = entry.min_size, "", None
    if side < minimum:
        what = f"the {stem} stem" if stem else "it"
        raise ModelError(
            f"{entry.name}: input {shape[0]}x{shape[1]} is too small; {what} needs at least "
            f"{minimum}x{minimum}{hint}"
        )


def _check_options(entry: ModelInfo, options: dict[str, Any]) -> None:
    parameters = inspect.signature(entry.builder).parameters
    fixed = getattr(entry.builder, "keywords", {})  # a variant's own arguments (depth=50) are not options
    valid = [p for p in parameters if p not in ("input_shape", "num_classes", *fixed)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ModelError(f"{entry.name}: unknown option(s) {', '.join(unknown)}; valid: weights, {', '.join(valid)}")
