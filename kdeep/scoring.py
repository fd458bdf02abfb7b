"""Scoring a Keras classifier: probabilities from uint8 images scaled by its contract, accuracy, and the `Score`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from kdeep.contract import contract_of, probabilities
from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.data.splits import Arrays, Dataset, load_split
from kdeep.errors import DataError
from kdeep.models import presets
from kdeep.shapes import takes_images

BATCH = 1000  # images per predict step


@dataclass(frozen=True)
class Score:
    """A classifier's score on labelled images.

    Attributes:
        accuracy: top-1 accuracy in [0, 1].
        loss: mean cross-entropy of the probabilities.
        n: images scored.
        per_class_accuracy: accuracy on each true class (None for a class with no image).
        confusion_matrix: counts, rows = true class, columns = predicted class.
    """

    accuracy: float
    loss: float
    n: int
    per_class_accuracy: tuple[float | None, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """The score as JSON-ready values (what `kdeep evaluate --json` prints)."""
        return {"accuracy": self.accuracy, "loss": self.loss, "n": self.n,
                "per_class_accuracy": list(self.per_class_accuracy),
                "confusion_matrix": [list(row) for row in self.confusion_matrix]}


def predict(model_or_path: Any, images: np.ndarray, *, batch_size: int = BATCH) -> np.ndarray:
    """Class probabilities (N, classes), float32, of a Keras classifier.

    Args:
        model_or_path: a Keras model, a kdeep run directory or a `.keras` file (loaded through `kdeep.io`).
        images: uint8 pixels (N, H, W, C), scaled into the model's input range by its contract; float images are
            taken as already in [0, 1] (as `kdeep.data.scale_pixels` takes them).
        batch_size: images per predict step.

    Returns:
        Probabilities: the model's outputs, through a softmax when its contract says it outputs logits.

    Raises:
        DataError: the images are not what the model takes.
    """
    model = presets.as_model(model_or_path)
    images = np.asarray(images)
    contract = contract_of(model)
    takes = tuple(model.inputs[0].shape[1:])
    if not takes_images(takes, images.shape[1:]):
        raise DataError(f"model {model.name!r} takes images of shape {takes}, not {tuple(images.shape[1:])}: score "
                        f"it on the dataset it was trained for")
    return probabilities(outputs(model, images, batch_size=batch_size, input_range=contract.input_range),
                         contract.output)


def outputs(model: Any, images: np.ndarray, *, batch_size: int = BATCH,
            input_range: tuple[float, float] = UNIT_RANGE) -> np.ndarray:
    """A Keras model's raw outputs (N, ...) on images, `batch_size` at a time through `predict_on_batch`.

    Keras' `predict` builds a data pipeline on every call: 0.1 s each on a 2-core CPU, which a sweep or a search
    pays per configuration, and 20 % slower on 10,000 images (ResNet-20) than these steps. A model built under a
    strategy with several replicas goes through `predict`, which splits the batches between them.

    Args:
        model: a Keras model.
        images: uint8 pixels, or float images in [0, 1], scaled into `input_range` a batch at a time
            (`kdeep.data.scale_pixels`).
        batch_size: images per step.
        input_range: the (low, high) the model takes (its contract's).
    """
    if getattr(getattr(model, "distribute_strategy", None), "num_replicas_in_sync", 1) > 1:
        # under a strategy with several replicas predict_on_batch returns every replica's outputs on the whole batch
        return np.asarray(model.predict(scale_pixels(images, input_range), batch_size=batch_size, verbose=0))
    return np.concatenate([np.asarray(model.predict_on_batch(scale_pixels(images[start:start + batch_size],
                                                                          input_range)))
                           for start in range(0, len(images), batch_size)])


def correct(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image, whether the top-1 class of its outputs (probabilities or logits, (N, classes)) is its label."""
    return np.asarray(outputs).argmax(axis=-1) == np.asarray(labels).reshape(-1)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of outputs (probabilities or logits, (N, classes)) against integer labels."""
    return float(np.mean(correct(outputs, labels)))


def agreement(outputs: np.ndarray, reference: np.ndarray) -> float:
    """How often two models' top-1 predictions on the same images agree, in [0, 1]."""
    return accuracy(outputs, np.asarray(reference).argmax(axis=-1))


def score_probabilities(probs: np.ndarray, labels: np.ndarray) -> Score:
    """The `Score` of class probabilities (N, classes) against integer labels (N,).

    Raises:
        DataError: no images, labels and probabilities of different lengths, or a label the model has no output for.
    """
    probs, labels = np.asarray(probs, np.float32), np.asarray(labels).astype(np.int64).reshape(-1)
    classes = probs.shape[-1]
    if len(labels) == 0 or len(labels) != len(probs):
        raise DataError(f"scoring needs as many labels as images, at least one (got {len(probs)} images, "
                        f"{len(labels)} labels)")
    if labels.max() >= classes or labels.min() < 0:
        raise DataError(f"labels go up to {labels.max()} but the model has {classes} outputs: wrong dataset?")
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean()
    return Score(accuracy=accuracy(probs, labels), loss=float(loss), n=int(len(labels)),
                 per_class_accuracy=tuple(None if np.isnan(a) else float(a) for a in per_class),
                 confusion_matrix=tuple(tuple(int(c) for c in row) for row in confusion))


def score(model_or_path: Any | str | os.PathLike, dataset: Dataset | Arrays, *, split: str = "test",
          limit: int | None = None, batch_size: int = BATCH) -> Score:
    """Scores a classifier on a dataset's split (or on given (x, y) arrays).

    Args:
        model_or_path: a Keras model, a kdeep run directory (its model.keras, else ensemble.keras) or a .keras file.
        dataset: a kdeep.data name, ((x_train, y_train), (x_test, y_test)), or one (x, y) pair.
        split: "test" or "train" (of a name or of both splits).
        limit: score only the first N images.
        batch_size: images per predict step.

    Raises:
        ArtifactError: no readable model at the path.
        DataError: images or labels the model cannot take.
    """
    model = presets.as_model(model_or_path)
    x, y = load_split(dataset, split)
    if limit:
        x, y = x[:limit], y[:limit]
    return score_probabilities(predict(model, x, batch_size=batch_size), y)
