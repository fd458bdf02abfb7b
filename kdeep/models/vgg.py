"""VGG-11/13/16/19 (Simonyan & Zisserman 2014, configurations A, B, D, E) and their BatchNorm variants.

Five blocks of 3x3 convs (64, 128, 256, 512, 512 filters), each closed by a 2x2 max-pool, then
fc4096-ReLU-dropout-fc4096-ReLU-dropout-fc. At 224x224x3 with 1000 classes VGG16 has 138,357,544 and
VGG19 143,667,240 parameters, the published counts. The paper's idea in one line: a stack of 3x3 convs
sees as far as one big kernel with fewer weights and more non-linearities (see `kdeep.analysis.why_deeper`).

Small-input stem (`stem="small"`, picked automatically below 64 pixels): block 1 keeps its resolution
(no first max-pool), so 32x32 ends at 2x2 and 28x28 at 1x1 instead of vanishing after five halvings.
`_bn` variants put BatchNorm after every conv; those convs carry no bias (BN's beta replaces it), unlike
torchvision's vgg*_bn, which keeps the bias.

`width` scales every conv's filters and the fc width (rounded to multiples of 8): at 28x28x1 VGG-11-BN costs
467 M MACs at width 1.0 and about 30 M at width 0.25 (docs/compare.md).
"""
from __future__ import annotations

import os

import keras
from keras import layers

from kdeep.models import blocks
from kdeep.models.registry import Family, check, choose, finish, register_model

FILTERS = (64, 128, 256, 512, 512)
# Convs per block for each depth: the paper's configurations A (11), B (13), D (16), E (19).
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG = Family("vgg", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3), num_classes=1000, min_size=32,
             small_min_size=16)


def vgg(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *, depth: int = 16,
        batchnorm: bool = False, weights: str | os.PathLike | None = None, stem: str = "auto",
        include_top: bool = True, pooling: str | None = None, classifier_activation: str | None = "softmax",
        dropout: float = 0.5, fc_units: int = 4096, width: float = 1.0, name: str | None = None) -> keras.Model:
    """Builds a VGG network of any depth in CONVS_PER_BLOCK (the family builder `vgg11` ... `vgg19_bn` call).

    Args:
        input_shape: (H, W, C); default (224, 224, 3).
        num_classes: output classes; default 1000.
        depth: 11, 13, 16 or 19 weight layers (configurations A, B, D, E).
        batchnorm: BatchNorm after each conv, which then has no bias (the `_bn` variants).
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name; default "vgg{depth}" (+ "_bn").

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: an argument out of range (one line naming the valid values).
    """
    name = name or f"vgg{depth}{'_bn' if batchnorm else ''}"
    convs_per_block = choose(name, "depth", depth, CONVS_PER_BLOCK)
    checked = check(VGG, name, input_shape, num_classes, weights=weights, stem=stem, pooling=pooling,
                    classifier_activation=classifier_activation, dropout=dropout, width=width)
    inputs = keras.Input(checked.input_shape, name="input")
    x = inputs
    for b, (filters, convs) in enumerate(zip(FILTERS, convs_per_block), start=1):
        for c in range(1, convs + 1):
            x = blocks.conv_bn_relu(x, blocks.scaled(filters, width), 3, f"block{b}_conv{c}", bn=batchnorm)
        if not (b == 1 and checked.stem == "small"):
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    units = blocks.scaled(fc_units, width)
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation, flatten=True, hidden=(units, units), dropout_rate=dropout,
                     dropout_at=("hidden",))
    model = keras.Model(inputs, top.outputs, name=name)
    return finish(model, checked, top, first_conv="block1_conv1",
                  blocks=tuple(f"block{b}" for b in range(1, len(FILTERS) + 1)), width=width)


@register_model(VGG, params=132_863_336)
def vgg11(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
          weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
          pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
          fc_units: int = 4096, width: float = 1.0, name: str = "vgg11") -> keras.Model:
    """VGG-11 (Simonyan & Zisserman 2014, configuration A).

    1+1+2+2+2 3x3 convs in five blocks, each closed by a 2x2 max-pool, then fc4096-fc4096-fc:
    132,863,336 parameters at 224x224x3 with 1000 classes (the published count), 7.61 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=11, batchnorm=False, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=132_866_088)
def vgg11_bn(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
             fc_units: int = 4096, width: float = 1.0, name: str = "vgg11_bn") -> keras.Model:
    """VGG-11 with BatchNorm (Simonyan & Zisserman 2014, configuration A).

    Configuration A with BatchNorm after each of its 8 convs, which then carry no bias:
    132,866,088 trainable parameters at 224x224x3 with 1000 classes (torchvision's
    vgg11_bn keeps the conv biases), 7.61 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=11, batchnorm=True, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=133_047_848)
def vgg13(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
          weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
          pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
          fc_units: int = 4096, width: float = 1.0, name: str = "vgg13") -> keras.Model:
    """VGG-13 (Simonyan & Zisserman 2014, configuration B).

    2+2+2+2+2 3x3 convs in five blocks, each closed by a 2x2 max-pool, then fc4096-fc4096-fc:
    133,047,848 parameters at 224x224x3 with 1000 classes (the published count), 11.31 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=13, batchnorm=False, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=133_050_792)
def vgg13_bn(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
             fc_units: int = 4096, width: float = 1.0, name: str = "vgg13_bn") -> keras.Model:
    """VGG-13 with BatchNorm (Simonyan & Zisserman 2014, configuration B).

    Configuration B with BatchNorm after each of its 10 convs, which then carry no bias:
    133,050,792 trainable parameters at 224x224x3 with 1000 classes (torchvision's
    vgg13_bn keeps the conv biases), 11.31 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=13, batchnorm=True, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=138_357_544)
def vgg16(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
          weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
          pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
          fc_units: int = 4096, width: float = 1.0, name: str = "vgg16") -> keras.Model:
    """VGG-16 (Simonyan & Zisserman 2014, configuration D).

    2+2+3+3+3 3x3 convs in five blocks, each closed by a 2x2 max-pool, then fc4096-fc4096-fc:
    138,357,544 parameters at 224x224x3 with 1000 classes (the published count), 15.47 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=16, batchnorm=False, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=138_361_768)
def vgg16_bn(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
             fc_units: int = 4096, width: float = 1.0, name: str = "vgg16_bn") -> keras.Model:
    """VGG-16 with BatchNorm (Simonyan & Zisserman 2014, configuration D).

    Configuration D with BatchNorm after each of its 13 convs, which then carry no bias:
    138,361,768 trainable parameters at 224x224x3 with 1000 classes (torchvision's
    vgg16_bn keeps the conv biases), 15.47 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=16, batchnorm=True, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=143_667_240)
def vgg19(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
          weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
          pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
          fc_units: int = 4096, width: float = 1.0, name: str = "vgg19") -> keras.Model:
    """VGG-19 (Simonyan & Zisserman 2014, configuration E).

    2+2+4+4+4 3x3 convs in five blocks, each closed by a 2x2 max-pool, then fc4096-fc4096-fc:
    143,667,240 parameters at 224x224x3 with 1000 classes (the published count), 19.63 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=19, batchnorm=False, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)


@register_model(VGG, params=143_672_744)
def vgg19_bn(input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None, *,
             weights: str | os.PathLike | None = None, stem: str = "auto", include_top: bool = True,
             pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.5,
             fc_units: int = 4096, width: float = 1.0, name: str = "vgg19_bn") -> keras.Model:
    """VGG-19 with BatchNorm (Simonyan & Zisserman 2014, configuration E).

    Configuration E with BatchNorm after each of its 16 convs, which then carry no bias:
    143,672,744 trainable parameters at 224x224x3 with 1000 classes (torchvision's
    vgg19_bn keeps the conv biases), 19.63 G MACs.

    Args:
        input_shape: (H, W, C), at least 32x32 (16x16 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return vgg(input_shape, num_classes, depth=19, batchnorm=True, weights=weights, stem=stem,
               include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
               dropout=dropout, fc_units=fc_units, width=width, name=name)
