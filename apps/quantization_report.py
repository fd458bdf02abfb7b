"""Trains (or loads) DeepConvNet on MNIST, ResNet-20 on Fashion-MNIST and GoogLeNet on MNIST, quantizes each to every
variant, reports.

    python apps/quantization_report.py --out /work/runs/quantization_report            # full run
    python apps/quantization_report.py --epochs 1 --train-limit 5000 --limit 1000     # quick look
    python apps/quantization_report.py --jobs googlenet_mnist                          # one job

GoogLeNet at 28x28 (small-input stem) costs 1.2 GMACs per image, ~136x DeepConvNet, so its job trains on the
first 3,000 images and scores the first 500 test images unless --train-limit/--limit say otherwise.

Each job trains once with kdeep.train into the run directory OUT/<job>/train/ (reused when it holds a finished
run, resumed when it holds an unfinished one), then writes OUT/<job>/quantization/ (report.md/.json/.csv/.html,
accuracy_vs_bits.png and the .tflite files).
"""
import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    """One registered model trained on one dataset (built for the dataset's image shape), then quantized.

    train_limit/limit: the job's default training images / scored test images (None: all).
    """

    name: str
    model: str
    dataset: str
    epochs: int
    train_limit: int | None = None
    limit: int | None = None


JOBS = (
    Job("deepconvnet_mnist", "deepconvnet", "mnist", epochs=8),
    Job("resnet20_fashion_mnist", "resnet20", "fashion_mnist", epochs=10),
    Job("googlenet_mnist", "googlenet", "mnist", epochs=1, train_limit=3000, limit=500),
)


def train(job: Job, epochs: int, train_limit: int | None, run_dir: Path) -> Path:
    """Trains the job's model with kdeep.train (Adam lr 1e-3, batch 128, no validation split) into `run_dir`.

    Returns:
        The run directory (its model.keras is the trained model).
    """
    import kdeep.train

    config = kdeep.train.TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, val_split=0, limit=train_limit,
                                     out=str(run_dir))
    start = time.perf_counter()
    run = kdeep.train.fit(job.model, job.dataset, config=config, verbose=2)
    print(f"{job.name}: trained {epochs} epochs in {time.perf_counter() - start:.0f} s, "
          f"test accuracy {100 * run.metrics['test_accuracy']:.2f} %")
    return run.dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quantization_report", help="output folder (default %(default)s)")
    parser.add_argument("--jobs", default=",".join(j.name for j in JOBS), help="comma-separated job names")
    parser.add_argument("--epochs", type=int, help="training epochs for every job (default: the job's own)")
    parser.add_argument("--train-limit", type=int, help="train on the first N training images only")
    parser.add_argument("--qat-epochs", type=int, default=1, help="QAT fine-tuning epochs (default 1)")
    parser.add_argument("--limit", type=int, help="score the first N test images (QAT on the first N train images)")
    parser.add_argument("--variants", help="comma-separated variants (default: all)")
    args = parser.parse_args(argv)

    from quantization import run_pipeline

    chosen = args.jobs.split(",")
    unknown = sorted(set(chosen) - {job.name for job in JOBS})
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}: use {', '.join(job.name for job in JOBS)}")
    for job in JOBS:
        if job.name not in chosen:
            continue
        run_dir = Path(args.out) / job.name / "train"
        if not (run_dir / "metrics.json").is_file():
            train(job, args.epochs or job.epochs, args.train_limit or job.train_limit, run_dir)
        start = time.perf_counter()
        report_dir = run_pipeline(run_dir, job.dataset, run_dir.parent / "quantization", variants=args.variants,
                                  qat_epochs=args.qat_epochs, limit=args.limit or job.limit)
        print(f"{job.name}: quantized in {time.perf_counter() - start:.0f} s")
        print((report_dir / "report.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
