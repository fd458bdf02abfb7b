"""Evaluation of a model, a run directory or a .keras file: accuracy, loss, per-class accuracy, confusion matrix."""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from kdeep import io
from kdeep.contract import contract_of, probabilities
from kdeep.errors import DataError
from kdeep.shapes import takes_images

Arrays = tuple[np.ndarray, np.ndarray]


def load_splits(dataset: str | tuple[Arrays, Arrays]) -> tuple[Arrays, Arrays]:
    """((x_train, y_train), (x_test, y_test)) of a dataset (a named one is read once per process).

    Args:
        dataset: a kdeep.data name, or ((x_train, y_train), (x_test, y_test)) arrays.

    Returns:
        The two splits as numpy arrays.
    """
    if isinstance(dataset, str):
        return _load_named(dataset)
    if len(dataset) == 2 and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in dataset):
        return tuple(tuple(np.asarray(a) for a in part) for part in dataset)  # type: ignore[return-value]
    raise DataError("dataset must be a name or ((x_train, y_train), (x_test, y_test))")


@functools.lru_cache(maxsize=2)
def _load_named(name: str) -> tuple[Arrays, Arrays]:
    """A named dataset, read once per process (training, evaluation and transfer share the arrays read-only)."""
    import kdeep.data

    return kdeep.data.load(name)


def load_split(dataset: str | tuple[Arrays, Arrays] | Arrays, split: str = "test") -> Arrays:
    """The (x, y) arrays of one split.

    Args:
        dataset: a kdeep.data name, ((x_train, y_train), (x_test, y_test)), or one (x, y) pair (any split).
        split: "train" or "test".

    Returns:
        (images, labels) as numpy arrays.
    """
    if not isinstance(dataset, str) and len(dataset) == 2 and not isinstance(dataset[0], (tuple, list)):
        return np.asarray(dataset[0]), np.asarray(dataset[1])
    train, test = load_splits(dataset)
    return train if split == "train" else test


def predict(model: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, classes) in float32: images scaled into the model's input range, logits (by the
    model's contract) turned into probabilities.

    Raises:
        DataError: the images are not what the model takes.
    """
    import kdeep.data

    contract = contract_of(model)
    takes = tuple(model.inputs[0].shape[1:])
    if not takes_images(takes, x.shape[1:]):
        raise DataError(f"model {model.name!r} takes images of shape {takes}, not {tuple(x.shape[1:])}: evaluate it "
                        f"on the dataset it was trained for")
    dataset = kdeep.data.pipeline(x, np.zeros(len(x), np.int64), batch_size, shuffle=False, cache=False,
                                  input_range=contract.input_range)
    outputs = np.asarray(model.predict(dataset.map(lambda images, labels: images), verbose=0), np.float32)
    return probabilities(outputs, contract.output)


def evaluate(model_or_path: Any, dataset: str | tuple[Arrays, Arrays] | Arrays, *, limit: int | None = None,
             batch_size: int = 1000) -> dict[str, Any]:
    """Evaluates a classifier on a dataset's test split (or on given (x, y) arrays).

    Args:
        model_or_path: a Keras model, a kdeep run directory (its model.keras, else ensemble.keras) or a .keras file.
        dataset: a kdeep.data name (its test split), ((x_train, y_train), (x_test, y_test)), or (x, y).
        limit: evaluate only the first N examples.
        batch_size: prediction batch size.

    Returns:
        {"accuracy", "loss" (mean cross-entropy), "num_examples", "per_class_accuracy" (list),
         "confusion_matrix" (rows = true class, columns = predicted)}.
    """
    model = io.load_model(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    x, y = load_split(dataset, "test")
    if limit:
        x, y = x[:limit], y[:limit]
    y = y.astype(np.int64).reshape(-1)
    probabilities = predict(model, x, batch_size)
    classes = probabilities.shape[1]
    if y.max() >= classes:
        raise DataError(f"labels go up to {y.max()} but the model has {classes} outputs: wrong dataset?")
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    loss = -np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)).mean()
    return {
        "accuracy": float((predicted == y).mean()),
        "loss": float(loss),
        "num_examples": int(len(y)),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion_matrix": confusion.tolist(),
    }
