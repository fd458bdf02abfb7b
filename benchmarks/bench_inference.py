"""Keras inference throughput per model, as timm's benchmark.py measures it: warm-up steps, then timed steps.

    python benchmarks/bench_inference.py                                   # the compared families, full width
    python benchmarks/bench_inference.py --models resnet20,vgg11_bn@0.25 --batch-size 256 --steps 10

Each model is built (untrained: speed does not depend on the weights' values) for --input-shape (default
28x28x1, Fashion-MNIST) and 10 classes, then `kdeep.compare.inference_throughput` runs --warmup untimed and
--steps timed `predict_on_batch` calls on one random batch. The table gives samples/s, the median ms/step and
each model's time per image relative to the first model (the baseline, measured in the same run). The JSON goes
to OUT_DIR/bench_inference-<ISA>-<N>t.json: the CPU's widest SIMD level and TensorFlow's intra-op threads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path

import keras
import tensorflow as tf

from kdeep import analysis, models
from kdeep.io import write_atomic
from kdeep.compare import FASHION_MNIST_MODELS, inference_throughput, parse_entries
from kdeep.report import describe_machine

FULL_WIDTH = ",".join(dict.fromkeys(spec.split("@")[0] for spec in FASHION_MNIST_MODELS))


def isa(machine: str) -> str:
    """The widest SIMD level named in the machine line ("avx512_vnni", "avx512f", "avx2"), else the architecture."""
    found = re.search(r"avx512_vnni|avx512f|avx2", machine)
    return found.group(0) if found else platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=FULL_WIDTH, help="NAME or NAME@WIDTH, comma-separated (default %(default)s)")
    parser.add_argument("--input-shape", default="28,28,1", help="H,W,C (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: all cores)")
    parser.add_argument("--out-dir", default=".", help="where the JSON goes")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    threads = args.threads or os.cpu_count()
    shape = tuple(int(v) for v in args.input_shape.split(","))
    machine = describe_machine()
    rows = []
    for entry in parse_entries(args.models):
        model = models.build(entry.name, input_shape=shape, num_classes=10, width=entry.width)
        summary = analysis.summarize(model)
        speed = inference_throughput(model, args.batch_size, args.steps, args.warmup)
        rows.append({"model": entry.label, "params": summary.trainable_params, "macs": summary.macs,
                     **speed.to_dict()})
        print(f"{entry.label}: {speed.samples_per_sec:.0f} samples/s, {speed.ms_per_step:.1f} ms/step", flush=True)
        keras.backend.clear_session()
    base = rows[0]["samples_per_sec"]
    table = [(r["model"], f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f}", f"{r['samples_per_sec']:,.0f}",
              f"{r['ms_per_step']:,.1f}", f"{base / r['samples_per_sec']:.2f}") for r in rows]
    header = ("model", "params", "MMACs", "samples/s", "ms/step", f"time/img x {rows[0]['model']}")
    print(f"\n{machine}; {threads} threads; batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps, "
          f"input {'x'.join(map(str, shape))}\n")
    print(analysis.text_table(header, table, right=(1, 2, 3, 4, 5)))
    out = Path(args.out_dir) / f"bench_inference-{isa(machine)}-{threads}t.json"
    write_atomic(out, json.dumps({"machine": machine, "threads": threads, "batch_size": args.batch_size,
                                  "input_shape": shape, "tensorflow": tf.__version__, "rows": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
