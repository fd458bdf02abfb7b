"""The CIFAR ResNets (He et al. 2015, section 4.2) and their plain twins, the same nets with every shortcut removed.

- ResNets (`resnet20/32/44/56/110`, depth 6n+2): conv3x3(16) stem, no max-pool, three stages of n basic
  blocks with 16/32/64 filters, global average pool, fc. Shortcuts use the paper's option A: the identity,
  subsampled by 2 and zero-padded with the extra channels, so they add no parameters (0.27M for ResNet-20,
  0.85M for ResNet-56, 1.7M for ResNet-110). `shortcut="B"` uses 1x1 projections instead.
- Plain nets (`plain20/32/44/56/110`): the paper's "plain" baselines (Fig. 6): each block is the residual
  block without its shortcut, conv3x3 -> BN -> ReLU -> conv3x3 -> BN -> ReLU, so every layer keeps the
  ResNet's name (`stage2_block1_conv1`, ...; only `_add` and `_shortcut*` are missing) and its parameters
  (option A shortcuts have none). He et al. found the deeper plain nets train worse (higher *training*
  error at 56 than at 20 layers) while the deeper ResNets train better: the degradation problem that
  shortcuts solve (the book's 8.2.4).

One family builder for each (`cifar_resnet`, `plain_net`), the depth rule 6n+2, the blocks as plain functions
(`basic_block` from `kdeep.models.resnet`, `plain_block`), and one registered function per model. `width`
scales the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
"""
from __future__ import annotations

import functools
import numbers
import os
from typing import Any

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks
from kdeep.models.registry import Family, check, choose, finish, register_model
from kdeep.models.resnet import Block, basic_block, stages

CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # the paper's Table 6; any 6n+2 builds
CIFAR_FILTERS = (16, 32, 64)
SHORTCUTS = ("A", "B")
CIFAR_RESNET = Family("cifar_resnet", input_shape=(32, 32, 3), small_input_shape=(28, 28, 1), num_classes=10,
                      min_size=4, parent="resnet")
PLAIN = Family("plain", input_shape=(32, 32, 3), small_input_shape=(28, 28, 1), num_classes=10, min_size=4)
BLOCK_NAMES = ("stem", "stage1", "stage2", "stage3")


def plain_block(x: Any, filters: int, stride: int, name: str) -> Any:
    """The basic block without its shortcut: conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN -> ReLU."""
    x = blocks.conv_bn_relu(x, filters, 3, f"{name}_conv1", strides=stride)
    x = blocks.batchnorm(blocks.conv(x, filters, 3, f"{name}_conv2"), f"{name}_conv2_bn")
    return layers.Activation("relu", name=f"{name}_out")(x)


def blocks_per_stage(name: str, depth: Any) -> int:
    """n of a depth 6n+2 (two convs per block, three stages, the stem and the fc); ModelError for other depths."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 8 or (depth - 2) % 6:
        raise ModelError(f"{name}: depth must be 6n+2 with n >= 1 (the paper's {', '.join(map(str, CIFAR_DEPTHS))}), "
                         f"got {depth!r}")
    return (int(depth) - 2) // 6


def _cifar_net(family: Family, block: Block, input_shape: tuple[int, int, int] | None, num_classes: int | None,
               depth: int, weights: str | os.PathLike | None, include_top: bool, pooling: str | None,
               classifier_activation: str | None, width: float, name: str) -> keras.Model:
    """The layers both families share: stem, three stages of `block`, the classifier head; checked first."""
    n = blocks_per_stage(name, depth)
    checked = check(family, name, input_shape, num_classes, weights=weights, pooling=pooling,
                    classifier_activation=classifier_activation, width=width)
    filters = tuple(blocks.scaled(f, width) for f in CIFAR_FILTERS)
    inputs = keras.Input(checked.input_shape, name="input")
    x = blocks.conv_bn_relu(inputs, filters[0], 3, "stem_conv")
    x = stages(x, block, filters, (n,) * 3, first_stage=1)
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation)
    model = keras.Model(inputs, top.outputs, name=name)
    return finish(model, checked, top, first_conv="stem_conv", blocks=BLOCK_NAMES, width=width)


def cifar_resnet(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
                 depth: int = 20, shortcut: str = "A", weights: str | os.PathLike | None = None,
                 include_top: bool = True, pooling: str | None = None,
                 classifier_activation: str | None = "softmax", width: float = 1.0,
                 name: str | None = None) -> keras.Model:
    """Builds a CIFAR ResNet of any depth 6n+2 (the family builder `resnet20` ... `resnet110` call).

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        depth: 6n+2 with n >= 1 (the paper's 20, 32, 44, 56, 110).
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name; default "resnet{depth}".

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: an argument out of range (one line naming the valid values).
    """
    name = name or f"resnet{depth}"
    block = functools.partial(basic_block, shortcut=choose(name, "shortcut", shortcut, SHORTCUTS))
    return _cifar_net(CIFAR_RESNET, block, input_shape, num_classes, depth, weights, include_top, pooling,
                      classifier_activation, width, name)


def plain_net(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *, depth: int = 20,
              weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
              classifier_activation: str | None = "softmax", width: float = 1.0,
              name: str | None = None) -> keras.Model:
    """Builds the plain twin of a CIFAR ResNet of depth 6n+2 (the family builder `plain20` ... `plain110` call).

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        depth: 6n+2 with n >= 1 (the paper's 20, 32, 44, 56, 110).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name; default "plain{depth}".

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: an argument out of range (one line naming the valid values).
    """
    return _cifar_net(PLAIN, plain_block, input_shape, num_classes, depth, weights, include_top, pooling,
                      classifier_activation, width, name or f"plain{depth}")


@register_model(CIFAR_RESNET, params=269_722)
def resnet20(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             shortcut: str = "A", weights: str | os.PathLike | None = None, include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
             name: str = "resnet20") -> keras.Model:
    """CIFAR ResNet-20 (He et al. 2015, "Deep Residual Learning", section 4.2).

    Three stages of 3 basic blocks (16, 32, 64 filters), option A shortcuts (zero-padded identities,
    no parameters): 269,722 parameters at 32x32x3 with 10 classes, 41 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return cifar_resnet(input_shape, num_classes, depth=20, shortcut=shortcut, weights=weights,
                        include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                        width=width, name=name)


@register_model(CIFAR_RESNET, params=464_154)
def resnet32(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             shortcut: str = "A", weights: str | os.PathLike | None = None, include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
             name: str = "resnet32") -> keras.Model:
    """CIFAR ResNet-32 (He et al. 2015, "Deep Residual Learning", section 4.2).

    Three stages of 5 basic blocks (16, 32, 64 filters), option A shortcuts (zero-padded identities,
    no parameters): 464,154 parameters at 32x32x3 with 10 classes, 69 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return cifar_resnet(input_shape, num_classes, depth=32, shortcut=shortcut, weights=weights,
                        include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                        width=width, name=name)


@register_model(CIFAR_RESNET, params=658_586)
def resnet44(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             shortcut: str = "A", weights: str | os.PathLike | None = None, include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
             name: str = "resnet44") -> keras.Model:
    """CIFAR ResNet-44 (He et al. 2015, "Deep Residual Learning", section 4.2).

    Three stages of 7 basic blocks (16, 32, 64 filters), option A shortcuts (zero-padded identities,
    no parameters): 658,586 parameters at 32x32x3 with 10 classes, 97 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return cifar_resnet(input_shape, num_classes, depth=44, shortcut=shortcut, weights=weights,
                        include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                        width=width, name=name)


@register_model(CIFAR_RESNET, params=853_018)
def resnet56(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             shortcut: str = "A", weights: str | os.PathLike | None = None, include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
             name: str = "resnet56") -> keras.Model:
    """CIFAR ResNet-56 (He et al. 2015, "Deep Residual Learning", section 4.2).

    Three stages of 9 basic blocks (16, 32, 64 filters), option A shortcuts (zero-padded identities,
    no parameters): 853,018 parameters at 32x32x3 with 10 classes, 125 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return cifar_resnet(input_shape, num_classes, depth=56, shortcut=shortcut, weights=weights,
                        include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                        width=width, name=name)


@register_model(CIFAR_RESNET, params=1_727_962)
def resnet110(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
              shortcut: str = "A", weights: str | os.PathLike | None = None, include_top: bool = True,
              pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
              name: str = "resnet110") -> keras.Model:
    """CIFAR ResNet-110 (He et al. 2015, "Deep Residual Learning", section 4.2).

    Three stages of 18 basic blocks (16, 32, 64 filters), option A shortcuts (zero-padded identities,
    no parameters): 1,727,962 parameters at 32x32x3 with 10 classes, 253 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return cifar_resnet(input_shape, num_classes, depth=110, shortcut=shortcut, weights=weights,
                        include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                        width=width, name=name)


@register_model(PLAIN, params=269_722)
def plain20(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
            weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
            classifier_activation: str | None = "softmax", width: float = 1.0,
            name: str = "plain20") -> keras.Model:
    """Plain-20: ResNet-20 without its shortcuts (He et al. 2015, Fig. 6, the "plain" baseline).

    Three stages of 3 two-conv blocks (16, 32, 64 filters) with no shortcut, the layers and names of
    `resnet20` less its `_add` and `_shortcut*` layers: 269,722 parameters at 32x32x3 with 10
    classes (exactly `resnet20`'s), 41 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return plain_net(input_shape, num_classes, depth=20, weights=weights, include_top=include_top,
                     pooling=pooling, classifier_activation=classifier_activation, width=width, name=name)


@register_model(PLAIN, params=464_154)
def plain32(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
            weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
            classifier_activation: str | None = "softmax", width: float = 1.0,
            name: str = "plain32") -> keras.Model:
    """Plain-32: ResNet-32 without its shortcuts (He et al. 2015, Fig. 6, the "plain" baseline).

    Three stages of 5 two-conv blocks (16, 32, 64 filters) with no shortcut, the layers and names of
    `resnet32` less its `_add` and `_shortcut*` layers: 464,154 parameters at 32x32x3 with 10
    classes (exactly `resnet32`'s), 69 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return plain_net(input_shape, num_classes, depth=32, weights=weights, include_top=include_top,
                     pooling=pooling, classifier_activation=classifier_activation, width=width, name=name)


@register_model(PLAIN, params=658_586)
def plain44(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
            weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
            classifier_activation: str | None = "softmax", width: float = 1.0,
            name: str = "plain44") -> keras.Model:
    """Plain-44: ResNet-44 without its shortcuts (He et al. 2015, Fig. 6, the "plain" baseline).

    Three stages of 7 two-conv blocks (16, 32, 64 filters) with no shortcut, the layers and names of
    `resnet44` less its `_add` and `_shortcut*` layers: 658,586 parameters at 32x32x3 with 10
    classes (exactly `resnet44`'s), 97 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return plain_net(input_shape, num_classes, depth=44, weights=weights, include_top=include_top,
                     pooling=pooling, classifier_activation=classifier_activation, width=width, name=name)


@register_model(PLAIN, params=853_018)
def plain56(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
            weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
            classifier_activation: str | None = "softmax", width: float = 1.0,
            name: str = "plain56") -> keras.Model:
    """Plain-56: ResNet-56 without its shortcuts (He et al. 2015, Fig. 6, the "plain" baseline).

    Three stages of 9 two-conv blocks (16, 32, 64 filters) with no shortcut, the layers and names of
    `resnet56` less its `_add` and `_shortcut*` layers: 853,018 parameters at 32x32x3 with 10
    classes (exactly `resnet56`'s), 125 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return plain_net(input_shape, num_classes, depth=56, weights=weights, include_top=include_top,
                     pooling=pooling, classifier_activation=classifier_activation, width=width, name=name)


@register_model(PLAIN, params=1_727_962)
def plain110(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             weights: str | os.PathLike | None = None, include_top: bool = True, pooling: str | None = None,
             classifier_activation: str | None = "softmax", width: float = 1.0,
             name: str = "plain110") -> keras.Model:
    """Plain-110: ResNet-110 without its shortcuts (He et al. 2015, Fig. 6, the "plain" baseline).

    Three stages of 18 two-conv blocks (16, 32, 64 filters) with no shortcut, the layers and names of
    `resnet110` less its `_add` and `_shortcut*` layers: 1,727,962 parameters at 32x32x3 with 10
    classes (exactly `resnet110`'s), 253 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return plain_net(input_shape, num_classes, depth=110, weights=weights, include_top=include_top,
                     pooling=pooling, classifier_activation=classifier_activation, width=width, name=name)
