"""Input pipeline vs training step: images/s the "digits" pipeline delivers vs images/s one DeepConvNet step consumes.

    KDEEP_DATA_DIR=../shared/datasets python benchmarks/bench_pipeline.py --out out/bench_pipeline.json

Goal (issue 2): the augmented pipeline delivers at least 3x what the training step consumes, so augmentation
never slows training down. Both are measured in this run, alternating, on real MNIST; the median of the
repeats is reported.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kdeep.io import write_atomic  # noqa: E402

GOAL = 3.0


def pipeline_rate(x: np.ndarray, y: np.ndarray, augment: str, batch_size: int, batches: int) -> float:
    """Images per second a repeating pipeline yields to a Python consumer, after one warm-up pass."""
    import kdeep.data

    iterator = iter(kdeep.data.pipeline(x, y, batch_size, augment=augment, seed=0, repeat=True,
                                        drop_remainder=True))
    for _ in range(20):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        images, _labels = next(iterator)
    _ = images.numpy()
    return batches * batch_size / (time.perf_counter() - start)


def step_rate(model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Images per second of the model's training step (Keras's train_function, as fit runs it) on one batch."""
    for _ in range(3):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200, help="pipeline batches timed per repeat")
    parser.add_argument("--steps", type=int, default=15, help="training steps timed per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="out/bench_pipeline.json", help="where to write the JSON results")
    args = parser.parse_args()

    import kdeep.data
    import kdeep.models

    (x, y), _ = kdeep.data.load("mnist")
    model = kdeep.models.build("deepconvnet", input_shape=x.shape[1:], num_classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    batch_x = x[: args.batch_size].astype("float32") / 255.0
    batch_y = y[: args.batch_size].astype("int32")

    rates = {"pipeline digits": [], "pipeline none": [], "deepconvnet train step": []}
    for _ in range(args.repeats):
        rates["pipeline digits"].append(pipeline_rate(x, y, "digits", args.batch_size, args.batches))
        rates["pipeline none"].append(pipeline_rate(x, y, None, args.batch_size, args.batches))
        rates["deepconvnet train step"].append(step_rate(model, batch_x, batch_y, args.steps))
    median = {name: statistics.median(values) for name, values in rates.items()}
    step = median["deepconvnet train step"]
    ratio = median["pipeline digits"] / step

    print(f"{'what':<24} {'images/s (median)':>18} {'x train step':>13}   repeats")
    for name, value in median.items():
        runs = ", ".join(f"{v:,.0f}" for v in rates[name])
        print(f"{name:<24} {value:>18,.0f} {value / step:>13.1f}   {runs}")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"goal: digits pipeline >= {GOAL:.0f}x the training step: {ratio:.1f}x, {verdict}")

    result = {
        "benchmark": "bench_pipeline", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "batch_size": args.batch_size,
        "images_per_second": median, "repeats": rates, "ratio_digits_pipeline_to_step": ratio, "goal": GOAL,
        "goal_met": ratio >= GOAL,
    }
    out = write_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
