"""`kdeep compare`: train several models with one recipe on one dataset, then the results table, plots and report."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kdeep compare`."""
    from kdeep.cli.train import DISTILL_FLAGS, _add_config_flags
    from kdeep.compare import BENCH_STEPS, DEFAULT_DATASET, DEFAULT_RECIPE, FASHION_MNIST_MODELS
    from kdeep.train.config import RECIPES

    parser = subparsers.add_parser(
        "compare", help="train models with one recipe, then results.csv, accuracy-vs-cost plots and a report",
        description="Trains each model into OUT/runs/<model> with the same recipe (same seed, augmentation, "
                    "schedule, epochs), measures Keras and LiteRT inference, and writes results.csv, "
                    "accuracy_vs_cost.png, training_curves.png, report.md and report.html. Rerunning the same "
                    "command continues an interrupted comparison. Training flags not given take the --recipe's "
                    "values; a model's width is written NAME@WIDTH in --models.")
    parser.add_argument("--models", default=",".join(FASHION_MNIST_MODELS),
                        help="comma-separated NAME or NAME@WIDTH (default: %(default)s)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name or image folder (default %(default)s)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, choices=tuple(RECIPES),
                        help="training recipe for every model (default %(default)s; flags override it)")
    parser.add_argument("--out", required=True, help="comparison directory (an existing one is continued)")
    parser.add_argument("--no-litert", action="store_true", help="skip the LiteRT float32/int8 conversions")
    parser.add_argument("--bench-steps", type=int, default=BENCH_STEPS,
                        help="timed batch-256 steps of the Keras inference benchmark (default %(default)s)")
    _add_config_flags(parser, leave_out=("width", "init", *DISTILL_FLAGS))  # a width per model: NAME@WIDTH
    parser.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    """Runs the comparison and prints report.md."""
    from pathlib import Path

    from kdeep.cli.train import _config
    from kdeep.compare import compare

    compare(args.models, args.dataset, args.out, config=_config(args), litert=not args.no_litert,
            bench_steps=args.bench_steps, verbose=2)
    out = Path(args.out)
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"kdeep compare: results {out / 'results.csv'}; report {out / 'report.html'}")
    return 0
