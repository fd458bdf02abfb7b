"""Image files classified by a `.keras` model or a deployable `.tflite` file, through one path (`kdeep predict`).

Files are decoded with Pillow (PNG, JPEG, ... of any size and channel count), resized to the model's input and
converted to its channels, then fed as uint8 pixels to a `Classifier`: a Keras model scales them as its contract
says, a LiteRT file as its input tensor and metadata say (`quantization.litert.pixel_inputs`). Decoding runs on
one thread, one batch ahead of the model (a LiteRT file invokes on every core by default). A file that is not a
readable image is skipped and reported; the others are still classified.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kdeep import io
from kdeep.data.folders import image_files, read_image
from kdeep.errors import DataError, ModelError, QuantizationError
from kdeep.models import presets

BATCH = 256


@dataclass(frozen=True)
class Prediction:
    """One file's top classes: ((label, probability), ...), most probable first."""

    file: str
    top: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.top[0][0]


@dataclass
class Predictions:
    """What `classify` found.

    Attributes:
        model: the model file.
        labels: the model's class names.
        predictions: one per readable image, in file order.
        skipped: {file: why (one line naming the file)} for the files that are not readable images.
        accuracy: the share of files whose top label is the name of the folder holding them, when every
            classified file sits in a folder named after one of the labels (a dataset folder); else None.
    """

    model: str
    labels: tuple[str, ...]
    predictions: list[Prediction] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: model, labels, predictions [{file, top: [{label, probability}]}], skipped, accuracy."""
        return {"model": self.model, "labels": list(self.labels), "accuracy": self.accuracy, "skipped": self.skipped,
                "predictions": [{"file": p.file, "top": [{"label": label, "probability": probability}
                                                         for label, probability in p.top]}
                                for p in self.predictions]}


class KerasClassifier:
    """A Keras model fed uint8 pixels, scaled into its input range by its contract."""

    def __init__(self, model: Any, labels: tuple[str, ...]) -> None:
        shape = tuple(model.input_shape[1:])
        if len(shape) != 3 or None in shape or shape[2] not in (1, 3):
            raise ModelError(f"model {model.name!r} takes inputs of shape {shape}, not fixed-size images with 1 or 3 "
                             "channels: give an image classifier")
        self.model, self.labels = model, labels
        self.image_size, self.channels = (int(shape[0]), int(shape[1])), int(shape[2])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, classes) float32 probabilities of uint8 (N, H, W, C) images."""
        from kdeep import scoring

        return scoring.predict(self.model, pixels)


class LiteRTClassifier:
    """A deployable LiteRT file fed uint8 pixels as its input tensor and TFLite Metadata say, invoked on
    `num_threads` threads (None: every core)."""

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        from quantization import litert, metadata

        self.path = path
        data = path.read_bytes()
        self.runner = litert.open_model(path, num_threads=num_threads or os.cpu_count() or 1)
        self.detail, output = self.runner.input_detail(), self.runner.output_detail()
        shape, dtype = tuple(int(d) for d in self.detail["shape"]), np.dtype(self.detail["dtype"])
        if len(self.detail["shape"]) != 4 or shape[3] not in (1, 3) or dtype not in (np.uint8, np.int8, np.float32):
            raise QuantizationError(f"{path} takes {dtype.name} inputs of shape {list(shape)}, not images "
                                    "([1, height, width, 1 or 3] uint8, int8 or float32): give an image classifier, "
                                    "e.g. one written by `kdeep export`")
        self.image_size, self.channels = shape[1:3], shape[3]
        if dtype == np.float32 and self.runner.normalization is None:
            raise QuantizationError(f"{path} has a float input without NormalizationOptions metadata, so how "
                                    "pixels map onto it is unknown: export the model with `kdeep export`")
        classes = int(output["shape"][-1])
        self.labels = tuple(metadata.packed_labels(data) or (str(i) for i in range(classes)))

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, classes) float32 probabilities of uint8 (N, H, W, C) images."""
        from quantization.litert import pixel_inputs

        return self.runner.run(pixel_inputs(pixels, self.detail, self.runner.normalization))


def open_classifier(model_path: str | os.PathLike, dataset: str | None = None, threads: int | None = None) -> Any:
    """The classifier a path names: a `.tflite` file, a `.keras` file, a run directory or a preset name.

    Labels: a `.tflite` file's packed labels file; a Keras model's contract labels, else those of its run's
    dataset (or `dataset`), else the class indices. `threads`: the LiteRT interpreter's (None: every core).

    Raises:
        ArtifactError: no model there; QuantizationError: a `.tflite` file that does not take images.
    """
    from kdeep.contract import contract_of
    from kdeep.data import class_names
    from kdeep.train.run_dir import dataset_of

    if presets.named(model_path) is None and io.resolve_model(model_path, tflite=True).suffix == ".tflite":
        return LiteRTClassifier(io.resolve_model(model_path, tflite=True), threads)
    model = presets.as_model(model_path)
    dataset = dataset_of(model_path, dataset)
    classes = int(model.output_shape[-1])
    labels = contract_of(model).labels or (class_names(dataset) if dataset else tuple(str(i) for i in range(classes)))
    return KerasClassifier(model, tuple(labels))


def classify(model_path: str | os.PathLike, inputs: Sequence[str | os.PathLike], *, top_k: int = 5,
             batch_size: int = BATCH, dataset: str | None = None, threads: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Classifies image files (and the files in folders, recursively) with a model.

    Args:
        model_path: a `.keras` file, a run directory, a preset name (`kdeep presets`) or a `.tflite` file (made by
            `kdeep export`).
        inputs: image files and folders.
        top_k: classes reported per image.
        batch_size: images decoded and classified together.
        dataset: the dataset whose class names label a Keras model without labels of its own.
        threads: threads of a `.tflite` model's invokes (None: every core; decoding overlaps them on its own thread).
        progress: called as progress(files done, files in all) after each batch.

    Returns:
        `Predictions`; unreadable files are in `.skipped`, the rest classified.

    Raises:
        DataError: an input that does not exist, or top_k < 1; ArtifactError/QuantizationError: see
            `open_classifier`.
    """
    if top_k < 1:
        raise DataError(f"top_k={top_k} must be >= 1")
    files = image_files(list(inputs))
    classifier = open_classifier(model_path, dataset, threads)
    result = Predictions(str(model_path), classifier.labels)
    k = min(top_k, len(classifier.labels))
    batches = [files[start:start + batch_size] for start in range(0, len(files), batch_size)]
    # One decoding thread, a batch ahead of the model, whose invokes release the GIL and run on every core (LiteRT's
    # threads take what decoding leaves). More decoding threads do not help: decoding small images is mostly Python
    # holding the GIL, and two threads cost 3.5x the CPU per file here.
    outputs: list[tuple[list[str], np.ndarray]] = []  # (files, probabilities) per batch; labelled after the loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        def submit(batch: list[str]) -> Any:
            return pool.submit(_decode, batch, classifier.image_size, classifier.channels)

        pending = submit(batches[0]) if batches else None
        for index in range(len(batches)):
            decoded = pending.result()
            pending = submit(batches[index + 1]) if index + 1 < len(batches) else None  # decoded while this runs
            result.skipped.update(decoded.skipped)
            if decoded.files:
                outputs.append((decoded.files, classifier.probabilities(decoded.pixels)))
            if progress:
                progress(min((index + 1) * batch_size, len(files)), len(files))
    for batch_files, probabilities in outputs:
        result.predictions += _top(classifier.labels, batch_files, probabilities, k)
    result.accuracy = _folder_accuracy(result.predictions, classifier.labels)
    return result


@dataclass
class _Decoded:
    """A batch decoded: the readable files, their pixels stacked (N, H, W, C), and {file: why} for the others."""

    files: list[str]
    pixels: np.ndarray
    skipped: dict[str, str]


def _decode(files: list[str], image_size: tuple[int, int], channels: int) -> _Decoded:
    """The batch at the model's size and channels, stacked on the decoding thread (the model's thread only
    invokes), and why each unreadable file is not an image (naming it)."""
    good, pixels, skipped = [], [], {}
    for file in files:
        try:
            pixels.append(read_image(file, image_size, channels))
            good.append(file)
        except DataError as error:
            skipped[file] = str(error)
    return _Decoded(good, np.stack(pixels) if pixels else np.zeros((0, *image_size, channels), np.uint8), skipped)


def _top(labels: tuple[str, ...], files: list[str], probabilities: np.ndarray, k: int) -> list[Prediction]:
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [Prediction(file, tuple((labels[i], float(row[i])) for i in best))
            for file, row, best in zip(files, probabilities, order)]


def _folder_accuracy(predictions: list[Prediction], labels: tuple[str, ...]) -> float | None:
    """Top-1 accuracy against the folder names, when every file's folder is named after a label."""
    truth = [os.path.basename(os.path.dirname(p.file)) for p in predictions]
    if not predictions or any(name not in labels for name in truth):
        return None
    return float(np.mean([p.label == name for p, name in zip(predictions, truth)]))
