"""Layer blocks shared by every family: He-normal init, conv-BN-ReLU, the width rounding and the classifier head."""
from __future__ import annotations

import dataclasses
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


def dense_layer(units: int, name: str) -> layers.Dense:
    """A fully connected layer with He-normal weights and zero bias (not yet called)."""
    return layers.Dense(units, kernel_initializer=he_normal(), name=name)


def dense(x: Any, units: int, name: str) -> Any:
    """A fully connected layer with He-normal weights and zero bias, applied to `x`."""
    return dense_layer(units, name)(x)


DROPOUT_SCALINGS = ("train", "test")


def dropout_layers(rate: float, name: str, scaling: str = "train") -> list[layers.Layer]:
    """Dropout named `name`, scaled the Keras way or the book's way (not yet called).

    Args:
        rate: the fraction of units dropped while training.
        name: the Dropout layer's name.
        scaling: "train" is Keras's inverted dropout (kept units x 1/(1 - rate) while training, identity at
            test). "test" is the book's `Dropout` layer (kept units unscaled while training, x (1 - rate) at
            test), built from standard layers as Dropout -> Rescaling(1 - rate) "{name}_scale".

    Returns:
        The layers, in order.
    """
    dropped = [layers.Dropout(rate, name=name)]
    if scaling == "test":
        dropped.append(layers.Rescaling(1.0 - rate, name=f"{name}_scale"))
    return dropped


def classify_layers(num_classes: int, activation: str | None, *, prefix: str = "", dropout_rate: float = 0.0,
                    dropout_scaling: str = "train") -> list[layers.Layer]:
    """The class scores: Dense(num_classes) "{prefix}logits" -> [dropout] -> Activation "{prefix}predictions".

    The final activation runs in float32, so under a mixed_float16 policy the model still returns float32
    probabilities (or logits when `activation` is None).
    """
    scores: list[layers.Layer] = [dense_layer(num_classes, f"{prefix}logits")]
    if dropout_rate:
        scores += dropout_layers(dropout_rate, f"{prefix}logits_dropout", dropout_scaling)
    return [*scores, layers.Activation(activation or "linear", dtype="float32", name=f"{prefix}predictions")]


def apply(x: Any, sequence: list[layers.Layer]) -> Any:
    """Calls the layers one after the other on `x`."""
    for layer in sequence:
        x = layer(x)
    return x


def global_pool(x: Any, pooling: str | None, name: str = "pool") -> Any:
    """Global average/max pooling to a vector, or `x` unchanged when `pooling` is None."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name}_avg")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name}_max")(x)
    return x


@dataclasses.dataclass(frozen=True)
class Top:
    """What `top` built: the model's output tensor, the classifier's layer names and the output kind.

    Attributes:
        outputs: the output tensor.
        classifier: the layers transfer learning replaces (the first Dense and all after it), bottom to top;
            empty without a classifier.
        output: "probabilities" (softmax), "logits" (any other activation) or "features" (no classifier).
    """

    outputs: Any
    classifier: tuple[str, ...]
    output: str


DROPOUT_PLACES = ("features", "hidden", "logits")


def top(x: Any, num_classes: int, *, include_top: bool = True, pooling: str | None = None,
        activation: str | None = "softmax", flatten: bool = False, hidden: tuple[int, ...] = (),
        dropout_rate: float = 0.0, dropout_at: tuple[str, ...] = (), dropout_scaling: str = "train") -> Top:
    """The classifier head every family ends in: pool -> [hidden fc] -> dropout -> Dense -> activation.

    With `include_top`: GlobalAveragePooling2D "avg_pool" (or Flatten "flatten"), then each hidden width as
    Dense "fc{i}" -> ReLU "fc{i}_relu", then Dense "logits" -> Activation "predictions" (`classify_layers`).
    Without it: the features, globally pooled as `pooling` says ("pool_avg", "pool_max") or left as a map.

    Args:
        x: the last feature map.
        num_classes: classes.
        include_top: build the classifier; False returns the features.
        pooling: None, "avg" or "max" when include_top is False.
        activation: the final activation ("softmax"), or None for logits.
        flatten: flatten the map (VGG, DeepConvNet) instead of average-pooling it (GoogLeNet, ResNet).
        hidden: widths of the hidden fully connected layers (VGG: two 4096s; DeepConvNet: one 50).
        dropout_rate: the rate of every dropout of the head (0: none).
        dropout_at: where the dropouts go (a subset of DROPOUT_PLACES): "features" (after the pool, "dropout"),
            "hidden" (after each hidden layer, "fc{i}_dropout"), "logits" (between the logits and the activation,
            "logits_dropout").
        dropout_scaling: "train" (Keras's) or "test" (the book's), see `dropout_layers`.

    Returns:
        The Top (outputs, classifier layer names, output kind).
    """
    if not include_top:
        return Top(global_pool(x, pooling), (), "features")
    x = layers.Flatten(name="flatten")(x) if flatten else layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate and "features" in dropout_at:
        x = apply(x, dropout_layers(dropout_rate, "dropout", dropout_scaling))
    head: list[layers.Layer] = []
    for i, units in enumerate(hidden, start=1):
        head += [dense_layer(units, f"fc{i}"), layers.Activation("relu", name=f"fc{i}_relu")]
        if dropout_rate and "hidden" in dropout_at:
            head += dropout_layers(dropout_rate, f"fc{i}_dropout", dropout_scaling)
    head += classify_layers(num_classes, activation, dropout_rate=dropout_rate if "logits" in dropout_at else 0.0,
                            dropout_scaling=dropout_scaling)
    return Top(apply(x, head), tuple(layer.name for layer in head),
               "probabilities" if activation == "softmax" else "logits")
