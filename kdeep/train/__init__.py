"""Training: TrainConfig and recipes, LR schedules, crash-safe resumable runs, evaluation, ensembles, transfer.

`TrainConfig`, `RECIPES` and `evaluate` load without TensorFlow (evaluate imports it when called); `fit`,
`fit_ensemble`, `build_ensemble` and `transfer` import Keras/TensorFlow on first use.
"""
from kdeep.lazy import lazy_getattr
from kdeep.train.config import RECIPES, TrainConfig
from kdeep.train.evaluate import evaluate  # binds the function over the submodule of the same name

_LAZY = {
    "fit": "kdeep.train.trainer", "Run": "kdeep.train.trainer",
    "fit_ensemble": "kdeep.train.ensemble", "build_ensemble": "kdeep.train.ensemble",
    "transfer": "kdeep.train.finetune",
}
__all__ = ["RECIPES", "TrainConfig", "evaluate", *_LAZY]

__getattr__ = lazy_getattr(globals(), _LAZY)
