"""The book's DeepConvNet (Deep Learning from Scratch, ch. 8, `deep_convnet.py`) as a Keras model.

The book's network for 28x28x1 MNIST, layer by layer (123,552 parameters):

    conv3x3(16, pad 1) ReLU  conv3x3(16, pad 1) ReLU  maxpool2      28 -> 14
    conv3x3(32, pad 1) ReLU  conv3x3(32, pad 2) ReLU  maxpool2      14 -> 16 -> 8
    conv3x3(64, pad 1) ReLU  conv3x3(64, pad 1) ReLU  maxpool2      8 -> 4
    affine(50) ReLU dropout(0.5)  affine(10) dropout(0.5)  softmax

How each choice maps to the book's code:
- weights: the book draws N(0, 1) * sqrt(2 / fan_in) (He init for ReLU, fan_in = C_in*3*3 for a conv,
  64*4*4 = 1024 for the first affine layer); here `VarianceScaling(2.0, "fan_in", "untruncated_normal")`,
  not Keras' "he_normal" (which truncates). Biases start at zero, as in the book.
- padding 1 on a 3x3 conv is Keras' "same"; the one padding-2 conv is `ZeroPadding2D(2)` + a "valid"
  conv, which grows 14x14 to 16x16 exactly as the book's `Convolution(pad=2)`.
- pooling is the book's 2x2 max-pool with stride 2 ("valid").
- the book's Dropout scales at test time (multiplies by 1 - ratio); Keras' is "inverted" (scales by
  1 / (1 - rate) while training). Both give the same expected activations and the same set of functions,
  but not the same training: with two dropouts the inverted net's training-time logits are 4x the book's
  for the same weights, so Adam (whose steps do not depend on the gradient's scale) moves the last layers
  relatively faster. `deepconvnet` uses Keras's dropout; `deepconvnet_book` (`dropout_scaling="test"`) is
  the book's exactly (Dropout -> Rescaling(1 - rate)), with the same weights and parameter count.
- the last dropout sits between affine(10) and the softmax, as the book's layer list has it.
- the book trains with Adam(lr=0.001); that belongs to training (`kdeep.train`), not to the model.

Options that depart from the book (all off by default): `batchnorm=True` (conv without bias -> BatchNorm
-> ReLU), `dropout` (another rate, 0 removes both dropout layers), `hidden_units` (the book's 50),
`include_top=False` / `pooling`, `classifier_activation=None` (logits instead of softmax).
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers

from kdeep.models import blocks
from kdeep.models.registry import (Family, InputShape, Weights, check, choose, family_builder, finish,
                                   register_model)

# (filters, padding) per conv, two convs per block, a 2x2 max-pool after each block: the book's table.
BOOK_CONVS = (((16, 1), (16, 1)), ((32, 1), (32, 2)), ((64, 1), (64, 1)))
DEEPCONVNET = Family("deepconvnet", input_shape=(28, 28, 1), small_input_shape=(32, 32, 3), num_classes=10,
                     min_size=4, variant_args=("dropout_scaling",))


@register_model(DEEPCONVNET, params=123_552)
@family_builder(DEEPCONVNET)
def deepconvnet(input_shape: InputShape | None = None, num_classes: int | None = None, *,
                weights: Weights = None, include_top: bool = True, pooling: str | None = None,
                classifier_activation: str | None = "softmax", dropout: float = 0.5, dropout_scaling: str = "train",
                hidden_units: int = 50, batchnorm: bool = False, name: str | None = None) -> keras.Model:
    """The book's DeepConvNet (Saito 2016, Deep Learning from Scratch, ch. 8) with Keras's inverted dropout.

    Six 3x3 convs (16, 16, 32, 32, 64, 64; the fourth padded by 2), three 2x2 max-pools, affine(50) ReLU
    dropout, affine(10) dropout, softmax: 123,552 parameters at 28x28x1 with 10 classes, 8.77 M MACs.

    Args:
        input_shape: (H, W, C), at least 4x4; default the book's (28, 28, 1).
        num_classes: output classes; default the book's 10.
        weights: None, or a `.weights.h5` file to load after building.
        include_top: with the affine layers; False returns the last pooled feature map (or vector).
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" (the book's) or None for logits.
        dropout: rate of both dropout layers (the book's 0.5; 0 removes them).
        dropout_scaling: "train" (Keras's inverted dropout) or "test" (the book's: x (1 - rate) at test time).
        hidden_units: width of the hidden affine layer (the book's 50).
        batchnorm: add BatchNorm after each conv, whose bias it replaces (not in the book).
        name: the model name; default "deepconvnet" ("deepconvnet_book" with the book's dropout scaling).

    Returns:
        The Keras model, its contract declared.

    Raises:
        ModelError: an argument out of range (one line naming the valid values).
    """
    name = name or ("deepconvnet_book" if dropout_scaling == "test" else "deepconvnet")
    checked = check(DEEPCONVNET, name, input_shape, num_classes, weights=weights, pooling=pooling,
                    classifier_activation=classifier_activation, dropout=dropout)
    choose(name, "dropout_scaling", dropout_scaling, blocks.DROPOUT_SCALINGS)
    inputs = keras.Input(checked.input_shape, name="input")
    x = inputs
    for b, block in enumerate(BOOK_CONVS, start=1):
        for c, (filters, pad) in enumerate(block, start=1):
            conv_name = f"block{b}_conv{c}"
            if pad == 1:
                x = blocks.conv_bn_relu(x, filters, 3, conv_name, bn=batchnorm)
            else:
                x = layers.ZeroPadding2D(pad, name=f"{conv_name}_pad")(x)
                x = blocks.conv_bn_relu(x, filters, 3, conv_name, bn=batchnorm, padding="valid")
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    top = blocks.top(x, checked.num_classes, include_top=include_top, pooling=pooling,
                     activation=classifier_activation, flatten=True, hidden=(hidden_units,), dropout_rate=dropout,
                     dropout_at=("hidden", "logits"), dropout_scaling=dropout_scaling)
    model = keras.Model(inputs, top.outputs, name=name)
    return finish(model, checked, top, first_conv="block1_conv1",
                  blocks=tuple(f"block{b}" for b in range(1, len(BOOK_CONVS) + 1)))


@register_model(DEEPCONVNET, params=123_552)
def deepconvnet_book(input_shape: InputShape | None = None, num_classes: int | None = None, *,
                     weights: Weights = None, **options: Any) -> keras.Model:
    """The book's DeepConvNet (Saito 2016) with the book's dropout, scaled at test time, not while training.

    `deepconvnet(dropout_scaling="test")`: each dropout is Dropout -> Rescaling(1 - rate), so kept units are
    unscaled while training and x (1 - rate) at test time, as the book's `Dropout.forward`. The same layers and
    weights as `deepconvnet` (123,552 parameters at 28x28x1 with 10 classes), and its arguments but
    dropout_scaling.
    """
    return deepconvnet(input_shape, num_classes, weights=weights, dropout_scaling="test", **options)


@register_model(DEEPCONVNET, params=123_776)
def deepconvnet_bn(input_shape: InputShape | None = None, num_classes: int | None = None, *,
                   weights: Weights = None, include_top: bool = True, pooling: str | None = None,
                   classifier_activation: str | None = "softmax", hidden_units: int = 50,
                   name: str = "deepconvnet_bn") -> keras.Model:
    """The book's DeepConvNet (Saito 2016) with BatchNorm (Ioffe and Szegedy 2015) after every conv and no dropout.

    `deepconvnet(batchnorm=True, dropout=0.0)`: each conv loses its bias to a BatchNorm (conv -> BN -> ReLU) and
    both dropout layers go, so the net is regularised by its augmentation alone: 123,776 trainable parameters at
    28x28x1 with 10 classes (124,224 with BatchNorm's moving statistics), the same convs and affine layers.

    Args:
        input_shape: (H, W, C), at least 4x4; default the book's (28, 28, 1).
        num_classes: output classes; default the book's 10.
        weights: None, a `.weights.h5` file to load after building, or a preset tag ("mnist").
        include_top: with the affine layers; False returns the last pooled feature map (or vector).
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" or None for logits.
        hidden_units: width of the hidden affine layer (the book's 50).
        name: the model name.

    Returns:
        The Keras model, its contract declared.
    """
    return deepconvnet(input_shape, num_classes, weights=weights, include_top=include_top, pooling=pooling,
                       classifier_activation=classifier_activation, hidden_units=hidden_units, batchnorm=True,
                       dropout=0.0, name=name)
