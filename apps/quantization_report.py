"""Trains (or reuses) DeepConvNet on MNIST, ResNet-20 on Fashion-MNIST and VGG-11-BN (width 0.25) on MNIST, quantizes
each to every LiteRT variant, sweeps simulated bit widths, measures per-layer sensitivity, picks a mixed-precision
file under an accuracy budget, and writes one report per model.

    python apps/quantization_report.py --out /work/runs/quantization_report                 # full run
    python apps/quantization_report.py --run resnet20_fashion_mnist=/work/runs/r20fm         # reuse a run dir
    python apps/quantization_report.py --epochs 1 --train-limit 5000 --limit 1000           # quick look
    python apps/quantization_report.py --jobs deepconvnet_mnist --max-drop 0.5              # one job

Each job trains once with kdeep.train under its recipe (`TrainConfig.from_recipe`) into OUT/<job>/train/, or the
run directory given with --run (reused when it holds a finished run, resumed when it holds an unfinished one with
the same config), then writes OUT/<job>/quantization/ (report.md/.json/.csv/.html, accuracy_vs_bits.png, sweep.png,
sensitivity.png, pareto.png and the .tflite files). Every recipe here holds out the last 5,000 training images:
the mixed-precision search runs on them, the test set only scores.
"""
import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Job:
    """One registered model trained on one dataset under a recipe, then quantized.

    recipe/overrides: `TrainConfig.from_recipe(recipe, **overrides)`. build: options for `kdeep.models.build`
    (the model is then built here, for the dataset's image shape, and handed to `kdeep.train.fit`).
    limit: the job's default scored test images (None: all).
    """

    name: str
    model: str
    dataset: str
    recipe: str
    overrides: dict[str, Any] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None


JOBS = (
    Job("deepconvnet_mnist", "deepconvnet", "mnist", "fast", overrides={"val_split": 5000}),
    Job("resnet20_fashion_mnist", "resnet20", "fashion_mnist", "sgd_cosine"),  # the recipe holds out 5,000
    Job("vgg11_bn_mnist", "vgg11_bn", "mnist", "fast", overrides={"val_split": 5000}, build={"width": 0.25}),
)


def train(job: Job, run_dir: Path, epochs: int | None, train_limit: int | None) -> Path:
    """Trains the job's model with kdeep.train into `run_dir` (resuming an unfinished run there).

    Returns:
        The run directory (its model.keras is the trained model).
    """
    import kdeep.data
    import kdeep.models
    import kdeep.train

    config = kdeep.train.TrainConfig.from_recipe(job.recipe, **job.overrides, epochs=epochs, limit=train_limit,
                                                 out=str(run_dir))
    model: Any = job.model
    if job.build:
        (x_train, _), _ = kdeep.data.load_splits(job.dataset)
        model = kdeep.models.build(job.model, input_shape=x_train.shape[1:],
                                   num_classes=kdeep.data.num_classes(job.dataset), **job.build)
    start = time.perf_counter()
    run = kdeep.train.fit(model, job.dataset, config=config, verbose=2)
    print(f"{job.name}: trained {config.epochs} epochs in {time.perf_counter() - start:.0f} s, "
          f"test accuracy {100 * run.metrics['test_accuracy']:.2f} %")
    return run.dir


def _runs(values: list[str], parser: argparse.ArgumentParser) -> dict[str, Path]:
    """--run JOB=DIR pairs as {job: run directory}."""
    runs = {}
    for value in values:
        job, _, folder = value.partition("=")
        if not folder:
            parser.error(f"--run {value}: use JOB=RUN_DIR, e.g. resnet20_fashion_mnist=/work/runs/r20fm")
        runs[job] = Path(folder)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quantization_report", help="output folder (default %(default)s)")
    parser.add_argument("--jobs", default=",".join(j.name for j in JOBS), help="comma-separated job names")
    parser.add_argument("--run", action="append", default=[], metavar="JOB=RUN_DIR",
                        help="train (or reuse) this job in RUN_DIR instead of OUT/JOB/train (repeatable)")
    parser.add_argument("--epochs", type=int, help="training epochs for every job (default: the recipe's)")
    parser.add_argument("--train-limit", type=int, help="train on the first N training images only")
    parser.add_argument("--qat-epochs", type=int, default=1, help="QAT fine-tuning epochs (default 1)")
    parser.add_argument("--limit", type=int, help="score the first N test images (QAT on the first N train images)")
    parser.add_argument("--variants", help="comma-separated variants (default: all)")
    parser.add_argument("--max-drop", type=float, default=0.3,
                        help="mixed-precision budget, validation accuracy points (default %(default)s)")
    parser.add_argument("--sweep-limit", type=int, default=2000,
                        help="test images the simulated sweep scores (default %(default)s; 0 = all)")
    args = parser.parse_args(argv)

    from kdeep.errors import KdeepError
    from quantization import run_pipeline
    from quantization.search import check_budget

    chosen = args.jobs.split(",")
    runs = _runs(args.run, parser)
    unknown = sorted((set(chosen) | set(runs)) - {job.name for job in JOBS})
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}: use {', '.join(job.name for job in JOBS)}")
    try:
        check_budget(args.max_drop)
    except KdeepError as error:
        parser.error(str(error))
    for job in JOBS:
        if job.name not in chosen:
            continue
        run_dir = runs.get(job.name, Path(args.out) / job.name / "train")
        if not (run_dir / "metrics.json").is_file():
            train(job, run_dir, args.epochs, args.train_limit)
        start = time.perf_counter()
        report_dir = run_pipeline(run_dir, job.dataset, Path(args.out) / job.name / "quantization",
                                  variants=args.variants, qat_epochs=args.qat_epochs, limit=args.limit or job.limit,
                                  sweep_bits=True, sweep_limit=args.sweep_limit or None,
                                  max_drop=args.max_drop).report_dir
        print(f"{job.name}: quantized, swept and searched in {time.perf_counter() - start:.0f} s")
        print((report_dir / "report.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
