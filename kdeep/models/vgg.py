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

One family builder (`vgg`), the table CONVS_PER_BLOCK, and one registered function per model, whose options
are `vgg`'s.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers

from kdeep.models import blocks
from kdeep.models.registry import (Family, InputShape, Weights, check, choose, family_builder, finish,
                                   register_model)

FILTERS = (64, 128, 256, 512, 512)
# Convs per block for each depth: the paper's configurations A (11), B (13), D (16), E (19).
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG = Family("vgg", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3), num_classes=1000, min_size=32,
             small_min_size=16, variant_args=("depth", "batchnorm"))


@family_builder(VGG)
def vgg(input_shape: InputShape | None = None, num_classes: int | None = None, *, depth: int = 16,
        batchnorm: bool = False, weights: Weights = None, stem: str = "auto",
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
        ModelError: a depth not in CONVS_PER_BLOCK, an input smaller than the stem allows, or another argument
            out of range (one line naming the valid values).
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
def vgg11(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
          **options: Any) -> keras.Model:
    """VGG-11, configuration A of Simonyan & Zisserman 2014: eight 3x3 convs, the shallowest VGG.

    132,863,336 parameters at 224x224x3 with 1000 classes (the published count), 7.61 G MACs. Arguments:
    input_shape (default 224x224x3), num_classes (1000), weights and `vgg`'s options (stem, include_top,
    pooling, classifier_activation, dropout, fc_units, width, name).
    """
    return vgg(input_shape, num_classes, depth=11, batchnorm=False, weights=weights, **options)


@register_model(VGG, params=132_866_088)
def vgg11_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """VGG-11 with BatchNorm after each conv (Simonyan & Zisserman 2014, A; Ioffe & Szegedy 2015).

    Conv biases give way to BatchNorm: 132,866,088 trainable parameters at 224x224x3, 1000 classes
    (torchvision's vgg11_bn keeps the biases), 7.61 G MACs. Takes what `vgg11` takes.
    """
    return vgg(input_shape, num_classes, depth=11, batchnorm=True, weights=weights, **options)


@register_model(VGG, params=133_047_848)
def vgg13(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
          **options: Any) -> keras.Model:
    """VGG-13 (Simonyan & Zisserman 2014, configuration B): two convs in every block.

    At the default 224x224x3 input and 1000 classes it has 133,047,848 parameters (the paper's count) and costs
    11.31 G MACs. Same arguments as `vgg11` (the options of `vgg`).
    """
    return vgg(input_shape, num_classes, depth=13, batchnorm=False, weights=weights, **options)


@register_model(VGG, params=133_050_792)
def vgg13_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """VGG-13 with BatchNorm: configuration B (Simonyan & Zisserman 2014), conv -> BN -> ReLU.

    133,050,792 trainable parameters at 224x224x3 with 1000 classes; 11.31 G MACs. `vgg(depth=13,
    batchnorm=True)`; input_shape, num_classes, weights and the options of `vgg`, as `vgg11`.
    """
    return vgg(input_shape, num_classes, depth=13, batchnorm=True, weights=weights, **options)


@register_model(VGG, params=138_357_544)
def vgg16(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
          **options: Any) -> keras.Model:
    """VGG-16, configuration D (Simonyan & Zisserman 2014), the best-known VGG: 13 convs, 3 fc.

    With 1000 classes at 224x224x3: 138,357,544 parameters, exactly keras.applications' and torchvision's,
    and 15.47 G MACs. The arguments are `vgg11`'s.
    """
    return vgg(input_shape, num_classes, depth=16, batchnorm=False, weights=weights, **options)


@register_model(VGG, params=138_361_768)
def vgg16_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """VGG-16 with BatchNorm (configuration D, Simonyan & Zisserman 2014, batch-normalized).

    138,361,768 trainable parameters (224x224x3, 1000 classes; conv biases replaced by BN's beta), 15.47 G
    MACs. This is `vgg(depth=16, batchnorm=True)`: see `vgg11` for the arguments.
    """
    return vgg(input_shape, num_classes, depth=16, batchnorm=True, weights=weights, **options)


@register_model(VGG, params=143_667_240)
def vgg19(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
          **options: Any) -> keras.Model:
    """VGG-19 (Simonyan & Zisserman 2014, configuration E): four convs in blocks 3, 4 and 5.

    143,667,240 parameters, the published count for 224x224x3 inputs and 1000 classes; 19.63 G MACs. It takes
    the arguments of `vgg11`.
    """
    return vgg(input_shape, num_classes, depth=19, batchnorm=False, weights=weights, **options)


@register_model(VGG, params=143_672_744)
def vgg19_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *, weights: Weights = None,
             **options: Any) -> keras.Model:
    """VGG-19 with BatchNorm, the deepest VGG here (configuration E of Simonyan & Zisserman 2014).

    Trainable parameters: 143,672,744 at 224x224x3 with 1000 classes. MACs: 19.63 G. Called as `vgg11` is:
    input_shape, num_classes, weights, and `vgg`'s options.
    """
    return vgg(input_shape, num_classes, depth=19, batchnorm=True, weights=weights, **options)
