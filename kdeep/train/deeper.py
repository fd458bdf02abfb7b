"""The "why deeper" experiment trained (`kdeep why-deeper --train`): each large-kernel net against the 3x3-stack net
with the same receptive field and parameters (`kdeep.models.why_deeper.matched_pair`), under one recipe."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kdeep.train.config import TrainConfig


@dataclass(frozen=True)
class TrainedNet:
    """One trained net of a pair.

    Attributes:
        name: "shallow_k<k>" or "deep_3x3x<n>".
        convs: its convolutions; channels: the width of its last one; receptive_field: its side in pixels.
        params, macs: parameters and multiply-accumulates per image.
        val_accuracy: on the recipe's validation split (None without one); test_accuracy: on the test set.
        run_dir: its resumable run directory.
    """

    name: str
    convs: int
    channels: int
    receptive_field: int
    params: int
    macs: int
    val_accuracy: float | None
    test_accuracy: float
    run_dir: Path


@dataclass(frozen=True)
class WhyDeeper:
    """The experiment: its dataset, training config (epochs, ...), stages and the nets, two per kernel."""

    dataset: str
    config: TrainConfig
    stages: int
    nets: list[TrainedNet]


def train_why_deeper(dataset: str = "fashion_mnist", kernels: Sequence[int] = (5, 7), *, channels: int = 32,
                     stages: int = 2, recipe: str | None = "fast", epochs: int | None = None, limit: int | None = None,
                     out: str | os.PathLike = "runs/why-deeper", verbose: int | str = 2) -> WhyDeeper:
    """Trains the matched pair of every kernel into OUT/<net> (each resumable) and measures both nets.

    Args:
        dataset: a kdeep dataset name or image folder.
        kernels: odd kernel sizes >= 5, one pair each.
        channels: width of the large-kernel convs; stages: conv stages, each closed by a 2x2 max-pool.
        recipe, epochs, limit: the training recipe, its epochs overridden, the first N training images.
        out: the experiment's folder.
        verbose: Keras fit verbosity.

    Raises:
        ModelError: a bad kernel, width or stage count, or images too small (every pair is built and checked
            before anything is trained). ConfigError: a bad recipe, epochs or limit. DataError: an unknown dataset.
    """
    import keras

    import kdeep.data
    from kdeep.models.why_deeper import matched_pair
    from kdeep.train.trainer import fit

    config = TrainConfig.from_recipe(recipe, epochs=epochs, limit=limit)
    (x_train, _), _ = kdeep.data.load_splits(dataset)
    classes = kdeep.data.num_classes(dataset)
    pairs = [matched_pair(x_train.shape[1:], classes, kernel=k, channels=channels, stages=stages) for k in kernels]
    nets = []
    for model in (model for pair in pairs for model in pair):
        measured = _measure(model)
        run = fit(model, dataset, config=dataclasses.replace(config, out=str(Path(out) / model.name)),
                  verbose=verbose)
        nets.append(TrainedNet(model.name, *measured, run.metrics.get("val_accuracy"), run.metrics["test_accuracy"],
                               run.dir))
        keras.backend.clear_session()
    return WhyDeeper(dataset, config, stages, nets)


def _measure(model: object) -> tuple[int, int, int, int, int]:
    """(convolutions, channels of the last, receptive field, parameters, MACs) of a pair's net."""
    from kdeep import analysis

    summary = analysis.summarize(model)
    convs = [row for row in summary.rows if row.kind == "Conv2D"]
    field = max(row.receptive_field for row in summary.rows if row.receptive_field)
    return len(convs), int(convs[-1].output_shape[-1]), int(field), int(summary.params), int(summary.macs)
