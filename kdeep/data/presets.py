"""The augmentation presets as settings, without TensorFlow: `kdeep.data.augment.PRESETS` builds its policies from
them and `kdeep.train.config` takes their names."""
from __future__ import annotations

from typing import Any

AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "digits": dict(rotation=10.0, translation=0.1, zoom=0.1),  # no flip: a mirrored digit is another glyph
    "cifar": dict(crop_padding=4, horizontal_flip=True),
    "erasing": dict(crop_padding=4, horizontal_flip=True, erasing=0.5),  # "cifar" plus random erasing
}
