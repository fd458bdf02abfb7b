"""ResNets: ImageNet v1 (He et al. 2015), pre-activation v2 (He et al. 2016) and the CIFAR ResNets.

A residual block learns F(x) and outputs F(x) + x: the identity path lets gradients skip the block, which
is what makes 50 to 152 layers trainable. One generic builder, one table per variant:

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
- CIFAR (`resnet20/32/44/56/110`, depth 6n+2, He et al. 2015 section 4.2): conv3x3(16) stem, no max-pool,
  three stages of n basic blocks with 16/32/64 filters. Shortcuts use the paper's option A: the identity,
  subsampled by 2 and zero-padded with the extra channels, so they add no parameters (0.27M for
  ResNet-20, 0.86M for ResNet-56, 1.7M for ResNet-110). `shortcut="B"` uses 1x1 projections instead.

Small-input stem for v1/v2 (`stem="small"`, picked automatically below 64 pixels): one conv3x3/1 instead
of conv7x7/2 + max-pool, so 32x32 reaches the last stage at 4x4 instead of 1x1.

`width` (every family here) scales the stem's and every stage's filters, rounded to multiples of 8
(`blocks.scaled`); 1.0 is the paper's network, with the counts above.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks
from kdeep.models.registry import register

# depth: (block kind, blocks per stage). ImageNet stages have 64, 128, 256, 512 base filters.
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_FILTERS = (64, 128, 256, 512)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)
CIFAR_FILTERS = (16, 32, 64)
EXPANSION = {"basic": 1, "bottleneck": 4}


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


BLOCKS = {("basic", 1): basic_block, ("bottleneck", 1): bottleneck_block, ("bottleneck", 2): preact_bottleneck_block}


def _stages(x: Any, kind: str, version: int, filters: tuple[int, ...], counts: tuple[int, ...],
            first_stage: int, shortcut: str) -> Any:
    """Stacks the residual stages; every stage but the first halves the resolution in its first block."""
    block = BLOCKS[(kind, version)]
    for s, (stage_filters, count) in enumerate(zip(filters, counts)):
        for b in range(count):
            stride = 2 if s > 0 and b == 0 else 1
            x = block(x, stage_filters, stride, f"stage{first_stage + s}_block{b + 1}", shortcut)
    return x


def _top(inputs: Any, x: Any, num_classes: int, include_top: bool, pooling: str | None,
         classifier_activation: str | None, name: str) -> keras.Model:
    """Global average pool + fc classifier, or the features when include_top is False."""
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = blocks.predictions(x, num_classes, classifier_activation)
    else:
        x = blocks.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)


def resnet(input_shape: tuple[int, int, int], num_classes: int, *, depth: int, version: int = 1,
           stem: str = "imagenet", include_top: bool = True, pooling: str | None = None,
           classifier_activation: str | None = "softmax", width: float = 1.0, name: str = "resnet") -> keras.Model:
    """Builds an ImageNet-style ResNet (v1 or pre-activation v2).

    Args:
        input_shape: (H, W, C).
        num_classes: output classes.
        depth: 18, 34, 50, 101 or 152 (v2: 50, 101, 152).
        version: 1 (post-activation) or 2 (pre-activation).
        stem: "imagenet" (conv7x7/2 + maxpool3x3/2) or "small" (conv3x3/1, no max-pool).
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the stem's and every stage's filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model.
    """
    kind, counts = IMAGENET_DEPTHS[depth]
    filters = tuple(blocks.scaled(f, width) for f in IMAGENET_FILTERS)
    inputs = keras.Input(input_shape, name="input")
    if stem == "small":
        x = blocks.conv(inputs, filters[0], 3, "stem_conv")
    else:
        x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
        x = blocks.conv(x, filters[0], 7, "stem_conv", strides=2, padding="valid")
    if version == 1:  # v2 normalizes inside the first block instead
        x = layers.Activation("relu", name="stem_relu")(blocks.batchnorm(x, "stem_bn"))
    if stem != "small":
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    x = _stages(x, kind, version, filters, counts, first_stage=2, shortcut="B")
    if version == 2:
        x = layers.Activation("relu", name="post_relu")(blocks.batchnorm(x, "post_bn"))
    return _top(inputs, x, num_classes, include_top, pooling, classifier_activation, name)


def cifar_resnet(input_shape: tuple[int, int, int], num_classes: int, *, depth: int, shortcut: str = "A",
                 include_top: bool = True, pooling: str | None = None,
                 classifier_activation: str | None = "softmax", width: float = 1.0,
                 name: str = "cifar_resnet") -> keras.Model:
    """Builds a CIFAR ResNet of depth 6n+2 (He et al. 2015, section 4.2).

    Args:
        input_shape: (H, W, C), the paper's is (32, 32, 3).
        num_classes: output classes.
        depth: 20, 32, 44, 56 or 110 (any 6n+2 works).
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (1x1 projection).
        include_top: with the pooled fc classifier; False returns the last stage's features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        width: multiplier of the 16/32/64 filters, rounded to multiples of 8 (1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model.
    """
    if shortcut not in ("A", "B"):
        raise ModelError(f"{name}: shortcut must be 'A' (zero-padded identity) or 'B' (projection), got {shortcut!r}")
    blocks_per_stage = (depth - 2) // 6
    filters = tuple(blocks.scaled(f, width) for f in CIFAR_FILTERS)
    inputs = keras.Input(input_shape, name="input")
    x = blocks.conv_bn_relu(inputs, filters[0], 3, "stem_conv")
    x = _stages(x, "basic", 1, filters, (blocks_per_stage,) * 3, first_stage=1, shortcut=shortcut)
    return _top(inputs, x, num_classes, include_top, pooling, classifier_activation, name)


for _depth in IMAGENET_DEPTHS:
    register(f"resnet{_depth}", family="resnet", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3),
             num_classes=1000, min_size=32, small_min_size=8, depth=_depth, version=1,
             description=f"ResNet-{_depth} v1 (He et al. 2015)")(resnet)
for _depth in (50, 101, 152):
    register(f"resnet{_depth}v2", family="resnet", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3),
             num_classes=1000, min_size=32, small_min_size=8, depth=_depth, version=2,
             description=f"ResNet-{_depth} v2, pre-activation (He et al. 2016)")(resnet)
for _depth in CIFAR_DEPTHS:
    register(f"resnet{_depth}", family="cifar_resnet", input_shape=(32, 32, 3), small_input_shape=(28, 28, 1),
             num_classes=10, min_size=4, depth=_depth,
             description=f"CIFAR ResNet-{_depth}, option A shortcuts (He et al. 2015)")(cifar_resnet)
