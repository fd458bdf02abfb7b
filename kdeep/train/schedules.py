"""Learning-rate schedules by name, built from Keras's own schedule classes (so saved models need no kdeep code).

With t the optimizer step (0-based), E steps per epoch, T = epochs * E total steps, lr the peak rate,
gamma = decay_rate:

    constant        lr
    step            lr * gamma ** floor(t / (step_epochs * E))
    exponential     lr * gamma ** (t / E)                                   (gamma per epoch, smooth)
    cosine          min_lr + (lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2
    warmup_cosine   lr * t / W for t < W = round(warmup_epochs * E), then cosine as above over T - W steps
    plateau         lr, times gamma whenever the monitored loss (validation, else training) has not improved
                    for `patience` epochs, never below min_lr (keras.callbacks.ReduceLROnPlateau); a resumed
                    run replays its finished epochs first, so patience and best loss carry over the restart
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import keras

from kdeep.train.config import TrainConfig


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's learning rate for `config.schedule` (a float for "constant" and "plateau").

    Args:
        config: the training configuration (lr, schedule, decay_rate, step_epochs, warmup_epochs, min_lr).
        steps_per_epoch: optimizer steps in one epoch.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    schedules = keras.optimizers.schedules
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule in ("constant", "plateau"):
        return config.lr
    if config.schedule == "step":
        return schedules.ExponentialDecay(config.lr, config.step_epochs * steps_per_epoch, config.decay_rate,
                                          staircase=True)
    if config.schedule == "exponential":
        return schedules.ExponentialDecay(config.lr, steps_per_epoch, config.decay_rate)
    alpha = config.min_lr / config.lr
    if config.schedule == "cosine":
        return schedules.CosineDecay(config.lr, total, alpha=alpha)
    warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch))  # warmup_cosine
    return schedules.CosineDecay(0.0, total - warmup, alpha=alpha, warmup_target=config.lr, warmup_steps=warmup)


def callbacks(config: TrainConfig, has_validation: bool, history: Sequence[dict[str, Any]] = ()) \
        -> list[keras.callbacks.Callback]:
    """The epoch-level LR callbacks of `config.schedule` (ReduceLROnPlateau for "plateau", else none).

    Args:
        config: the training configuration.
        has_validation: whether the run has a validation split (the plateau then watches val_loss).
        history: the finished epochs' rows (history.csv) of a resumed run, replayed before training continues.

    Returns:
        The callbacks, in order.
    """
    if config.schedule != "plateau":
        return []
    monitor = "val_loss" if has_validation else "loss"
    return [ResumablePlateau(history, monitor=monitor, factor=config.decay_rate, patience=config.patience,
                             min_lr=config.min_lr, verbose=1)]


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that first replays a resumed run's finished epochs through Keras's own logic, so its
    wait count, cooldown and best value continue where the interrupted run stopped. The learning rate itself
    comes back with the optimizer state in last.keras; the replay only moves a stand-in optimizer's rate."""

    def __init__(self, history: Sequence[dict[str, Any]] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.replayed = [dict(row) for row in history]

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        model, verbose = self._model, self.verbose
        self.verbose = 0
        try:
            for row in self.replayed:
                self._model = SimpleNamespace(optimizer=SimpleNamespace(learning_rate=row["lr"]))
                super().on_epoch_end(row["epoch"] - 1, {self.monitor: row[self.monitor]})
        finally:
            self._model, self.verbose = model, verbose
