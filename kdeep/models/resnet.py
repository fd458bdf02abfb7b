"""ImageNet ResNets: v1 (He et al. 2015) and pre-activation v2 (He et al. 2016), and the residual blocks.

A residual block learns F(x) and outputs F(x) + x: the identity path lets gradients skip the block, which
is what makes 50 to 152 layers trainable. One family builder (`resnet`), one table of depths, the blocks as
plain functions (the CIFAR ResNets of `kdeep.models.cifar` reuse `basic_block` and `stages`), and one
registered function per model:

- v1 (`resnet18/34/50/101/152`): stem conv7x7/2 -> BN -> ReLU -> maxpool3x3/2, four stages (64, 128, 256,
  512 filters; "conv2_x".."conv5_x" in the paper, `stage2`..`stage5` here), global average pool, fc.
  Basic blocks (two 3x3) for 18/34, bottlenecks (1x1, 3x3, 1x1 with 4x expansion) for 50+. Shortcuts are
  identities, or a 1x1 conv + BN projection where the shape changes (the paper's option B). The stride of a
  bottleneck sits on its 3x3 conv ("ResNet v1.5", as torchvision). Convs before BN have no bias, so the
  counts at 224x224x3 / 1000 classes equal torchvision's: 11,689,512 / 21,797,672 / 25,557,032 /
  44,549,160 / 60,192,808.
- v2 (`resnet50v2/101v2/152v2`): the same bottleneck stages with pre-activation units
  (BN -> ReLU -> conv), projections taken from the pre-activated input, and a final BN -> ReLU before the
  pool (He et al. 2016, "Identity Mappings"). The stride is in the first block of a stage, as in v1
  (keras.applications' v2 puts it in the last block; the parameter count is the same).

Small-input stem for v1/v2 (`stem="small"`, picked automatically below 64 pixels): one conv3x3/1 instead
of conv7x7/2 + max-pool, so 32x32 reaches the last stage at 4x4 instead of 1x1.

`width` scales the stem's and every stage's filters, rounded to multiples of 8 (`blocks.scaled`); 1.0 is the
paper's network, with the counts above.
"""
from __future__ import annotations

from typing import Any, Callable

import keras
from keras import layers

from kdeep.models import blocks
from kdeep.models.registry import (Family, InputShape, Weights, check, choose, family_builder, finish,
                                   register_model)

# depth: (block kind, blocks per stage). ImageNet stages have 64, 128, 256, 512 base filters.
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# v2 (pre-activation) exists with bottlenecks only.
DEPTHS = {1: IMAGENET_DEPTHS, 2: {d: spec for d, spec in IMAGENET_DEPTHS.items() if spec[0] == "bottleneck"}}
IMAGENET_FILTERS = (64, 128, 256, 512)
RESNET = Family("resnet", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3), num_classes=1000, min_size=32,
                small_min_size=8, variant_args=("depth", "version"))


def _projection(x: Any, filters: int, stride: int, name: str) -> Any:
    """Option B shortcut: 1x1 conv (with the block's stride) + BN."""
    x = blocks.conv(x, filters, 1, f"{name}_shortcut", strides=stride)
    return blocks.batchnorm(x, f"{name}_shortcut_bn")


def _zero_pad_shortcut(x: Any, filters: int, stride: int, name: str) -> Any:
    """Option A shortcut: x[:, ::stride, ::stride, :] with zero channels padded on both sides (no weights).

    Built from stock layers only (a 1x1 max-pool with stride = subsampling; a 3-D zero padding of the
    channel axis), so saved models load without custom objects.
    """
    x = layers.MaxPooling2D(1, strides=stride, name=f"{name}_shortcut_subsample")(x)
    height, width, channels = x.shape[1:]
    extra = filters - channels
    x = layers.Reshape((height, width, channels, 1), name=f"{name}_shortcut_expand")(x)
    x = layers.ZeroPadding3D(((0, 0), (0, 0), (extra // 2, extra - extra // 2)), name=f"{name}_shortcut_pad")(x)
    return layers.Reshape((height, width, filters), name=f"{name}_shortcut")(x)


def _shortcut(x: Any, filters: int, stride: int, name: str, kind: str) -> Any:
    """The identity when the shape is kept, else a projection ("B") or a zero-padded identity ("A")."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return (_zero_pad_shortcut if kind == "A" else _projection)(x, filters, stride, name)


def basic_block(x: Any, filters: int, stride: int, name: str, shortcut: str = "B") -> Any:
    """v1 basic block: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU."""
    short = _shortcut(x, filters, stride, name, shortcut)
    x = blocks.conv_bn_relu(x, filters, 3, f"{name}_conv1", strides=stride)
    x = blocks.batchnorm(blocks.conv(x, filters, 3, f"{name}_conv2"), f"{name}_conv2_bn")
    x = layers.Add(name=f"{name}_add")([short, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x: Any, filters: int, stride: int, name: str, shortcut: str = "B") -> Any:
    """v1 bottleneck: 1x1 (filters) -> 3x3 (filters, stride) -> 1x1 (4 * filters), + shortcut, ReLU."""
    short = _shortcut(x, 4 * filters, stride, name, shortcut)
    x = blocks.conv_bn_relu(x, filters, 1, f"{name}_conv1")
    x = blocks.conv_bn_relu(x, filters, 3, f"{name}_conv2", strides=stride)
    x = blocks.batchnorm(blocks.conv(x, 4 * filters, 1, f"{name}_conv3"), f"{name}_conv3_bn")
    x = layers.Add(name=f"{name}_add")([short, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def preact_bottleneck_block(x: Any, filters: int, stride: int, name: str, shortcut: str = "B") -> Any:
    """v2 bottleneck: BN -> ReLU -> 1x1 -> BN -> ReLU -> 3x3 -> BN -> ReLU -> 1x1, + shortcut (no ReLU)."""
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(blocks.batchnorm(x, f"{name}_preact_bn"))
    if stride != 1 or x.shape[-1] != 4 * filters:  # a plain conv: the next unit's BN follows the sum
        short = blocks.conv(preact, 4 * filters, 1, f"{name}_shortcut", strides=stride)
    else:
        short = x
    x = blocks.conv_bn_relu(preact, filters, 1, f"{name}_conv1")
    x = blocks.conv_bn_relu(x, filters, 3, f"{name}_conv2", strides=stride)
    x = blocks.conv(x, 4 * filters, 1, f"{name}_conv3")
    return layers.Add(name=f"{name}_add")([short, x])


# (block kind, version) -> the block function.
BLOCKS = {("basic", 1): basic_block, ("bottleneck", 1): bottleneck_block, ("bottleneck", 2): preact_bottleneck_block}
Block = Callable[[Any, int, int, str], Any]


def stages(x: Any, block: Block, filters: tuple[int, ...], counts: tuple[int, ...], first_stage: int) -> Any:
    """Stacks stages of `block(x, filters, stride, name)`; every stage but the first halves the resolution in its
    first block. Blocks are named `stage{s}_block{b}`, stages numbered from `first_stage`."""
    for s, (stage_filters, count) in enumerate(zip(filters, counts)):
        for b in range(count):
            stride = 2 if s > 0 and b == 0 else 1
            x = block(x, stage_filters, stride, f"stage{first_stage + s}_block{b + 1}")
    return x


@family_builder(RESNET)
def resnet(input_shape: InputShape | None = None, num_classes: int | None = None, *, depth: int = 50,
           version: int = 1, weights: Weights = None, stem: str = "auto", include_top: bool = True,
           pooling: str | None = None, classifier_activation: str | None = "softmax", width: float = 1.0,
           name: str | None = None) -> keras.Model:
    """Builds an ImageNet ResNet of any depth in the table (the family builder `resnet18` ... `resnet152v2` call).

    Args:
        input_shape: (H, W, C); default (224, 224, 3).
        num_classes: output classes; default 1000.
        depth: 18, 34, 50, 101 or 152 (v2: 50, 101, 152).
        version: 1 (post-activation) or 2 (pre-activation).
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (conv7x7/2 + maxpool3x3/2) or "small" (conv3x3/1,
            no max-pool).
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the stem's and every stage's filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name; default "resnet{depth}" (+ "v2").

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: a depth and version not in DEPTHS, an input smaller than the stem allows, or another argument
            out of range (one line naming the valid values).
    """
    name = name or f"resnet{depth}{'v2' if version == 2 else ''}"
    kind, counts = choose(name, "depth", depth, choose(name, "version", version, DEPTHS))
    checked = check(RESNET, name, input_shape, num_classes, weights=weights, stem=stem, pooling=pooling,
                    classifier_activation=classifier_activation, width=width)
    filters = tuple(blocks.scaled(f, width) for f in IMAGENET_FILTERS)
    inputs = keras.Input(checked.input_shape, name="input")
    if checked.stem == "small":
        x = blocks.conv(inputs, filters[0], 3, "stem_conv")
    else:
        x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
        x = blocks.conv(x, filters[0], 7, "stem_conv", strides=2, padding="valid")
    if version == 1:  # v2 normalizes inside the first block instead
        x = layers.Activation("relu", name="stem_relu")(blocks.batchnorm(x, "stem_bn"))
    if checked.stem != "small":
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    x = stages(x, BLOCKS[(kind, version)], filters, counts, first_stage=2)
    if version == 2:
        x = layers.Activation("relu", name="post_relu")(blocks.batchnorm(x, "post_bn"))
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation)
    model = keras.Model(inputs, top.outputs, name=name)
    names = ("stem", *(f"stage{s}" for s in range(2, 2 + len(counts))), *(("post",) if version == 2 else ()))
    return finish(model, checked, top, first_conv="stem_conv", blocks=names, width=width)


@register_model(RESNET, params=11_689_512)
def resnet18(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-18 (He et al. 2015, "Deep Residual Learning"), the smallest: two basic blocks per stage.

    11,689,512 parameters at 224x224x3 with 1000 classes (torchvision's count), 1.81 G MACs. Arguments:
    input_shape (default 224x224x3), num_classes (1000), weights, and the options of `resnet` (stem,
    include_top, pooling, classifier_activation, width, name).
    """
    return resnet(input_shape, num_classes, depth=18, weights=weights, **options)


@register_model(RESNET, params=21_797_672)
def resnet34(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-34 (He et al. 2015): basic blocks of two 3x3 convs, 3, 4, 6 and 3 per stage.

    At 224x224x3 with 1000 classes: 21,797,672 parameters, as torchvision, and 3.66 G MACs. Same arguments as
    `resnet18`.
    """
    return resnet(input_shape, num_classes, depth=34, weights=weights, **options)


@register_model(RESNET, params=25_557_032)
def resnet50(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """ResNet-50 v1 (He et al. 2015), the first with bottleneck blocks (1x1, 3x3, 1x1; 3-4-6-3).

    25,557,032 parameters (224x224x3, 1000 classes; torchvision's "v1.5" count, stride on the 3x3), 4.09 G
    MACs. This is `resnet(depth=50)`; see `resnet18` for the arguments.
    """
    return resnet(input_shape, num_classes, depth=50, weights=weights, **options)


@register_model(RESNET, params=44_549_160)
def resnet101(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
              **options: Any) -> keras.Model:
    """ResNet-101 v1 (He et al. 2015): bottlenecks, 23 of them in stage 4.

    Parameters: 44,549,160 at 224x224x3 with 1000 classes. MACs: 7.80 G. It takes what `resnet18` takes.
    """
    return resnet(input_shape, num_classes, depth=101, weights=weights, **options)


@register_model(RESNET, params=60_192_808)
def resnet152(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
              **options: Any) -> keras.Model:
    """ResNet-152 v1, the deepest ImageNet ResNet of He et al. 2015: 3, 8, 36, 3 bottlenecks.

    With 1000 classes and 224x224x3 inputs it has 60,192,808 parameters and costs 11.51 G MACs; called as
    `resnet18` is.
    """
    return resnet(input_shape, num_classes, depth=152, weights=weights, **options)


@register_model(RESNET, params=25_549_352)
def resnet50v2(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
               **options: Any) -> keras.Model:
    """ResNet-50 v2: pre-activation bottlenecks, BN -> ReLU -> conv (He et al. 2016, "Identity Mappings").

    A final BN -> ReLU before the pool; 25,549,352 trainable parameters at 224x224x3 with 1000 classes
    (keras.applications' ResNet50V2), 4.09 G MACs. `resnet(depth=50, version=2)`, arguments as `resnet18`.
    """
    return resnet(input_shape, num_classes, depth=50, version=2, weights=weights, **options)


@register_model(RESNET, params=44_541_480)
def resnet101v2(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
                **options: Any) -> keras.Model:
    """ResNet-101 v2 (He et al. 2016), pre-activation: 3, 4, 23, 3 bottleneck units.

    44,541,480 trainable parameters, 7.80 G MACs (224x224x3, 1000 classes). Arguments: `resnet18`'s.
    """
    return resnet(input_shape, num_classes, depth=101, version=2, weights=weights, **options)


@register_model(RESNET, params=60_185_128)
def resnet152v2(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
                **options: Any) -> keras.Model:
    """ResNet-152 v2, the pre-activation ResNet-152 of He et al. 2016.

    Trainable parameters at 224x224x3 with 1000 classes: 60,185,128; multiply-accumulates: 11.51 G. The
    arguments are those of `resnet18`.
    """
    return resnet(input_shape, num_classes, depth=152, version=2, weights=weights, **options)
