"""Datasets as numpy arrays (no TensorFlow), their splits, and the tf.data input pipeline with batch-wise augmentation.

`load` (named datasets and image folders), `load_image_folder`, `read_image`, `class_names`, `info`,
`list_datasets`, the cached splits (`load_splits`, `load_split`, `run_splits`, `num_classes`) and `scale_pixels`
(on arrays) need numpy only; `pipeline`, `Augment` and `PRESETS` import TensorFlow on first use.
"""
from kdeep.lazy import lazy_getattr
from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.data.datasets import DATASETS, cache_dir, class_names, get_spec, info, list_datasets, load, search_dirs
from kdeep.data.folders import load_image_folder, read_image
from kdeep.data.presets import AUGMENT_PRESETS
from kdeep.data.splits import (DEFAULT_VAL_SPLIT, RunSplits, load_split, load_splits, num_classes, run_splits,
                               validation_count)

_LAZY = {"pipeline": "kdeep.data.tfdata", "Augment": "kdeep.data.augment", "PRESETS": "kdeep.data.augment"}

__all__ = ["AUGMENT_PRESETS", "DATASETS", "DEFAULT_VAL_SPLIT", "PRESETS", "Augment", "RunSplits", "cache_dir",
           "class_names", "get_spec", "info", "list_datasets", "load", "load_image_folder", "load_split",
           "load_splits", "num_classes", "pipeline", "read_image", "run_splits", "scale_pixels", "search_dirs",
           "validation_count", "UNIT_RANGE"]

__getattr__ = lazy_getattr(globals(), _LAZY)
