"""Training: TrainConfig and recipes, LR schedules, crash-safe resumable runs, ensembles, transfer.

`TrainConfig` and `RECIPES` load without TensorFlow; `fit`, `fit_ensemble`, `build_ensemble` and `transfer` import
Keras/TensorFlow on first use. Scoring a trained model is `kdeep.scoring.score`.
"""
from kdeep.lazy import lazy_getattr
from kdeep.train.config import RECIPES, TrainConfig

_LAZY = {
    "fit": "kdeep.train.trainer", "Run": "kdeep.train.trainer",
    "fit_ensemble": "kdeep.train.ensemble", "build_ensemble": "kdeep.train.ensemble",
    "transfer": "kdeep.train.finetune",
}
__all__ = ["RECIPES", "TrainConfig", *_LAZY]

__getattr__ = lazy_getattr(globals(), _LAZY)
