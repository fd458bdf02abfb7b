"""Each learning-rate schedule follows the formula documented in kdeep.train.schedules and docs/training.md."""
import math

import keras
import numpy as np
import pytest

from kdeep.train import TrainConfig
from kdeep.train.schedules import callbacks, learning_rate

E, EPOCHS, LR, GAMMA = 10, 6, 0.01, 0.5  # steps per epoch, epochs, peak lr, decay rate
T = E * EPOCHS


def _cosine(t, steps, lr, min_lr):
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * min(t, steps) / steps)) / 2


FORMULAS = {
    "constant": lambda t: LR,
    "step": lambda t: LR * GAMMA ** (t // (2 * E)),
    "exponential": lambda t: LR * GAMMA ** (t / E),
    "cosine": lambda t: _cosine(t, T, LR, 1e-4),
    "warmup_cosine": lambda t: LR * t / 15 if t < 15 else _cosine(t - 15, T - 15, LR, 1e-4),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_schedule_matches_documented_formula(name):
    config = TrainConfig(schedule=name, lr=LR, epochs=EPOCHS, decay_rate=GAMMA, step_epochs=2, warmup_epochs=1.5,
                         min_lr=1e-4)
    schedule = learning_rate(config, E)
    steps = range(T + 5)
    got = [float(schedule(t)) if callable(schedule) else schedule for t in steps]
    np.testing.assert_allclose(got, [FORMULAS[name](t) for t in steps], rtol=1e-5, atol=1e-9)


def test_plateau_multiplies_by_gamma_after_patience_epochs_without_improvement():
    config = TrainConfig(schedule="plateau", lr=LR, decay_rate=GAMMA, patience=2, min_lr=LR * GAMMA ** 2)
    assert learning_rate(config, E) == LR
    (plateau,) = callbacks(config, has_validation=True)
    assert plateau.monitor == "val_loss" and callbacks(config, has_validation=False)[0].monitor == "loss"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(LR), loss="mse")
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.93, 0.91, 0.92, 0.96, 0.99, 0.99]):
        plateau.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(model.optimizer.learning_rate))
    # best 0.9 at epoch 2; epochs 3, 4 do not improve -> decay; cooldown 0, wait restarts; floor min_lr
    np.testing.assert_allclose(rates, [LR, LR, LR, LR * GAMMA, LR * GAMMA, LR * GAMMA ** 2, LR * GAMMA ** 2,
                                       LR * GAMMA ** 2, LR * GAMMA ** 2], rtol=1e-6)


PLATEAU_LOSSES = [1.0, 0.9, 0.95, 0.93, 0.91, 0.92, 0.96, 0.99, 0.99]


def _plateau_rates(losses, history=(), start_lr=LR):
    """Runs the plateau callback over `losses` (after replaying `history`); returns the LR after each epoch."""
    config = TrainConfig(schedule="plateau", lr=LR, decay_rate=GAMMA, patience=2, min_lr=LR * GAMMA ** 3)
    (plateau,) = callbacks(config, has_validation=True, history=history)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(start_lr), loss="mse")
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch, loss in enumerate(losses, start=len(history)):
        plateau.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(model.optimizer.learning_rate))
    return rates


@pytest.mark.parametrize("cut", range(1, len(PLATEAU_LOSSES)))
def test_plateau_resumed_after_any_epoch_matches_the_uninterrupted_run(cut):
    full = _plateau_rates(PLATEAU_LOSSES)
    # history.csv rows hold the LR each epoch trained with (before the plateau reduced it for the next epoch)
    used = [LR, *full[:-1]]
    history = [{"epoch": e + 1, "val_loss": loss, "lr": used[e]} for e, loss in enumerate(PLATEAU_LOSSES[:cut])]
    resumed = _plateau_rates(PLATEAU_LOSSES[cut:], history, start_lr=full[cut - 1])  # LR restored from last.keras
    np.testing.assert_allclose(resumed, full[cut:], rtol=1e-6)
