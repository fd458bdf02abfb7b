"""Layer blocks shared by every family: He-normal init, conv-BN-ReLU, the input and the classifier head."""
from __future__ import annotations

from typing import Any

import keras
from keras import layers

# Batch-norm epsilon of keras.applications (ResNet), close to PyTorch's 1e-5.
BN_EPSILON = 1.001e-5
# Width-scaled channel counts are rounded to a multiple of this (the MobileNet/EfficientNet convention).
CHANNEL_DIVISOR = 8


def scaled(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """A layer's channel count times the width multiplier, rounded to the nearest multiple of `divisor`.

    Rounded as torchvision's `_make_divisible`: at least `divisor`, and never more than 10% below
    channels x width. Width 1.0 returns `channels` unchanged (every table here is already a multiple of 8).

    Args:
        channels: the count at width 1.0.
        width: the multiplier (the registry checks it is in (0, 4]).
        divisor: the rounding step.

    Returns:
        The scaled channel count.
    """
    if width == 1.0:
        return channels
    target = channels * width
    value = max(divisor, int(target + divisor / 2) // divisor * divisor)
    return value + divisor if value < 0.9 * target else value


def he_normal() -> keras.initializers.Initializer:
    """He et al. 2015 init as the book writes it: N(0, 1) * sqrt(2 / fan_in), not truncated.

    Keras' "he_normal" draws from a *truncated* normal; the book (and He et al.) use a plain normal, which
    is `VarianceScaling(2.0, "fan_in", "untruncated_normal")`.
    """
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


def conv(x: Any, filters: int, kernel: int, name: str, *, strides: int = 1, padding: str = "same",
         use_bias: bool = False) -> Any:
    """A 2-D convolution with He-normal weights (and zero bias when it has one)."""
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
                         kernel_initializer=he_normal(), name=name)(x)


def batchnorm(x: Any, name: str) -> Any:
    """Batch normalization over the channel axis."""
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


def conv_bn_relu(x: Any, filters: int, kernel: int, name: str, *, strides: int = 1, bn: bool = True,
                 padding: str = "same") -> Any:
    """Conv -> (BatchNorm) -> ReLU, named `{name}`, `{name}_bn`, `{name}_relu`.

    Without batch norm the conv carries a bias; before batch norm it does not (BN's beta replaces it).
    """
    x = conv(x, filters, kernel, name, strides=strides, padding=padding, use_bias=not bn)
    if bn:
        x = batchnorm(x, f"{name}_bn")
    return layers.Activation("relu", name=f"{name}_relu")(x)


def dense(x: Any, units: int, name: str) -> Any:
    """A fully connected layer with He-normal weights and zero bias."""
    return layers.Dense(units, kernel_initializer=he_normal(), name=name)(x)


DROPOUT_SCALINGS = ("train", "test")


def dropout(x: Any, rate: float, name: str, scaling: str = "train") -> Any:
    """Dropout named `{name}_dropout`, scaled the Keras way or the book's way.

    Args:
        x: the input tensor.
        rate: the fraction of units dropped while training.
        name: the layer-name prefix.
        scaling: "train" is Keras's inverted dropout (kept units x 1/(1 - rate) while training, identity at
            test). "test" is the book's `Dropout` layer (kept units unscaled while training, x (1 - rate) at
            test), built from standard layers as Dropout -> Rescaling(1 - rate) "{name}_dropout_scale".

    Returns:
        The output tensor.
    """
    x = layers.Dropout(rate, name=f"{name}_dropout")(x)
    if scaling == "test":
        x = layers.Rescaling(1.0 - rate, name=f"{name}_dropout_scale")(x)
    return x


def predictions(x: Any, num_classes: int, activation: str | None, *, dropout_rate: float = 0.0,
                dropout_scaling: str = "train") -> Any:
    """The classifier output: Dense(num_classes) "logits" -> [dropout] -> Activation "predictions".

    The final activation runs in float32, so under a mixed_float16 policy the model still returns
    float32 probabilities (or logits when `activation` is None).
    """
    x = dense(x, num_classes, "logits")
    if dropout_rate:
        x = dropout(x, dropout_rate, "logits", dropout_scaling)
    return layers.Activation(activation or "linear", dtype="float32", name="predictions")(x)


def global_pool(x: Any, pooling: str | None, name: str = "pool") -> Any:
    """Global average/max pooling to a vector, or `x` unchanged when `pooling` is None."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name}_avg")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name}_max")(x)
    return x

