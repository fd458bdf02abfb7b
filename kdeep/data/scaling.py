"""Pixel scaling, in one place: uint8 pixels to float32 in [0, 1], then into the input range a model's contract names."""
from __future__ import annotations

from typing import Any

import numpy as np

UNIT_RANGE = (0.0, 1.0)
PIXEL_SCALE = 1.0 / 255.0


def scale_pixels(images: Any, input_range: tuple[float, float] = UNIT_RANGE) -> Any:
    """uint8 pixels -> float32, 0 -> low and 255 -> high of `input_range`; float images are taken as in [0, 1].

    Args:
        images: a numpy array (stays numpy, no TensorFlow needed) or a TensorFlow tensor (inside tf.data).
        input_range: the (low, high) the model takes, from its contract (kdeep models: (0, 1)).

    Returns:
        Float32 images of the same kind and shape.
    """
    low, high = (float(v) for v in input_range)
    if isinstance(images, np.ndarray):
        x = images.astype(np.float32) * np.float32(PIXEL_SCALE) if images.dtype == np.uint8 \
            else images.astype(np.float32, copy=False)
        return x if (low, high) == UNIT_RANGE else x * np.float32(high - low) + np.float32(low)
    import tensorflow as tf

    x = tf.cast(images, tf.float32) * PIXEL_SCALE if images.dtype == tf.uint8 else tf.cast(images, tf.float32)
    return x if (low, high) == UNIT_RANGE else x * (high - low) + low
