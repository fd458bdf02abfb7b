"""Held-out images for choices made on data (the mixed-precision search): the ones the run's config.json says the
model never trained on, split into a half that chooses and a half that confirms."""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdeep import io
from kdeep.data.splits import Dataset, run_splits
from kdeep.errors import QuantizationError
from kdeep.models import presets
from kdeep.train.config import TrainConfig
from kdeep.train.run_dir import CONFIG


@dataclass(frozen=True)
class HeldOut:
    """Labelled images a model did not train on, and where they come from.

    Attributes:
        x: the images (as stored: uint8, or float for arrays passed in); y: integer labels.
        source: where they come from, in words (the report prints it).
        start: index of the first image in the training set (after the run's `limit`), or -1 when given by hand.
    """

    x: np.ndarray
    y: np.ndarray
    source: str
    start: int = -1

    def halves(self) -> tuple["HeldOut", "HeldOut"]:
        """(choose, confirm): the first half chooses, the second half confirms what was chosen."""
        cut = len(self.y) // 2
        if cut == 0:
            raise QuantizationError(f"{len(self.y)} held-out image(s) cannot be split into a half that chooses and "
                                    "one that confirms; hold out more (e.g. --val-split 5000)")
        first, second = (self.start, self.start + cut) if self.start >= 0 else (-1, -1)
        return (HeldOut(self.x[:cut], self.y[:cut], f"{_span(first, cut)} of {self.source}", first),
                HeldOut(self.x[cut:], self.y[cut:], f"{_span(second, len(self.y) - cut)} of {self.source}", second))


def _span(start: int, count: int) -> str:
    """'images 55,000-57,499' for a known start, else 'N images'."""
    return f"images {start:,}-{start + count - 1:,}" if start >= 0 else f"{count:,} images"


def run_config(model_path: str | os.PathLike) -> TrainConfig | None:
    """The TrainConfig of the run a model came from: `config.json` in a run directory, beside a `.keras` file, or in
    the card of a preset named (`resnet20.fashion_mnist`: the config.json of the run it was published from); None
    when there is none."""
    preset = presets.named(model_path)
    if preset is not None:
        return TrainConfig.from_dict(preset.config)
    path = Path(model_path)
    config = path / CONFIG if path.is_dir() else path.parent / CONFIG
    if not config.is_file():
        return None
    return TrainConfig.from_dict(io.read_json(config, "pass a run directory written by kdeep train"))


def held_out(config: TrainConfig | None, dataset: Dataset, *, dataset_name: str | None = None,
             where: str = "the model") -> HeldOut:
    """The training images a run held out: its `config.json`'s split, by the trainer's own rule
    (`kdeep.data.splits.run_splits`: the first `limit` training images, the last `val_split` of them held out).

    Args:
        config: the run's TrainConfig (`run_config`), or None when the model came without one.
        dataset: the dataset name or ((x_train, y_train), (x_test, y_test)) arrays the pipeline scores.
        dataset_name: the dataset's name, checked against the run's (None: not checked).
        where: the model's path or name, for the messages.

    Returns:
        The `HeldOut` images (uint8 as the dataset stores them).

    Raises:
        QuantizationError: no config (which images the model saw is unknown), a run that trained on every image
            (`val_split=0`: names `--val-split`), or a run trained on another dataset.
    """
    if config is None:
        raise QuantizationError(f"--max-drop chooses on images the model never trained on, but no config.json "
                                f"beside {where} says which those are; pass a run directory trained with "
                                "--val-split N, or held-out images (run_pipeline(validation=(x, y)))")
    if dataset_name is not None and config.dataset not in (dataset_name, "arrays"):
        raise QuantizationError(f"{where} was trained on {config.dataset}, not {dataset_name}; its held-out images "
                                f"are {config.dataset}'s: pass --dataset {config.dataset}")
    splits = run_splits(dataset, val_split=config.val_split, limit=config.limit)
    x, y = splits.validation
    if len(y) == 0:
        recipe = f" (recipe {config.recipe})" if config.recipe else ""
        raise QuantizationError(f"--max-drop chooses on held-out images, but {where} trained on every training "
                                f"image (config.json val_split=0{recipe}); retrain with --val-split 5000, or pass "
                                "held-out images")
    start = len(splits.train[1])
    source = (f"the {len(y):,} training images {config.dataset} held out for validation "
              f"(config.json val_split={config.val_split}{f', limit={config.limit}' if config.limit else ''})")
    return HeldOut(np.asarray(x), np.asarray(y).reshape(-1), source, start)
