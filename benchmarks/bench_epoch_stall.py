"""Per-epoch stall before the first step: Keras `fit` on a finite kdeep pipeline vs a repeating one.

    python benchmarks/bench_epoch_stall.py --images 12000 --epochs 5 --out epoch_stall.json

Trains DeepConvNet (book settings: Adam 1e-3, batch 100) on the first --images MNIST training images twice,
in one process: "finite" passes `kdeep.data.pipeline(...)` to `fit` as it is (Keras then makes a new iterator
every epoch, the trainer's way before commit 72cf29a); "repeating" passes `pipeline(..., repeat=True)` with
`steps_per_epoch` (one iterator for the run, the trainer's way since). For each epoch it prints the seconds from
`on_epoch_begin` to the first `on_train_batch_begin` (the stall), the first step, and the rest per step.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import keras

import kdeep.data
from kdeep.io import write_atomic

from bench_train import book_model  # this folder is on sys.path when the script runs


class FirstStepClock(keras.callbacks.Callback):
    """Per epoch: seconds before the first step, the first step, and the mean of the others (synchronous)."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self._first = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self._after_first = time.perf_counter()
        self._steps = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.rows.append({"epoch": epoch + 1, "before_first_step_s": round(self._first - self._begin, 3),
                          "first_step_s": round(self._after_first - self._first, 3),
                          "other_steps_ms": round(1000 * (now - self._after_first) / max(1, self._steps - 1), 1),
                          "epoch_s": round(now - self._begin, 2)})


def run(x, y, epochs: int, repeat: bool) -> list[dict]:
    """Trains a fresh DeepConvNet with the finite or the repeating pipeline; returns the per-epoch rows."""
    model = book_model()
    data = kdeep.data.pipeline(x, y, 100, seed=0, repeat=repeat)
    clock = FirstStepClock()
    steps = math.ceil(len(x) / 100) if repeat else None
    model.fit(data, epochs=epochs, steps_per_epoch=steps, callbacks=[clock], verbose=0)
    return clock.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12000, help="MNIST training images per epoch")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    (x, y), _ = kdeep.data.load("mnist")
    x, y = x[:args.images], y[:args.images]
    result = {"benchmark": "per-epoch stall", "images": len(x), "epochs": args.epochs}
    print(f"{'pipeline':<10} {'epoch':>5} {'before 1st step s':>18} {'1st step s':>11} {'other steps ms':>15} "
          f"{'epoch s':>8}")
    for name, repeat in (("finite", False), ("repeating", True)):
        result[name] = run(x, y, args.epochs, repeat)
        for row in result[name]:
            print(f"{name:<10} {row['epoch']:>5} {row['before_first_step_s']:>18.2f} {row['first_step_s']:>11.2f} "
                  f"{row['other_steps_ms']:>15.1f} {row['epoch_s']:>8.1f}", flush=True)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.out:
        write_atomic(args.out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
