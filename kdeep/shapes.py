"""Whether a model's input takes given images as they are (one predicate for training, transfer and quantization)."""
from __future__ import annotations

from typing import Sequence


def takes_images(input_shape: Sequence[int | None], image_shape: Sequence[int]) -> bool:
    """True when a model input of `input_shape` (None: any size) takes images of `image_shape` as they are.

    Args:
        input_shape: the model's input shape without the batch axis, e.g. (28, 28, 1) or (None, None, 3).
        image_shape: one image's shape, e.g. (28, 28, 1).

    Returns:
        Same rank, and every dimension either free (None) or equal.
    """
    return len(input_shape) == len(image_shape) and all(want in (None, got)
                                                        for want, got in zip(input_shape, image_shape))
