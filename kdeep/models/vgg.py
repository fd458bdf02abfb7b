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

import keras
from keras import layers

from kdeep.models import blocks
from kdeep.models.registry import register

FILTERS = (64, 128, 256, 512, 512)
# Convs per block for each depth: the paper's configurations A (11), B (13), D (16), E (19).
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg(input_shape: tuple[int, int, int], num_classes: int, *, depth: int, batchnorm: bool,
        stem: str = "imagenet", include_top: bool = True, pooling: str | None = None,
        classifier_activation: str | None = "softmax", dropout: float = 0.5, fc_units: int = 4096,
        width: float = 1.0, name: str = "vgg") -> keras.Model:
    """Builds a VGG network.

    Args:
        input_shape: (H, W, C).
        num_classes: output classes.
        depth: 11, 13, 16 or 19 weight layers.
        batchnorm: BatchNorm after each conv (the `_bn` variants).
        stem: "imagenet" (the paper's) or "small" (no max-pool after block 1).
        include_top: with the three fully connected layers; False returns the block-5 features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate after fc1 and fc2 (the paper's 0.5).
        fc_units: width of fc1 and fc2 at width 1.0 (the paper's 4096).
        width: multiplier of every conv's filters and of fc_units (rounded to multiples of 8; 1.0: the paper's).
        name: the model name.

    Returns:
        The Keras model.
    """
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    for b, (filters, convs) in enumerate(zip(FILTERS, CONVS_PER_BLOCK[depth]), start=1):
        for c in range(1, convs + 1):
            x = blocks.conv_bn_relu(x, blocks.scaled(filters, width), 3, f"block{b}_conv{c}", bn=batchnorm)
        if not (b == 1 and stem == "small"):
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    if not include_top:
        return keras.Model(inputs, blocks.global_pool(x, pooling), name=name)
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = blocks.dense(x, blocks.scaled(fc_units, width), f"fc{i}")
        x = layers.Activation("relu", name=f"fc{i}_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    outputs = blocks.predictions(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


for _depth in CONVS_PER_BLOCK:
    for _bn in (False, True):
        register(f"vgg{_depth}{'_bn' if _bn else ''}", family="vgg", input_shape=(224, 224, 3),
                 small_input_shape=(32, 32, 3), num_classes=1000, min_size=32, small_min_size=16,
                 description=f"VGG-{_depth}{' with BatchNorm' if _bn else ''} (Simonyan & Zisserman 2014)",
                 depth=_depth, batchnorm=_bn)(vgg)
