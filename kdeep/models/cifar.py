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

One family builder for both (`cifar_resnet`; `shortcut=None` makes the plain net), the depth rule 6n+2, the
blocks as plain functions (`basic_block` from `kdeep.models.resnet`, `plain_block`), and one registered
function per model. `width` scales the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
"""
from __future__ import annotations

import functools
import numbers
from typing import Any

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks
from kdeep.models.registry import (Family, InputShape, Weights, check, choose, family_builder, finish,
                                   register_model)
from kdeep.models.resnet import Block, basic_block, stages

CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # the paper's Table 6; any 6n+2 builds
CIFAR_FILTERS = (16, 32, 64)
SHORTCUTS = ("A", "B", None)  # None: no shortcut, the plain net
CIFAR_RESNET = Family("cifar_resnet", input_shape=(32, 32, 3), small_input_shape=(28, 28, 1), num_classes=10,
                      min_size=4, parent="resnet", variant_args=("depth",))
PLAIN = Family("plain", input_shape=(32, 32, 3), small_input_shape=(28, 28, 1), num_classes=10, min_size=4,
               variant_args=("depth", "shortcut"))
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


@family_builder(CIFAR_RESNET, PLAIN)
def cifar_resnet(input_shape: InputShape | None = None, num_classes: int | None = None, *, depth: int = 20,
                 shortcut: str | None = "A", weights: Weights = None, include_top: bool = True,
                 pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
                 name: str | None = None) -> keras.Model:
    """Builds a CIFAR ResNet, or its plain twin, of any depth 6n+2 (the family builder `resnet20` ... `plain110`
    call).

    Args:
        input_shape: (H, W, C), at least 4x4; default the paper's (32, 32, 3).
        num_classes: output classes; default 10.
        depth: 6n+2 with n >= 1 (the paper's 20, 32, 44, 56, 110).
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice), "B" (1x1 projection), or None for the
            plain net (no shortcuts; family "plain").
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name; default "resnet{depth}" ("plain{depth}" without shortcuts).

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: an argument out of range (one line naming the valid values).
    """
    name = name or f"{'resnet' if shortcut else 'plain'}{depth}"
    choose(name, "shortcut", shortcut, SHORTCUTS)
    n = blocks_per_stage(name, depth)
    checked = check(CIFAR_RESNET if shortcut else PLAIN, name, input_shape, num_classes, weights=weights,
                    pooling=pooling, classifier_activation=classifier_activation, width=width)
    filters = tuple(blocks.scaled(f, width) for f in CIFAR_FILTERS)
    inputs = keras.Input(checked.input_shape, name="input")
    x = blocks.conv_bn_relu(inputs, filters[0], 3, "stem_conv")
    block = functools.partial(basic_block, shortcut=shortcut) if shortcut else plain_block
    x = stages(x, block, filters, (n,) * 3, first_stage=1)
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation)
    model = keras.Model(inputs, top.outputs, name=name)
    return finish(model, checked, top, first_conv="stem_conv", blocks=BLOCK_NAMES, width=width)


@register_model(CIFAR_RESNET, params=269_722)
def resnet20(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-20 for CIFAR (He et al. 2015, section 4.2): three stages of 3 basic blocks, 16/32/64 filters.

    Option A shortcuts (zero-padded identities) add no weights: 269,722 parameters at 32x32x3 with 10 classes,
    41 M MACs. Arguments: input_shape (default 32x32x3), num_classes (10), weights, and `cifar_resnet`'s
    options (shortcut, include_top, pooling, classifier_activation, width, name).
    """
    return cifar_resnet(input_shape, num_classes, depth=20, weights=weights, **options)


@register_model(CIFAR_RESNET, params=464_154)
def resnet32(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-32 (He et al. 2015, CIFAR-10 table 6): 5 blocks per stage.

    464,154 parameters at 32x32x3 with 10 classes (the paper's 0.46M), 69 M MACs; the arguments of `resnet20`.
    """
    return cifar_resnet(input_shape, num_classes, depth=32, weights=weights, **options)


@register_model(CIFAR_RESNET, params=658_586)
def resnet44(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-44, CIFAR variant (He et al. 2015), 7 basic blocks in each of its three stages.

    At the default 32x32x3 input and 10 classes it has 658,586 parameters and costs 97 M MACs. It is
    `cifar_resnet(depth=44)`, with `resnet20`'s arguments.
    """
    return cifar_resnet(input_shape, num_classes, depth=44, weights=weights, **options)


@register_model(CIFAR_RESNET, params=853_018)
def resnet56(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-56 (He et al. 2015): 9 blocks a stage, the depth where the paper's plain net trains worse.

    Parameters: 853,018 (32x32x3, 10 classes; the paper's 0.85M). MACs: 125 M. Called as `resnet20` is.
    """
    return cifar_resnet(input_shape, num_classes, depth=56, weights=weights, **options)


@register_model(CIFAR_RESNET, params=1_727_962)
def resnet110(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
              **options: Any) -> keras.Model:
    """ResNet-110 of He et al. 2015, the deepest CIFAR ResNet in the paper's table: 18 blocks per stage.

    1,727,962 parameters with 10 classes at 32x32x3, 253 M MACs (the paper trains it with a 0.01 warm-up).
    See `resnet20` for the arguments.
    """
    return cifar_resnet(input_shape, num_classes, depth=110, weights=weights, **options)


@register_model(PLAIN, params=269_722)
def plain20(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
            **options: Any) -> keras.Model:
    """Plain-20: ResNet-20 with every shortcut removed (He et al. 2015, Fig. 6, the "plain" baseline).

    Each block is conv3x3 -> BN -> ReLU -> conv3x3 -> BN -> ReLU, the layers and names of `resnet20` less its
    `_add` and `_shortcut*` layers: 269,722 parameters at 32x32x3 with 10 classes (exactly `resnet20`'s),
    41 M MACs. Arguments: input_shape (default 32x32x3), num_classes (10), weights, and `cifar_resnet`'s
    options but shortcut (include_top, pooling, classifier_activation, width, name).
    """
    return cifar_resnet(input_shape, num_classes, depth=20, shortcut=None, weights=weights, **options)


@register_model(PLAIN, params=464_154)
def plain32(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
            **options: Any) -> keras.Model:
    """Plain-32, the shortcut-free twin of ResNet-32 (He et al. 2015).

    464,154 parameters, 69 M MACs, as `resnet32` (32x32x3, 10 classes); `plain20`'s arguments.
    """
    return cifar_resnet(input_shape, num_classes, depth=32, shortcut=None, weights=weights, **options)


@register_model(PLAIN, params=658_586)
def plain44(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
            **options: Any) -> keras.Model:
    """Plain-44 (He et al. 2015): `resnet44` without its 21 shortcuts.

    658,586 parameters at 32x32x3 with 10 classes and 97 M MACs, the same as the ResNet. It takes what
    `plain20` takes.
    """
    return cifar_resnet(input_shape, num_classes, depth=44, shortcut=None, weights=weights, **options)


@register_model(PLAIN, params=853_018)
def plain56(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
            **options: Any) -> keras.Model:
    """Plain-56, the net of He et al. 2015's Fig. 1: deeper than Plain-20, yet a higher training error.

    Its 853,018 parameters (32x32x3, 10 classes) and 125 M MACs equal `resnet56`'s; only the shortcuts differ.
    Arguments as `plain20`.
    """
    return cifar_resnet(input_shape, num_classes, depth=56, shortcut=None, weights=weights, **options)


@register_model(PLAIN, params=1_727_962)
def plain110(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """Plain-110: ResNet-110 without shortcuts, 54 conv pairs in a row (He et al. 2015).

    With 10 classes at 32x32x3: 1,727,962 parameters, 253 M MACs. Same arguments as `plain20`.
    """
    return cifar_resnet(input_shape, num_classes, depth=110, shortcut=None, weights=weights, **options)
