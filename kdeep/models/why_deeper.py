"""The "why deeper" pair (ch. 8.1.3) as trainable networks: large kernels, shallow, vs a deep stack of 3x3 convs.

Both have `stages` stages, each closed by a 2x2 max-pool, then global average pooling and a dense classifier;
convs carry biases and ReLU, no BatchNorm (so depth, not normalization, is what differs). A stage of the shallow
net is one k x k conv; a stage of the deep net is (k - 1) / 2 stacked 3x3 convs, which see the same k x k, so
the two nets have the same receptive field. The deep net's width is the one whose parameter count is closest to
the shallow net's (`matched_pair`), so the comparison is at equal parameters. Not in the registry: these are an
experiment's pair, built for `kdeep why-deeper --train`.
"""
from __future__ import annotations

import keras
from keras import layers

from kdeep.errors import ModelError
from kdeep.models import blocks


def _net(input_shape: tuple[int, int, int], num_classes: int, kernels: tuple[int, ...], channels: int, stages: int,
         name: str) -> keras.Model:
    """`stages` x (the convs `kernels`, each `channels` wide, ReLU; maxpool2) -> global average pool -> dense."""
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    for s in range(1, stages + 1):
        for c, kernel in enumerate(kernels, start=1):
            x = blocks.conv_bn_relu(x, channels, kernel, f"stage{s}_conv{c}", bn=False)
        x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
    return keras.Model(inputs, blocks.top(x, num_classes).outputs, name=name)


def _params(c_in: int, kernels: tuple[int, ...], channels: int, stages: int, num_classes: int) -> int:
    """The parameter count `_net` gives, without building it."""
    total, previous = 0, c_in
    for _ in range(stages):
        for kernel in kernels:
            total += kernel * kernel * previous * channels + channels
            previous = channels
    return total + channels * num_classes + num_classes


def matched_pair(input_shape: tuple[int, int, int], num_classes: int, *, kernel: int = 7, channels: int = 32,
                 stages: int = 2) -> tuple[keras.Model, keras.Model]:
    """The shallow k x k net and the 3x3-stack net with the same receptive field and the closest parameter count.

    Args:
        input_shape: (H, W, C); each stage halves H and W, so the sides must be at least 2**stages.
        num_classes: classifier width.
        kernel: k, odd and >= 5 (a 3x3 "stack" of one would be the same net).
        channels: width of the shallow net's convs.
        stages: conv stages, each closed by a 2x2 max-pool.

    Returns:
        (shallow, deep) Keras models named "shallow_k{k}" and "deep_3x3x{(k-1)/2}".

    Raises:
        ModelError: an even or too small kernel, channels or stages < 1, or an input too small for the stages.
    """
    if kernel < 5 or kernel % 2 == 0:
        raise ModelError(f"why-deeper: kernel must be odd and >= 5 (k x k = (k-1)/2 stacked 3x3), got {kernel}")
    if channels < 1 or stages < 1:
        raise ModelError(f"why-deeper: channels and stages must be >= 1, got {channels}, {stages}")
    if min(input_shape[:2]) < 2 ** stages:
        raise ModelError(f"why-deeper: {stages} stages halve the image {stages} times; {input_shape[0]}x"
                         f"{input_shape[1]} is too small (use fewer stages)")
    depth = (kernel - 1) // 2
    target = _params(input_shape[-1], (kernel,), channels, stages, num_classes)
    width = min(range(1, 4 * channels + 1),
                key=lambda d: abs(_params(input_shape[-1], (3,) * depth, d, stages, num_classes) - target))
    shallow = _net(input_shape, num_classes, (kernel,), channels, stages, f"shallow_k{kernel}")
    deep = _net(input_shape, num_classes, (3,) * depth, width, stages, f"deep_3x3x{depth}")
    return shallow, deep
