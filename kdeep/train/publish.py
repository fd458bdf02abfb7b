"""Publishing a finished training run as a pretrained preset: its weights and model card inside kdeep."""
from __future__ import annotations

import hashlib
import io as bytes_io
from pathlib import Path

import numpy as np

from kdeep import io
from kdeep.errors import ConfigError
from kdeep.models import presets
from kdeep.report import describe_machine, timestamp
from kdeep.train import run_dir as rd
from kdeep.train.config import TrainConfig

STORAGES = ("float16", "float32")


def publish(run: str | Path, name: str | None = None, *, storage: str = "float16",
            folder: str | Path = presets.FOLDER) -> presets.Preset:
    """Stores a finished run's model as the preset `name`, scoring the stored weights on the test set.

    Writes `<folder>/<name>.npz` (the weights, cast to `storage`) and then `<folder>/<name>.json` (the card), each
    atomically; the card's test accuracy is that of a model rebuilt from the registry with the stored weights,
    which is what `kdeep.models.presets.load` gives.

    Args:
        run: a finished kdeep run directory of a registered model (config.json, metrics.json, model.keras).
        name: the preset name, `<model>.<tag>`; default `<model>.<dataset>`.
        storage: "float16" (half the size) or "float32".
        folder: where presets live (the package's own folder by default).

    Returns:
        The preset's card.

    Raises:
        ConfigError: the run is unfinished, of a model kdeep did not build, or the name or storage is wrong.
    """
    import keras

    import kdeep.data
    import kdeep.models
    from kdeep.scoring import score

    run = Path(run)
    config = TrainConfig.from_dict(io.read_json(run / rd.CONFIG, "give a finished kdeep run directory"))
    metrics = io.read_json(run / rd.METRICS, "finish the run first (rerun its command)")
    name = name or f"{config.model}.{config.dataset}"
    _check(config, name, storage)
    commands, seconds, epochs = lineage(run, config, metrics)
    model = io.load_model(run / io.MODEL)
    spec = kdeep.data.get_spec(config.dataset)
    rebuilt = kdeep.models.build(config.model, input_shape=tuple(model.inputs[0].shape[1:]),
                                 num_classes=spec.num_classes, width=config.width)
    arrays = presets.weight_arrays(model, storage)
    presets.assign(rebuilt, arrays)  # refuses a model the registry does not rebuild with the same weights
    accuracy = round(score(rebuilt, config.dataset).accuracy, 6)  # before any file is written
    buffer = bytes_io.BytesIO()
    np.savez(buffer, **arrays)
    stored = buffer.getvalue()
    io.write_atomic(Path(folder) / f"{name}.npz", stored)
    card = presets.Preset(
        name=name, model=config.model, width=config.width, dataset=config.dataset,
        input_shape=tuple(int(d) for d in model.inputs[0].shape[1:]), labels=tuple(spec.class_names),
        test_accuracy=accuracy,
        run_test_accuracy=round(metrics["test_accuracy"], 6), storage=storage,
        sha256=hashlib.sha256(stored).hexdigest(), params=int(rebuilt.count_params()),
        train_command=" && ".join(commands),
        publish_command=f"kdeep presets publish {run} --name {name} --storage {storage}",
        config=config.to_dict(), seed=config.seed, epochs=epochs, train_seconds=seconds,
        date=timestamp(), machine=describe_machine(), data_license=spec.source,
        versions={**metrics.get("versions", {}), "keras_at_publish": keras.__version__})
    io.write_json(Path(folder) / f"{name}.json", card.to_dict())
    return card


def lineage(run: Path, config: TrainConfig, metrics: dict) -> tuple[list[str], float, int]:
    """The training commands that made `run` from scratch, oldest first, with the chain's seconds and epochs.

    A run warm-started from another run directory (`--init RUN`) continues that run's training: its commands come
    first. A preset or a `.keras` file as `init` ends the chain (a preset's card holds its own commands). A
    distilled run's teachers are named in its command as given (`--teacher`), and must exist as given.

    Raises:
        ConfigError: an `init` or a teacher that is neither a preset nor found from here (a relative path from
            elsewhere).
    """
    commands, seconds, epochs = [config.command()], float(metrics["train_seconds"]), int(metrics["epochs_completed"])
    seen, init = {run.resolve()}, config.init
    while init and (source := rd.run_of(init)) is not None and source.resolve() not in seen:
        seen.add(source.resolve())
        earlier = TrainConfig.from_dict(io.read_json(source / rd.CONFIG, "give the --init run's directory"))
        done = io.read_json(source / rd.METRICS, f"finish the --init run {source} first (rerun its command)")
        commands.insert(0, earlier.command())
        seconds += float(done["train_seconds"])
        epochs += int(done["epochs_completed"])
        init = earlier.init
    if init and not _found(init):
        raise ConfigError(f"{run} was warm-started from --init {init!r}, which is not found from here: publish from "
                          f"the directory the run was trained in, so that its card can record the whole chain")
    missing = [source for source in config.teachers if not _found(source)]
    if missing:
        raise ConfigError(f"{run} was distilled from --teacher {missing[0]!r}, which is not found from here: "
                          f"publish from the directory the run was trained in, so that its card names a teacher "
                          f"that exists")
    return commands, seconds, epochs


def _found(source: str) -> bool:
    """A preset name, or a path that exists from here (what a card's command can name)."""
    return presets.named(source) is not None or Path(source).exists()


def _check(config: TrainConfig, name: str, storage: str) -> None:
    """Refuses names, models and storages a preset cannot have, in one line."""
    import kdeep.models

    if storage not in STORAGES:
        raise ConfigError(f"storage {storage!r} is unknown: use one of {', '.join(STORAGES)}")
    if config.model not in kdeep.models.list_models():
        raise ConfigError(f"the run trained {config.model!r}, which is not a registered model: presets are rebuilt "
                          f"from the registry")
    if not name.startswith(f"{config.model}.") or not presets.is_preset_name(name) or name.count(".") != 1:
        raise ConfigError(f"preset name {name!r} must be '{config.model}.<tag>' (one dot, e.g. "
                          f"'{config.model}.{config.dataset}')")
