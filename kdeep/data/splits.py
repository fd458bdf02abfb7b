"""Dataset splits, each named dataset read once per process: train/test arrays, one split, a run's
train/validation/test split, and a dataset's number of classes."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Union

import numpy as np

from kdeep.data.datasets import Arrays, Splits, class_names, load, search_dirs
from kdeep.errors import ConfigError, DataError

Dataset = Union[str, Splits]  # a kdeep.data name, or ((x_train, y_train), (x_test, y_test)) arrays
DEFAULT_VAL_SPLIT = 5000  # held-out images for MNIST-sized sets; smaller sets hold out a tenth


@dataclass(frozen=True)
class RunSplits:
    """A training run's data: the images it trains on, the ones it holds out for validation, the test set."""

    train: Arrays
    validation: Arrays
    test: Arrays



def load_splits(dataset: Dataset) -> Splits:
    """((x_train, y_train), (x_test, y_test)) of a dataset; a named one is read once per process (training,
    scoring, quantization and comparisons share the arrays: do not write into them).

    Args:
        dataset: a kdeep.data name, or ((x_train, y_train), (x_test, y_test)) arrays.

    Raises:
        DataError: neither a name nor two (x, y) pairs, or a named dataset that cannot be read.
    """
    if isinstance(dataset, str):
        return _load_named(dataset, tuple(str(folder) for folder in search_dirs(dataset)))
    if len(dataset) == 2 and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in dataset):
        return tuple(tuple(np.asarray(a) for a in part) for part in dataset)  # type: ignore[return-value]
    raise DataError("dataset must be a name or ((x_train, y_train), (x_test, y_test))")


@functools.lru_cache(maxsize=2)
def _load_named(name: str, folders: tuple[str, ...]) -> Splits:
    """A named dataset, read once per process and per set of folders it is looked for in."""
    return load(name)


def load_split(dataset: Dataset | Arrays, split: str = "test") -> Arrays:
    """The (x, y) arrays of one split.

    Args:
        dataset: a kdeep.data name, ((x_train, y_train), (x_test, y_test)), or one (x, y) pair (any split).
        split: "train" or "test".

    Returns:
        (images, labels) as numpy arrays.
    """
    if split not in ("train", "test"):
        raise DataError(f"split {split!r} is unknown: use 'train' or 'test'")
    if not isinstance(dataset, str) and len(dataset) == 2 and not isinstance(dataset[0], (tuple, list)):
        return np.asarray(dataset[0]), np.asarray(dataset[1])
    train, test = load_splits(dataset)  # type: ignore[arg-type]
    return train if split == "train" else test


def validation_count(val_split: int | None, num_train: int) -> int:
    """How many of `num_train` training images a run holds out for validation (from the end).

    Args:
        val_split: the images asked for; None: `DEFAULT_VAL_SPLIT` for sets of 50,000+ images, else a tenth.
        num_train: the training images there are.

    Raises:
        ConfigError: the split would leave no training image.
    """
    if val_split is None:
        return DEFAULT_VAL_SPLIT if num_train >= 10 * DEFAULT_VAL_SPLIT else num_train // 10
    if val_split >= num_train:
        raise ConfigError(f"val_split={val_split} leaves no training images out of {num_train}: lower it")
    return val_split


def run_splits(dataset: Dataset, *, val_split: int | None = None, limit: int | None = None) -> RunSplits:
    """The ONE train/validation/test split of a run: the first `limit` training images (all when None), of which
    the last `validation_count(val_split, ...)` are held out for validation; the test set as it is.

    Args:
        dataset: a kdeep.data name or ((x_train, y_train), (x_test, y_test)) arrays.
        val_split: images held out (None: the default rule of `validation_count`; 0: none).
        limit: use only the first N training images.
    """
    (x_train, y_train), test = load_splits(dataset)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    cut = len(x_train) - validation_count(val_split, len(x_train))
    return RunSplits((x_train[:cut], y_train[:cut]), (x_train[cut:], y_train[cut:]), test)


def num_classes(dataset: Dataset) -> int:
    """The classes of a named dataset (from its spec), of an image folder (its class subfolders) or of arrays (the
    largest train or test label + 1)."""
    if isinstance(dataset, str):
        return len(class_names(dataset))
    (_, y_train), (_, y_test) = load_splits(dataset)
    return int(max(np.max(y_train), np.max(y_test))) + 1
