"""Benchmark: LiteRT file size, batch-1 latency and full-test-set scoring time per variant, as ratios vs float32.

    python benchmarks/bench_quantization.py --model runs/quantization_report/deepconvnet_mnist/model.keras \
        --dataset mnist --out out/bench_quantization.json

Without --model it builds an untrained DeepConvNet (size and speed do not depend on the weights' values).
Every figure is measured in this run, float32 included, so the ratios compare like with like.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=".keras file or kdeep run directory (default: untrained DeepConvNet)")
    parser.add_argument("--dataset", default="mnist", help="test set to score (default %(default)s)")
    parser.add_argument("--variants", default="float32,float16,dynamic,int8,int16x8",
                        help="comma-separated variants; float32 is always measured (default %(default)s)")
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 invokes per thread count")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    import kdeep.data
    import kdeep.models
    from kdeep.data import scale_pixels
    from kdeep.io import load_model, write_atomic
    from kdeep.scoring import accuracy
    from quantization import VARIANTS, quantize
    from quantization.convert import calibration_images
    from quantization.litert import THREADS, latency, predict
    from quantization.variants import resolve

    names = ["float32"] + [v.name for v in resolve(args.variants) if v.name != "float32"]
    model = load_model(args.model) if args.model else kdeep.models.build("deepconvnet", input_shape=(28, 28, 1),
                                                                            num_classes=10)
    (x_train, y_train), (x_test, y_test) = kdeep.data.load_splits(args.dataset)
    representative = calibration_images(x_train)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = quantize(model, names, representative, folder, train_data=(scale_pixels(x_train[:2000]), y_train[:2000]))
        for name in names:
            if name not in files:
                print(f"{name}: not converted ({files.failed.get(name)})", file=sys.stderr)
                continue
            n = min(VARIANTS[name].eval_limit or len(x_test), len(x_test))
            start = time.perf_counter()
            outputs = predict(files[name], x_test[:n])
            scoring = time.perf_counter() - start
            speeds = {t: latency(files[name], x_test[0], num_threads=t, runs=args.runs, max_seconds=None).to_dict()
                      for t in THREADS}
            rows.append({"variant": name, "size_bytes": Path(files[name]).stat().st_size, "scored": n,
                         "scoring_seconds": scoring, "accuracy": accuracy(outputs, y_test[:n]),
                         **{f"latency_{t}t_{k}": v for t in THREADS for k, v in speeds[t].items()}})
    base = rows[0]
    for row in rows:
        row["size_ratio"] = row["size_bytes"] / base["size_bytes"]
        row["latency_ratio"] = row["latency_1t_median_us"] / base["latency_1t_median_us"]
        row["scoring_ratio"] = (row["scoring_seconds"] / row["scored"]) / (base["scoring_seconds"] / base["scored"])
    header = (f"{'variant':<9} {'size KiB':>9} {'×f32':>5} {'1T med µs':>10} {'1T p90 µs':>10} {'2T med µs':>10} "
              f"{'×f32':>5} {'scored':>6} {'score s':>8} {'per-img ×f32':>12}")
    print(f"model {model.name}, {args.dataset} test set, {args.runs} timed runs per thread count")
    print(header)
    for r in rows:
        print(f"{r['variant']:<9} {r['size_bytes'] / 1024:>9.1f} {r['size_ratio']:>5.2f} {r['latency_1t_median_us']:>10.0f} "
              f"{r['latency_1t_p90_us']:>10.0f} {r['latency_2t_median_us']:>10.0f} {r['latency_ratio']:>5.2f} "
              f"{r['scored']:>6} {r['scoring_seconds']:>8.2f} {r['scoring_ratio']:>12.2f}")
    if args.out:
        write_atomic(args.out, json.dumps({"model": model.name, "dataset": args.dataset, "runs": args.runs,
                                           "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
