"""Datasets as numpy arrays (no TensorFlow) and the tf.data input pipeline with batch-wise augmentation.

`load`, `load_image_folder`, `info`, `list_datasets` and `scale_pixels` (on arrays) need numpy only; `pipeline`,
`Augment` and `PRESETS` import TensorFlow on first use.
"""
from kdeep.lazy import lazy_getattr
from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.data.datasets import DATASETS, cache_dir, get_spec, info, list_datasets, load, load_image_folder, search_dirs

_LAZY = {"pipeline": "kdeep.data.tfdata", "Augment": "kdeep.data.augment", "PRESETS": "kdeep.data.augment"}

__all__ = ["DATASETS", "PRESETS", "Augment", "cache_dir", "get_spec", "info", "list_datasets", "load", "load_image_folder",
           "pipeline", "scale_pixels", "search_dirs", "UNIT_RANGE"]

__getattr__ = lazy_getattr(globals(), _LAZY)
