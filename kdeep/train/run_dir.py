"""The run directory: fixed file names, atomic writes (temp file + os.replace), config checks and resume state.

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
import io
import json
import os
from pathlib import Path
from typing import Any

from kdeep.atomic import write_atomic
from kdeep.errors import ConfigError
from kdeep.train.config import TrainConfig

CONFIG, STATE, LAST, BEST, MODEL = "config.json", "state.json", "last.keras", "best.keras", "model.keras"
HISTORY, METRICS, LOGS, ENSEMBLE = "history.csv", "metrics.json", "logs", "ensemble.keras"


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Saves a Keras model to a `.keras` file atomically (Keras writes the temp file, then os.replace)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_history(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Writes the per-epoch rows as CSV (columns: epoch, then the union of the rows' other keys sorted, so a
    resumed run, whose earlier rows come back from state.json, keeps the same header), atomically."""
    keys = {key for row in rows for key in row}
    columns = ["epoch", *sorted(keys - {"epoch"})]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def read_history(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a history.csv (values as strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def prepare(run_dir: str | os.PathLike, config: TrainConfig) -> Path:
    """Creates the run directory, writes config.json, or checks it equals `config` when it exists.

    Raises:
        ConfigError: the directory holds a run with a different configuration (the differences are listed).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file: choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / CONFIG
    if config_path.exists():
        try:
            saved = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{config_path} is unreadable ({error}): remove it or use another --out") from None
        changed = saved.differences(config)
        if changed:
            raise ConfigError(f"{run_dir} holds a run with a different config ({'; '.join(changed)}): rerun with "
                              f"the same settings to resume, or choose another --out")
    else:
        write_atomic(config_path, config.dumps())
    return run_dir


def read_state(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The resume state (empty dict for a fresh run)."""
    path = Path(run_dir) / STATE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A `.keras` file, or the model of a run directory (model.keras, else ensemble.keras).

    Raises:
        ConfigError: no such file, or a directory without a model.
    """
    path = Path(path)
    if path.is_dir():
        for name in (MODEL, ENSEMBLE):
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"{path} has no {MODEL} or {ENSEMBLE}: is the run finished? (rerun its command to resume)")
    if not path.is_file():
        raise ConfigError(f"no model at {path}: give a kdeep run directory or a .keras file")
    if path.suffix != ".keras":
        raise ConfigError(f"{path} is not a .keras model file: give a kdeep run directory or a .keras file")
    return path


def load_model(path: str | os.PathLike, *, compile: bool = False) -> Any:
    """Loads the model of a run directory or a `.keras` file (see `resolve_model_path`)."""
    import keras

    return keras.saving.load_model(resolve_model_path(path), compile=compile)
