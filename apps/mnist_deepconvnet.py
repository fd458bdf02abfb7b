"""Reproduces the training results end to end: the book's DeepConvNet on MNIST and how far kdeep takes it.

    python apps/mnist_deepconvnet.py                          # everything (hours on a 2-core CPU)
    python apps/mnist_deepconvnet.py --epochs 1 --limit 2000  # a quick end-to-end try of every step
    python apps/mnist_deepconvnet.py --only book,transfer     # some of the experiments

Experiments (each a resumable run directory under --out; rerunning continues where it stopped):
  book       DeepConvNet, the book's settings (recipe "book"), goal >= 99.38%
  book_dropout  the same with the book's own dropout scaling (model deepconvnet_book), goal >= 99.38%
  book_ema   the book's settings with the final model a moving average of the weights (--ema 0.999), goal >= 99.38%
  fast       the fast recipe (goal: >= 99.38% within 120 s of training; see benchmarks/bench_train.py)
  augmented  "digits" augmentation + cosine LR decay (recipe "augmented"), goal >= 99.60%
  transfer   the book run's model fine-tuned on 1,000 Fashion-MNIST labels vs the same network from scratch
  ensemble   --members augmented DeepConvNets averaged, goal >= 99.70%
Prints a table (test accuracy on the full test sets, never used to pick a model) and writes OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import kdeep.train
from kdeep.io import write_atomic
from kdeep.train import TrainConfig
from kdeep.train.ensemble import fit_ensemble
from kdeep.train.finetune import transfer

EXPERIMENTS = ("book", "book_dropout", "book_ema", "fast", "augmented", "transfer", "ensemble")
GOALS = {"book": 0.9938, "book_dropout": 0.9938, "book_ema": 0.9938, "fast": 0.9938, "augmented": 0.9960,
         "ensemble": 0.9970}
BOOK_EMA = 0.999
# the single-run experiments: (model, recipe, TrainConfig overrides)
SINGLE_RUNS = {"book": ("deepconvnet", "book", {}), "book_dropout": ("deepconvnet_book", "book", {}),
               "book_ema": ("deepconvnet", "book", {"ema": BOOK_EMA}), "fast": ("deepconvnet", "fast", {}),
               "augmented": ("deepconvnet", "augmented", {})}
TRANSFER_LABELS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/mnist-deepconvnet", help="root of the run directories")
    parser.add_argument("--only", default=",".join(EXPERIMENTS), help=f"comma-separated subset of {EXPERIMENTS}")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs (fewer for a quick try)")
    parser.add_argument("--limit", type=int, help="train on the first N images only (quick tries)")
    parser.add_argument("--members", type=int, default=5, help="ensemble members")
    parser.add_argument("--transfer-epochs", type=int, default=10, help="epochs of each transfer phase; the "
                                                                        "scratch run gets both phases' total")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(EXPERIMENTS)
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(sorted(unknown))}: choose from {', '.join(EXPERIMENTS)}")
    out = Path(args.out)
    rows = []

    def recipe(name: str, **extra) -> TrainConfig:
        return TrainConfig.from_recipe(name, epochs=args.epochs, limit=args.limit, **extra)

    def record(name: str, metrics: dict, where: Path, started: float, note: str = "") -> None:
        rows.append(dict(experiment=name, test_accuracy=metrics["test_accuracy"], goal=GOALS.get(name),
                         epochs=metrics["epochs_completed"], train_seconds=metrics["train_seconds"],
                         wall_seconds=round(time.time() - started, 1), dir=str(where), note=note))

    for name, (model, recipe_name, overrides) in SINGLE_RUNS.items():
        if name in chosen:
            started = time.time()
            config = recipe(recipe_name, out=str(out / name), **overrides)
            run = kdeep.train.fit(model, "mnist", config=config, verbose=2)
            record(name, run.metrics, run.dir, started)
    if "transfer" in chosen:
        epochs = args.transfer_epochs
        labels = dict(limit=TRANSFER_LABELS, val_split=0, epochs=epochs)
        started = time.time()
        scratch = kdeep.train.fit("deepconvnet", "fashion_mnist", verbose=2, config=TrainConfig.from_recipe(
            "book", **dict(labels, epochs=2 * epochs), out=str(out / "fashion_scratch")))
        record("fashion scratch", scratch.metrics, scratch.dir, started, f"{TRANSFER_LABELS} labels")
        started = time.time()
        tuned = transfer(out / "book", 10, "fashion_mnist", head_epochs=epochs, verbose=2,
                         config=TrainConfig.from_recipe("book", **labels, out=str(out / "fashion_transfer")))
        head_only = 100 * tuned.metrics["head_test_accuracy"]
        record("fashion transfer", tuned.metrics, tuned.dir, started,
               f"{TRANSFER_LABELS} labels, from the book run; head only: {head_only:.2f}%")
    if "ensemble" in chosen:
        started = time.time()
        run = fit_ensemble("deepconvnet", "mnist", members=args.members, verbose=2,
                           config=recipe("augmented", out=str(out / "ensemble")))
        members = ", ".join(f"{100 * m['test_accuracy']:.2f}" for m in run.metrics["members"])
        record("ensemble", run.metrics, run.dir, started, f"{args.members} members: {members}")

    print(f"\n{'experiment':<17} {'test acc':>8} {'goal':>7} {'epochs':>6} {'train s':>8} {'wall s':>7}  notes")
    for row in rows:
        goal = f"{100 * row['goal']:.2f}" if row["goal"] else ""
        print(f"{row['experiment']:<17} {100 * row['test_accuracy']:>7.2f}% {goal:>7} {row['epochs']:>6} "
              f"{row['train_seconds']:>8.1f} {row['wall_seconds']:>7.1f}  {row['note']}")
    write_atomic(out / "results.json", json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
