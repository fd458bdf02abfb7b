"""Scoring one LiteRT variant against the float model: accuracy, top-1 agreement, probability error, size, latency."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kdeep import scoring
from kdeep.io import known_fields
from kdeep.contract import probabilities
from kdeep.data.scaling import UNIT_RANGE
from kdeep.errors import QuantizationError
from quantization import litert

REFERENCE_FIELDS = ("reference_accuracy", "agreement", "mean_abs_prob_diff", "max_abs_prob_diff")


@dataclass
class VariantScore:
    """A LiteRT file scored on labelled images (the reference fields: against the float model on the same images).

    Attributes:
        n: images scored.
        accuracy: top-1 accuracy.
        size_bytes: the file's size.
        scoring_seconds: time to score every image (batched, 2 threads).
        latency_us: batch-1 latency by thread count ("1", "2").
        reference_accuracy: the float model's accuracy on the same images.
        agreement: how often the file's top-1 prediction equals the float model's.
        mean_abs_prob_diff, max_abs_prob_diff: mean and largest |probability difference| with the float model.
    """

    n: int
    accuracy: float
    size_bytes: int
    scoring_seconds: float
    latency_us: dict[str, litert.Latency] = field(default_factory=dict)
    reference_accuracy: float | None = None
    agreement: float | None = None
    mean_abs_prob_diff: float | None = None
    max_abs_prob_diff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the reference fields only when measured)."""
        data = dataclasses.asdict(self)
        data["latency_us"] = {threads: value.to_dict() for threads, value in self.latency_us.items()}
        return {key: value for key, value in data.items() if value is not None or key not in REFERENCE_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantScore:
        """Reads what `to_dict` wrote (keys of other fields are ignored)."""
        values = known_fields(cls, data)
        values["latency_us"] = {t: litert.Latency.from_dict(v) for t, v in data.get("latency_us", {}).items()}
        return cls(**values)


def score_variant(tflite_path: str | os.PathLike, images: np.ndarray, labels: np.ndarray, *,
                  input_range: tuple[float, float] = UNIT_RANGE, output: str = "probabilities",
                  reference: np.ndarray | None = None, latency_runs: int = litert.LATENCY_RUNS) -> VariantScore:
    """Scores a LiteRT file on labelled images, against the float model's probabilities when given.

    Args:
        tflite_path: the .tflite file.
        images: uint8 pixels (or float in [0, 1]), scaled into `input_range` as `litert.predict` does.
        labels: integer labels.
        input_range: the float model's input range (its contract's).
        output: what the model outputs, "probabilities" or "logits" (its contract's `output`).
        reference: the float model's probabilities on the same images (`kdeep.scoring.predict`).
        latency_runs: timed batch-1 invokes per thread count (after warm-up).

    Raises:
        ArtifactError: the file is missing or not a LiteRT model.
        QuantizationError: images, labels and reference of different lengths.
    """
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if len(images) == 0 or len(images) != len(labels):
        raise QuantizationError(f"scoring needs as many labels as images (got {len(images)} images, "
                                f"{len(labels)} labels)")
    start = time.perf_counter()
    outputs = litert.predict(tflite_path, images, input_range=input_range)
    score = VariantScore(n=int(len(images)), accuracy=scoring.accuracy(outputs, labels),
                         size_bytes=Path(tflite_path).stat().st_size, scoring_seconds=time.perf_counter() - start,
                         latency_us=litert.latencies(tflite_path, images[0], input_range=input_range,
                                                     runs=latency_runs))
    if reference is not None:
        if len(reference) != len(images):
            raise QuantizationError(f"reference outputs cover {len(reference)} images, not the {len(images)} scored")
        difference = np.abs(probabilities(outputs, output) - np.asarray(reference, np.float32))
        score.reference_accuracy = scoring.accuracy(reference, labels)
        score.agreement = scoring.agreement(outputs, reference)
        score.mean_abs_prob_diff, score.max_abs_prob_diff = float(difference.mean()), float(difference.max())
    return score
