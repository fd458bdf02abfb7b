"""The run directory's lifecycle on the artifact layer (kdeep.io): fixed file names, config checks, resume state.

    RUN_DIR/config.json    the TrainConfig (a different config on an existing run is refused)
    RUN_DIR/state.json     epochs finished, history rows, training seconds, best epoch (resume bookkeeping)
    RUN_DIR/last.keras     model + optimizer after the last finished epoch (what a rerun resumes from)
    RUN_DIR/best.keras     best validation accuracy so far (with select="best")
    RUN_DIR/model.keras    the selected model: final epoch, or best.keras with select="best"
    RUN_DIR/history.csv    one row per finished epoch: loss, accuracy, val_*, lr, seconds
    RUN_DIR/logs/          TensorBoard event files
    RUN_DIR/metrics.json   test accuracy/loss, params, epochs_completed, train_seconds, images_per_second, ...
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

from kdeep import io
from kdeep.errors import ArtifactError, ConfigError
from kdeep.models import presets
from kdeep.train.config import TrainConfig

CONFIG, STATE, LAST, BEST, MODEL = "config.json", "state.json", "last.keras", "best.keras", io.MODEL
HISTORY, METRICS, LOGS, ENSEMBLE = "history.csv", "metrics.json", "logs", io.ENSEMBLE


def write_history(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Writes the per-epoch rows as CSV (columns: epoch, then the union of the rows' other keys sorted, so a
    resumed run, whose earlier rows come back from state.json, keeps the same header), atomically."""
    keys = {key for row in rows for key in row}
    io.write_csv(path, rows, ["epoch", *sorted(keys - {"epoch"})])


def read_history(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a history.csv (values as strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def out_dir(out: str | os.PathLike | None, prefix: str) -> Path:
    """The directory a run (or an ensemble, a transfer) writes: `out` when given, else a new temporary directory
    named `<prefix>XXXX` (TrainConfig.out None)."""
    return Path(out) if out else Path(tempfile.mkdtemp(prefix=prefix))


def check(run_dir: str | os.PathLike, config: TrainConfig) -> Path:
    """Checks that `run_dir` can hold a run of `config` without writing anything.

    Returns:
        The run directory's path.

    Raises:
        ArtifactError: the path is a file. ConfigError: the directory holds a run with a different configuration (the
            differences are listed) or an unreadable config.json.
    """
    run_dir = io.output_dir(run_dir, "run directory")
    config_path = run_dir / CONFIG
    if config_path.exists():
        fix = "remove it or use another --out"
        try:
            saved = TrainConfig.from_dict(io.read_json(config_path, fix))
        except (ValueError, TypeError, AttributeError, ConfigError) as error:
            raise ConfigError(f"{config_path} is not a kdeep config ({error}): {fix}") from None
        changed = saved.differences(config)
        if changed:
            raise ConfigError(f"{run_dir} holds a run with a different config ({'; '.join(changed)}): rerun with "
                              f"the same settings to resume, or choose another --out")
    return run_dir


def prepare(run_dir: str | os.PathLike, config: TrainConfig, *, write: bool = True) -> Path:
    """Checks the run directory (`check`), then, when `write` (the process that writes: the chief), creates it
    and writes config.json if it is new.

    Raises:
        ConfigError: see `check`.
    """
    run_dir = check(run_dir, config)
    if write and not (run_dir / CONFIG).exists():
        io.write_atomic(run_dir / CONFIG, config.dumps())
    return run_dir


def read_state(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The resume state (empty dict for a fresh run).

    Raises:
        ArtifactError: state.json is corrupt (one line naming it and the fix).
    """
    path = Path(run_dir) / STATE
    if not path.exists():
        return {}
    state = io.read_json(path, f"delete {path} and {Path(run_dir) / LAST} to restart the run")
    if not isinstance(state, dict):
        raise ArtifactError(f"{path} is not a kdeep run state: delete it and {Path(run_dir) / LAST} to restart the run")
    return state


def run_of(model_path: str | os.PathLike) -> Path | None:
    """The run directory a model path names (a folder holding config.json), else None (a model file)."""
    path = Path(model_path)
    return path if (path / CONFIG).is_file() else None


def dataset_of(model_path: str | os.PathLike, given: str | None, *, required: bool = False) -> str | None:
    """The dataset to use with a model: its run's (config.json) or its preset's (the card), checked against the one
    given, else the one given.

    Args:
        model_path: a run directory, a preset name, or a model file (its dataset is the one given).
        given: the dataset the user named (a name or a folder), or None.
        required: raise instead of returning None.

    Returns:
        The dataset (None when neither the run nor the user names one; a run trained on arrays names none).

    Raises:
        ConfigError: the run was trained on another dataset than `given`, its config.json is unreadable, or
            `required` and no dataset is known.
        ArtifactError: `required`, no dataset known, and no model at `model_path`.
    """
    preset = presets.named(model_path)
    run = None if preset else run_of(model_path)
    if run is None and preset is None and given is None and required:
        io.resolve_model(model_path)  # a missing or broken model is named first
        raise ConfigError(f"{model_path} is not a run directory that names its dataset: give --dataset NAME or FOLDER")
    if run is None and preset is None:
        return given
    if preset is not None:
        trained, other = preset.dataset, "build it with kdeep.models.build(..., weights=...) in Python"
    else:
        trained = io.read_json(run / CONFIG, f"repair {run / CONFIG} or give the model file").get("dataset")
        trained, other = (None if trained in (None, "arrays") else trained), f"give {run / MODEL}"
    if given is None or trained is None:
        return trained or given
    if given != trained and Path(given).expanduser().resolve() != Path(trained).expanduser().resolve():
        raise ConfigError(f"{model_path} was trained on {trained!r}, not {given!r}: drop --dataset (the model's "
                          f"dataset is used), or {other} to use it with another dataset of the same image shape")
    return trained
