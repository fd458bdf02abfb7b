"""Training: TrainConfig and recipes, LR schedules, crash-safe resumable runs, evaluation, ensembles, transfer.

`TrainConfig`, `RECIPES` and `evaluate` load without TensorFlow (evaluate imports it when called); `fit`,
`fit_ensemble`, `build_ensemble` and `transfer` import Keras/TensorFlow on first use.
"""
import importlib
from typing import Any

from kdeep.train.config import RECIPES, TrainConfig
from kdeep.train.evaluate import evaluate  # binds the function over the submodule of the same name

_LAZY = {
    "fit": "kdeep.train.trainer", "Run": "kdeep.train.trainer",
    "fit_ensemble": "kdeep.train.ensemble", "build_ensemble": "kdeep.train.ensemble",
    "transfer": "kdeep.train.finetune",
}
__all__ = ["RECIPES", "TrainConfig", "evaluate", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kdeep.train' has no attribute {name!r}")
