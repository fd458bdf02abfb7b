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

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks
from kdeep.models.registry import register

# (filters, padding) per conv, two convs per block, a 2x2 max-pool after each block: the book's table.
BOOK_CONVS = (((16, 1), (16, 1)), ((32, 1), (32, 2)), ((64, 1), (64, 1)))


@register("deepconvnet_book", family="deepconvnet", input_shape=(28, 28, 1), small_input_shape=(32, 32, 3),
          num_classes=10, min_size=4, dropout_scaling="test",
          description="The book's DeepConvNet with the book's dropout (scaled at test time, not while training)")
@register("deepconvnet", family="deepconvnet", input_shape=(28, 28, 1), small_input_shape=(32, 32, 3),
          num_classes=10, min_size=4)
def deepconvnet(input_shape: tuple[int, int, int], num_classes: int, *, include_top: bool = True,
                pooling: str | None = None, classifier_activation: str | None = "softmax",
                dropout: float = 0.5, dropout_scaling: str = "train", hidden_units: int = 50,
                batchnorm: bool = False, name: str = "deepconvnet") -> keras.Model:
    """The book's DeepConvNet: six 3x3 convs, three max-pools, two affine layers (ch. 8).

    Args:
        input_shape: (H, W, C); the book's is (28, 28, 1).
        num_classes: output classes (the book's 10).
        include_top: with the affine layers; False returns the last pooled feature map (or vector).
        pooling: None, "avg" or "max" when include_top is False.
        classifier_activation: "softmax" (the book's) or None for logits.
        dropout: rate of both dropout layers (the book's 0.5).
        dropout_scaling: "train" (Keras's inverted dropout) or "test" (the book's: x (1 - rate) at test time).
        hidden_units: width of the hidden affine layer (the book's 50).
        batchnorm: add BatchNorm after each conv (not in the book).
        name: the model name.

    Returns:
        The Keras model.
    """
    if dropout_scaling not in blocks.DROPOUT_SCALINGS:
        raise ModelError(f"{name}: dropout_scaling must be one of {', '.join(blocks.DROPOUT_SCALINGS)}, "
                         f"got {dropout_scaling!r}")
    inputs = keras.Input(input_shape, name="input")
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
    if not include_top:
        return keras.Model(inputs, blocks.global_pool(x, pooling), name=name)
    x = layers.Flatten(name="flatten")(x)
    x = blocks.dense(x, hidden_units, "fc1")
    x = layers.Activation("relu", name="fc1_relu")(x)
    if dropout:
        x = blocks.dropout(x, dropout, "fc1", dropout_scaling)
    outputs = blocks.predictions(x, num_classes, classifier_activation, dropout_rate=dropout,
                                 dropout_scaling=dropout_scaling)
    return keras.Model(inputs, outputs, name=name)
