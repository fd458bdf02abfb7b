"""Evaluation of a model, a run directory or a .keras file: accuracy, loss, per-class accuracy, confusion matrix."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from kdeep.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray]


def load_split(dataset: str | tuple[Arrays, Arrays] | Arrays, split: str = "test") -> Arrays:
    """The (x, y) arrays of a dataset split.

    Args:
        dataset: a kdeep.data name, ((x_train, y_train), (x_test, y_test)), or one (x, y) pair (any split).
        split: "train" or "test".

    Returns:
        (images, labels) as numpy arrays.
    """
    if isinstance(dataset, str):
        import kdeep.data

        train, test = kdeep.data.load(dataset)
        return train if split == "train" else test
    if len(dataset) == 2 and all(isinstance(part, (tuple, list)) for part in dataset):
        train, test = dataset
        return tuple(np.asarray(a) for a in (train if split == "train" else test))
    if len(dataset) == 2:
        return np.asarray(dataset[0]), np.asarray(dataset[1])
    raise DataError("dataset must be a name, (x, y), or ((x_train, y_train), (x_test, y_test))")


def predict(model: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, classes) in float32; uint8 images are scaled to [0, 1] as the pipeline does."""
    import kdeep.data

    dataset = kdeep.data.pipeline(x, np.zeros(len(x), np.int64), batch_size, shuffle=False, cache=False)
    outputs = np.asarray(model.predict(dataset.map(lambda images, labels: images), verbose=0), np.float32)
    sums = outputs.sum(axis=1)
    if outputs.min() < 0 or not np.allclose(sums, 1.0, atol=1e-3):  # logits: turn into probabilities
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs = shifted / shifted.sum(axis=1, keepdims=True)
    return outputs


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
    if isinstance(model_or_path, (str, os.PathLike)):
        from kdeep.train.run_dir import load_model

        model = load_model(model_or_path)
    else:
        model = model_or_path
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
