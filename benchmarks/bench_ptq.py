"""Benchmark: what each post-training option (quantization.ptq) buys at 3-4 bits and what it costs, in one run.

    python benchmarks/bench_ptq.py --model RUN_DIR|MODEL.keras|PRESET --dataset fashion_mnist --out out/bench_ptq.json

For each option set it prints the simulated accuracy (float weights and activations, 3-bit weights, W4A4 with the
first and last layers at 8 bits, W4A8) on the first --images test images, then the deployable int4 (weight-only)
and w4a8 LiteRT files, and their `_ends8` twins (first and last layers at 8 bits), made with it by the pipeline's own
export (`quantization.pipeline.quantize` with the options,
as `kdeep quantize` makes them), scored in LiteRT on the first --litert-images test images, and the seconds each
option set took (simulator and exports), as a ratio to the plain set measured in the same run. Calibration: the
pipeline's 500 seeded training images (`quantization.convert.calibration_images`).
"""
import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

SETS = {
    "plain": {},
    "percentile": {"ranges": "percentile"},
    "mse": {"ranges": "mse"},
    "cle": {"equalize": True},
    "bc": {"bias_correction": True},
    "adaround": {"adaround": True},
    "adaround+bc": {"adaround": True, "bias_correction": True},
    "mse+adaround": {"ranges": "mse", "adaround": True},
    "percentile+adaround": {"ranges": "percentile", "adaround": True},
    "all": {"ranges": "mse", "equalize": True, "adaround": True, "bias_correction": True},
    "mse+adaround+bc": {"ranges": "mse", "adaround": True, "bias_correction": True},
}


DEPLOYED = ("int4", "w4a8", "int4_ends8", "w4a8_ends8")  # the LiteRT files each option set is scored as


def _cpu() -> str:
    """CPU model and its SIMD flags that matter to LiteRT."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return f"{name or platform.machine()} ({', '.join(f for f in ('avx2', 'avx512f', 'avx512_vnni') if f in flags)})"


def _simulated(sim, x, y) -> dict:
    """Simulated accuracies (%) of the option set's simulator."""
    from quantization import ptq

    w, a = ptq.with_ends_at(sim, 4, 4)
    return {"float": sim.accuracy(x, y, sim.uniform(None)), "w3": sim.accuracy(x, y, sim.uniform(3)),
            "w4a4_ends8": sim.accuracy(x, y, w, a), "w4a8": sim.accuracy(x, y, sim.uniform(4), 8)}


def _deployed(model, sim, options, calibration, x, y, folder: Path) -> dict:
    """LiteRT accuracies of the int4 (weight-only) and w4a8 files, and their `_ends8` twins, the pipeline makes with the
    option set."""
    from quantization.litert import predict
    from quantization.pipeline import quantize

    weights = sim.weights if options.weights_on else None
    files = quantize(model, list(DEPLOYED), calibration, folder, options=options, weights=weights)
    if files.failed:
        raise SystemExit(f"bench_ptq: {files.failed}")
    return {f"{name}_litert": float(np.mean(predict(path, x).argmax(-1) == y)) for name, path in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=".keras file or kdeep run directory")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--images", type=int, default=2000, help="test images the simulator scores")
    parser.add_argument("--litert-images", type=int, default=10000, help="test images LiteRT scores")
    parser.add_argument("--sets", default=",".join(SETS), help=f"option sets ({', '.join(SETS)})")
    parser.add_argument("--iterations", type=int, default=500, help="AdaRound iterations")
    parser.add_argument("--calibration-images", type=int, default=256,
                        help="calibration images of AdaRound's and bias correction's layer statistics")
    parser.add_argument("--calibration-seed", type=int, default=None,
                        help="seed of the calibration draw (default: the pipeline's own, as `kdeep quantize`)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    import kdeep.data
    from kdeep.io import write_atomic
    from kdeep.models import presets
    from quantization import convert, ptq
    from quantization.litert import predict
    from quantization.pipeline import quantize

    model = presets.as_model(args.model)
    (x_train, _), (x_test, y_test) = kdeep.data.load(args.dataset)
    calibration = convert.calibration_images(x_train, **({} if args.calibration_seed is None
                                                          else {"seed": args.calibration_seed}))
    x, y = kdeep.data.scale_pixels(x_test), np.asarray(y_test).reshape(-1)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        float_file = quantize(model, ["float32"], calibration, Path(scratch) / "float")["float32"]
        litert_float = float(np.mean(predict(float_file, x[:args.litert_images]).argmax(-1) == y[:args.litert_images]))
        for name in args.sets.split(","):
            options = ptq.PTQOptions(**SETS[name], adaround_iterations=args.iterations,
                                     calibration_images=args.calibration_images)
            start = time.perf_counter()
            sim = ptq.simulator(model, calibration, options)
            row = {"set": name, "options": options.names, **_simulated(sim, x[:args.images], y[:args.images])}
            row.update(_deployed(model, sim, options, calibration, x[:args.litert_images], y[:args.litert_images],
                                 Path(scratch) / name))
            row["seconds"] = time.perf_counter() - start
            row["ptq_seconds"] = getattr(sim.weights, "seconds", {})
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]["seconds"]
    print(f"\n{_cpu()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; LiteRT float32 {100 * litert_float:.2f}% "
          f"on {min(args.litert_images, len(x))} images; simulated on {min(args.images, len(x))}")
    print("drops in points against float (simulated: the Keras float model; LiteRT: the float32 file)")
    files = " | ".join(f"{name} LiteRT" for name in DEPLOYED)
    print(f"| set | W3 | W4A4 (ends 8) | W4A8 | {files} | seconds | x plain |")
    print("|---" * (6 + len(DEPLOYED)) + "|")
    for r in rows:
        drop = lambda key, ref: f"{100 * (ref - r[key]):+.2f}"  # noqa: E731 - points below the float reference
        files = " | ".join(drop(f"{name}_litert", litert_float) for name in DEPLOYED)
        print(f"| {r['set']} | {drop('w3', r['float'])} | {drop('w4a4_ends8', r['float'])} | "
              f"{drop('w4a8', r['float'])} | {files} | {r['seconds']:.0f} | {r['seconds'] / base:.2f} |")
    if args.out:
        write_atomic(args.out, json.dumps({"cpu": _cpu(), "litert_float": litert_float, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
