"""Ensembles: K members trained with different seeds, averaged by one Keras model saved as ensemble.keras."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras

from kdeep import io, scoring
from kdeep.contract import Contract, attach, contract_of
from kdeep.errors import ConfigError
from kdeep.train import run_dir as rd
from kdeep.train.config import TrainConfig
from kdeep.train.trainer import Run, fit, with_names


def build_ensemble(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of the members' softmax outputs (float32).

    Args:
        members: Keras models with the same input shape and number of classes.
        name: the ensemble model's name.

    Returns:
        A functional model: input -> member1..memberK -> Average.
    """
    if not members:
        raise ConfigError("an ensemble needs at least one member model")
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in members}
    if len(shapes) > 1:
        raise ConfigError(f"ensemble members disagree on input/output shapes {sorted(shapes)}: use one architecture")
    inputs = keras.Input(members[0].input_shape[1:], name="input")
    outputs = []
    for index, member in enumerate(members, start=1):
        member.name = f"member{index}"  # nested models need distinct names
        outputs.append(member(inputs))
    averaged = keras.layers.Average(name="average", dtype="float32")(outputs) if len(outputs) > 1 else outputs[0]
    first = contract_of(members[0])
    return attach(keras.Model(inputs, averaged, name=name),
                  Contract(input_range=first.input_range, output=first.output, family="ensemble",
                           labels=first.labels))


def fit_ensemble(model_name: str, dataset: Any, *, config: TrainConfig | None = None, members: int = 5,
                 verbose: int | str = "auto") -> Run:
    """Trains `members` runs with seeds seed, seed+1, ... into OUT/member1.., then OUT/ensemble.keras.

    Each member is an ordinary resumable run; rerunning the same command resumes the unfinished member.

    Args:
        model_name: a registered model name.
        dataset: a dataset name or ((x_train, y_train), (x_test, y_test)).
        config: the members' TrainConfig (`out` is the ensemble directory).
        members: K, the number of members.
        verbose: Keras fit verbosity.

    Returns:
        A Run whose model is the ensemble and whose metrics hold test_accuracy (the ensemble's) and
        members (each member's seed, directory and test accuracy).
    """
    if members < 1:
        raise ConfigError(f"--ensemble {members}: use a number of members >= 1")
    config = with_names(config or TrainConfig(), model_name, dataset)
    out = rd.check(rd.out_dir(config.out, "kdeep-ensemble-"), config)
    runs = []
    for index in range(1, members + 1):
        member_config = dataclasses.replace(config, seed=config.seed + index - 1, out=str(out / f"member{index}"))
        if verbose:
            print(f"kdeep: ensemble member {index}/{members} (seed {member_config.seed})")
        runs.append(fit(model_name, dataset, config=member_config, verbose=verbose))
    ensemble = build_ensemble([run.model for run in runs])
    rd.prepare(out, config)  # written once the members exist: a refused first member leaves nothing behind
    io.save_model(ensemble, out / rd.ENSEMBLE)
    test = scoring.score(ensemble, dataset)
    metrics = {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "params": int(ensemble.count_params()),
        "members": [{"seed": config.seed + index, "dir": str(run.dir), "test_accuracy": run.metrics["test_accuracy"],
                     "train_seconds": run.metrics["train_seconds"]} for index, run in enumerate(runs)],
        "epochs_completed": sum(run.metrics["epochs_completed"] for run in runs),
        "train_seconds": round(sum(run.metrics["train_seconds"] for run in runs), 3),
        "model": config.model,
        "dataset": config.dataset,
    }
    io.write_json(out / rd.METRICS, metrics)
    return Run(out, ensemble, metrics, [])
