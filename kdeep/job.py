"""The main job (`kdeep run`): the book's DeepConvNet trained on MNIST, evaluated on its test set, quantized to
every LiteRT variant and reported."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdeep.errors import ConfigError
from kdeep.train.config import TrainConfig

DEFAULT_OUT = "runs/kdeep-run"
DEFAULT_RECIPE = "fast"
MODEL, DATASET = "deepconvnet", "mnist"
TRAIN, QUANTIZATION = "train", "quantization"  # OUT's two folders


@dataclass
class MainJob:
    """A finished main job.

    Attributes:
        run: the training run (`kdeep.train.Run`: its directory, model, metrics).
        quantization: the quantization results (`quantization.PipelineResults`, `.report_dir`), None when skipped.
        seconds: wall time of the whole job.
    """

    run: Any
    quantization: Any | None
    seconds: float

    @property
    def files(self) -> dict[str, Path]:
        """What the job left where: {"model", "metrics", "logs"} and "report" (the report folder) when quantized."""
        from kdeep import io
        from kdeep.train import run_dir as rd

        files = {"model": self.run.dir / io.MODEL, "metrics": self.run.dir / rd.METRICS, "logs": self.run.dir / rd.LOGS}
        if self.quantization is not None:
            files["report"] = self.quantization.report_dir
        return files


def run_main_job(out: str | os.PathLike = DEFAULT_OUT, *, recipe: str = DEFAULT_RECIPE, epochs: int | None = None,
                 limit: int | None = None, quantize: bool = True, verbose: int | str = 1) -> MainJob:
    """Trains DeepConvNet on MNIST into OUT/train (resumable), then quantizes it into OUT/quantization.

    Args:
        out: the job's folder.
        recipe: the training recipe (`kdeep.train.RECIPES`).
        epochs: the recipe's epochs overridden (None: the recipe's).
        limit: quick tries: train on the first N training images and score the variants on the first N test images.
        quantize: also quantize and write the report (else stop after training and evaluation).
        verbose: Keras fit verbosity.

    Raises:
        ConfigError: a bad recipe, epochs or limit (before anything is written). ArtifactError: OUT is a file.
    """
    import kdeep.train
    from kdeep import io

    for name, value in (("epochs", epochs), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name}={value!r} must be a positive integer (or None: the recipe's)")
    started = time.time()
    folder = io.output_dir(out, "job directory")
    config = TrainConfig.from_recipe(recipe, epochs=epochs, limit=limit, out=str(folder / TRAIN))
    run = kdeep.train.fit(MODEL, DATASET, config=config, verbose=verbose)
    results = None
    if quantize:
        from quantization import run_pipeline

        results = run_pipeline(run.dir / io.MODEL, DATASET, folder / QUANTIZATION, limit=limit)
    return MainJob(run, results, time.time() - started)

