"""Throughput of DeepConvNet/MNIST training: one device vs MirroredStrategy on 2 logical CPUs vs 2-worker MWMS.

Every run trains the same DeepConvNet on the same MNIST slice with the same global batch; the first epoch
(tracing, warm-up) is not timed. Two rates: images per wall-clock second, and images per CPU-second (the
CPU time of all the job's processes), which stays meaningful when other jobs share the machine.
Rows: Keras fit on one device (the baseline), Keras fit under MirroredStrategy over 2 logical CPU devices,
kdeep's loop (kdeep.distribute.fit) under the same MirroredStrategy, and kdeep's loop on 2 local worker
processes under MultiWorkerMirroredStrategy.

    python benchmarks/bench_distribute.py [--images 6000] [--batch-size 100] [--epochs 3] [--out bench.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time

from kdeep.io import write_atomic

RESULT = "RESULT "  # prefix of the JSON line a child process prints


def train(strategy_name: str, trainer: str, args: argparse.Namespace) -> dict:
    """Trains DeepConvNet under a strategy and returns images/s over the epochs after the first."""
    from kdeep.distribute import fit, is_chief, strategy_from_name

    strategy = strategy_from_name(strategy_name)
    import keras

    import kdeep.data
    import kdeep.models

    (x, y), _ = kdeep.data.load("mnist")
    keras.utils.set_random_seed(0)
    dataset = kdeep.data.pipeline(x[:args.images], y[:args.images], args.batch_size, seed=0, drop_remainder=True)
    with strategy.scope():
        model = kdeep.models.build("deepconvnet")
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    stamps = []  # (wall, CPU time of this process) at each epoch end
    timer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: stamps.append((time.perf_counter(), time.process_time())))
    run = model.fit if trainer == "keras fit" else lambda data, **kw: fit(model, data, **kw)
    history = run(dataset, epochs=args.epochs, callbacks=[timer], verbose=0)
    images = (args.images // args.batch_size) * args.batch_size * (args.epochs - 1)
    return {"strategy": strategy_name, "trainer": trainer, "replicas": strategy.num_replicas_in_sync,
            "images": images, "seconds": stamps[-1][0] - stamps[0][0], "cpu_seconds": stamps[-1][1] - stamps[0][1],
            "final_loss": history.history["loss"][-1], "chief": is_chief(strategy)}


def local_child(args: argparse.Namespace) -> None:
    """Runs the single-process rows in one process with 2 logical CPU devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    for strategy_name, trainer in (("one", "keras fit"), ("mirrored", "keras fit"), ("mirrored", "kdeep loop")):
        print(RESULT + json.dumps(train(strategy_name, trainer, args)), flush=True)


def worker_child(args: argparse.Namespace) -> None:
    """One of the 2 MultiWorkerMirroredStrategy workers; each prints its row (merged by `main`)."""
    print(RESULT + json.dumps(train("multi-worker", "kdeep loop", args)), flush=True)


def results(text: str) -> list[dict]:
    """The JSON rows printed by children (with or without a `[worker i]` prefix)."""
    return [json.loads(line.split(RESULT, 1)[1]) for line in text.splitlines() if RESULT in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000, help="MNIST training images per epoch")
    parser.add_argument("--batch-size", type=int, default=100, help="global batch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is not timed")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--child", choices=("local", "worker"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (local_child if args.child == "local" else worker_child)(args)
        return
    from kdeep.distribute import launch

    flags = ["--images", str(args.images), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]
    start = time.perf_counter()
    local = subprocess.run([sys.executable, __file__, *flags, "--child", "local"], check=True,
                           capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    workers = io.StringIO()
    if launch(2, [sys.executable, __file__, *flags, "--child", "worker"], output=workers):
        sys.exit(f"multi-worker run failed:\n{workers.getvalue()}")
    chief, *others = sorted(results(workers.getvalue()), key=lambda row: not row["chief"])
    chief["cpu_seconds"] += sum(row["cpu_seconds"] for row in others)  # the job's CPU time: all its processes
    rows = results(local.stdout) + [chief]
    for row in rows:
        row["images_per_second"] = row["images"] / row["seconds"]
        row["images_per_cpu_second"] = row["images"] / row["cpu_seconds"]
    baseline, cpu_baseline = rows[0]["images_per_second"], rows[0]["images_per_cpu_second"]
    wall, load = time.perf_counter() - start, os.getloadavg()[0]
    print(f"DeepConvNet/MNIST, {args.images} images, global batch {args.batch_size}, "
          f"{args.epochs - 1} timed epoch(s); wall {wall:.0f} s; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'strategy':<14}{'trainer':<12}{'replicas':>9}{'images/s':>10}{'vs one':>8}"
          f"{'images/CPU-s':>14}{'vs one':>8}{'loss':>8}")
    for row in rows:
        row["ratio_vs_one_device"] = row["images_per_second"] / baseline
        row["cpu_ratio_vs_one_device"] = row["images_per_cpu_second"] / cpu_baseline
        row["processes"] = 2 if row["strategy"] == "multi-worker" else 1
        print(f"{row['strategy']:<14}{row['trainer']:<12}{row['replicas']:>9}{row['images_per_second']:>10.0f}"
              f"{row['ratio_vs_one_device']:>7.2f}x{row['images_per_cpu_second']:>14.0f}"
              f"{row['cpu_ratio_vs_one_device']:>7.2f}x{row['final_loss']:>8.3f}")
    if args.out:
        write_atomic(args.out, json.dumps({"config": vars(args), "wall_seconds": wall, "load_average": load,
                                           "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
