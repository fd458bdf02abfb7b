"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions", Table 1).

An Inception module runs four branches side by side and concatenates their channels: 1x1; 1x1 reduce ->
3x3; 1x1 reduce -> 5x5; 3x3 max-pool -> 1x1 "pool proj". The 1x1 reductions keep the wide 3x3/5x5 convs
cheap, so the network is 22 layers deep with ~7M parameters (VGG16: 138M).

Paper stem: conv7x7/2(64) -> maxpool3x3/2 -> conv1x1(64) -> conv3x3(192) -> maxpool3x3/2, then 3a, 3b,
maxpool, 4a..4e, maxpool, 5a, 5b, global average pool, dropout 0.4, fc. Convs have biases and ReLU, no
BatchNorm; `googlenet_bn` (`batchnorm=True`) adds it after every conv, without conv biases. The paper's
local response normalization is left out (Keras has no LRN layer, and later work found it does not help).
Max-pools use "same" padding, which reproduces Caffe's ceil-mode sizes 224 -> 112 -> 56 -> 28 -> 14 -> 7.

Train `googlenet_bn` from scratch: the plain network is 22 ReLU layers deep without normalization, and
with SGD at lr 0.1 (kdeep's sgd_cosine recipe) it stays at chance on Fashion-MNIST (10% after 5 epochs,
docs/compare.md); the paper needed its auxiliary heads and a slow schedule for the same reason.

Parameter count at 224x224x3, 1000 classes, no auxiliary heads (weights + biases; the paper's Table 1
column, which ignores biases, in parentheses):

    conv1 7x7/2 (3->64)            9,472  (2.7K)
    conv2 1x1 (64->64) + 3x3 (64->192)     4,160 + 110,784 = 114,944  (112K)
    inception 3a  163,696 (159K)    3b  388,736 (380K)
    inception 4a  376,176 (364K)    4b  449,160 (437K)    4c  510,104 (463K)
              4d  605,376 (580K)    4e  868,352 (840K)
    inception 5a  1,043,456 (1072K) 5b  1,444,080 (1388K)
    fc 1024 -> 1000                1,025,000 (1000K)
    total                          6,998,552  (1.58 G multiply-adds at 224, the paper's ~1.5 G)

A module's count is the sum of its six convs, e.g. 3a on 192 channels: 1x1(64) 12,352 + 1x1(96) 18,528
+ 3x3(96->128) 110,720 + 1x1(16) 3,088 + 5x5(16->32) 12,832 + pool proj 1x1(32) 6,176 = 163,696.
`aux_logits=True` adds the paper's two training heads after 4a and 4d (avgpool5x5/3 -> conv1x1(128) ->
fc1024 -> dropout 0.7 -> fc), as extra model outputs `aux1_predictions`, `aux2_predictions`; each costs
~3.2M weights at 224 (1000 classes), and they need the 4a map to be at least 5x5.

Small-input stem (`stem="small"`, picked automatically below 64 pixels): conv3x3/1(64) -> conv1x1(64) ->
conv3x3(192) with no max-pools, so 32x32 runs 3a/3b at 32x32, 4a..4e at 16x16, 5a/5b at 8x8.

`width` scales every conv's channels (stem, each module's six widths, the auxiliary heads), rounded to
multiples of 8: at 28x28x1 GoogLeNet costs 1,194 M MACs at width 1.0 (docs/compare.md for the ~30 M width).
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks
from kdeep.models.registry import (Family, InputShape, Weights, check, family_builder, finish,
                                   register_model)

# Table 1: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj). "poolN" = maxpool3x3/2.
INCEPTION_TABLE = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("pool3", None),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("pool4", None),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
AUX_AFTER = ("4a", "4d")
AUX_POOL = 5
# The contract's blocks, bottom to top (the auxiliary heads are training-only classifiers, not blocks).
BLOCKS = ("stem_conv1", "stem_conv2", *(f"inception{m}" for m, widths in INCEPTION_TABLE if widths))
GOOGLENET = Family("googlenet", input_shape=(224, 224, 3), small_input_shape=(32, 32, 3), num_classes=1000,
                   min_size=32, small_min_size=8, variant_args=("batchnorm",))


def inception_module(x: Any, widths: tuple[int, ...], name: str, bn: bool) -> Any:
    """Four parallel branches (1x1; 1x1->3x3; 1x1->5x5; maxpool->1x1) concatenated on channels."""
    n1, r3, n3, r5, n5, pool_proj = widths  # already width-scaled
    b1 = blocks.conv_bn_relu(x, n1, 1, f"{name}_1x1", bn=bn)
    b3 = blocks.conv_bn_relu(x, r3, 1, f"{name}_3x3_reduce", bn=bn)
    b3 = blocks.conv_bn_relu(b3, n3, 3, f"{name}_3x3", bn=bn)
    b5 = blocks.conv_bn_relu(x, r5, 1, f"{name}_5x5_reduce", bn=bn)
    b5 = blocks.conv_bn_relu(b5, n5, 5, f"{name}_5x5", bn=bn)
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = blocks.conv_bn_relu(bp, pool_proj, 1, f"{name}_pool_proj", bn=bn)
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def aux_classifier(x: Any, num_classes: int, activation: str | None, name: str, bn: bool,
                   width: float = 1.0) -> Any:
    """The paper's auxiliary head: avgpool5x5/3 -> conv1x1(128) -> fc1024 -> dropout 0.7 -> fc (widths x `width`)."""
    x = layers.AveragePooling2D(AUX_POOL, strides=3, name=f"{name}_pool")(x)
    x = blocks.conv_bn_relu(x, blocks.scaled(128, width), 1, f"{name}_conv", bn=bn)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Activation("relu", name=f"{name}_fc_relu")(blocks.dense(x, blocks.scaled(1024, width), f"{name}_fc"))
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return blocks.apply(x, blocks.classify_layers(num_classes, activation, prefix=f"{name}_"))


@register_model(GOOGLENET, params=6_998_552)
@family_builder(GOOGLENET)
def googlenet(input_shape: InputShape | None = None, num_classes: int | None = None, *,
              weights: Weights = None, stem: str = "auto", include_top: bool = True,
              pooling: str | None = None, classifier_activation: str | None = "softmax", dropout: float = 0.4,
              aux_logits: bool = False, batchnorm: bool = False, width: float = 1.0,
              name: str | None = None) -> keras.Model:
    """GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions", Table 1).

    Stem, nine Inception modules (3a-5b) with max-pools between 3b/4a and 4e/5a, global average pool, dropout
    0.4, fc: 6,998,552 parameters at 224x224x3 with 1000 classes (Table 1 with biases), 1.58 G MACs. No local
    response normalization; `batchnorm=True` is `googlenet_bn`.

    Args:
        input_shape: (H, W, C), at least 32x32 (8x8 with the small stem); default (224, 224, 3).
        num_classes: output classes; default 1000.
        weights: None, or a `.weights.h5` file to load after building.
        stem: "auto" (small below 64 pixels), "imagenet" (the paper's) or "small" (stride 1, no max-pools
            before 3a).
        include_top: with the pooled classifier; False returns the 5b features.
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        dropout: rate before the classifier (the paper's 0.4).
        aux_logits: add the two auxiliary classifiers as outputs 2 and 3 (for training).
        batchnorm: BatchNorm after every conv, in place of its bias (not in the paper).
        width: multiplier of every conv's (and the auxiliary heads') channels, rounded to multiples of 8;
            1.0 is the paper's table.
        name: the model name; default "googlenet" ("googlenet_bn" with batchnorm).

    Returns:
        The Keras model, its contract declared; with aux_logits its outputs are [predictions, aux1, aux2].

    Raises:
        ModelError: an argument out of range, aux_logits without the top, or an input too small for the
            auxiliary pooling.
    """
    name = name or ("googlenet_bn" if batchnorm else "googlenet")
    checked = check(GOOGLENET, name, input_shape, num_classes, weights=weights, stem=stem, pooling=pooling,
                    classifier_activation=classifier_activation, dropout=dropout, width=width)
    if aux_logits and not include_top:
        raise ModelError(f"{name}: aux_logits=True needs include_top=True")
    inputs = keras.Input(checked.input_shape, name="input")
    stem_1, stem_2 = blocks.scaled(64, width), blocks.scaled(192, width)
    if checked.stem == "small":
        x = blocks.conv_bn_relu(inputs, stem_1, 3, "stem_conv1", bn=batchnorm)
    else:
        x = blocks.conv_bn_relu(inputs, stem_1, 7, "stem_conv1", strides=2, bn=batchnorm)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool1")(x)
    x = blocks.conv_bn_relu(x, stem_1, 1, "stem_conv2_reduce", bn=batchnorm)
    x = blocks.conv_bn_relu(x, stem_2, 3, "stem_conv2", bn=batchnorm)
    if checked.stem != "small":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool2")(x)
    aux = []
    for module, widths in INCEPTION_TABLE:
        if widths is None:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=module)(x)
            continue
        x = inception_module(x, tuple(blocks.scaled(w, width) for w in widths), f"inception{module}", batchnorm)
        if aux_logits and module in AUX_AFTER:
            if min(x.shape[1:3]) < AUX_POOL:
                raise ModelError(f"{name}: aux_logits needs the 4a map to be at least {AUX_POOL}x{AUX_POOL}, "
                                 f"got {x.shape[1]}x{x.shape[2]}; use a larger input or stem='small'")
            aux.append(aux_classifier(x, checked.num_classes, classifier_activation, f"aux{len(aux) + 1}",
                                      batchnorm, width))
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation, dropout_rate=dropout, dropout_at=("features",))
    model = keras.Model(inputs, [top.outputs, *aux] if aux else top.outputs, name=name)
    return finish(model, checked, top, first_conv="stem_conv1", blocks=BLOCKS, width=width)


@register_model(GOOGLENET, params=7_005_832)
def googlenet_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *,
                 weights: Weights = None, **options: Any) -> keras.Model:
    """GoogLeNet with BatchNorm after every conv (Szegedy et al. 2014; BatchNorm: Ioffe & Szegedy 2015).

    `googlenet(batchnorm=True)`: each conv's bias gives way to BatchNorm, 7,005,832 trainable parameters at
    224x224x3 with 1000 classes, 1.58 G MACs. It trains from scratch where plain GoogLeNet stays at chance
    (docs/compare.md). Arguments: `googlenet`'s, but batchnorm.
    """
    return googlenet(input_shape, num_classes, weights=weights, batchnorm=True, **options)
