"""Benchmark: the quantization report's wall time with the simulated sweep and per-layer sensitivity, against
the report without them (today's), measured in the same run, as a ratio.

    python benchmarks/bench_quantization_report.py --model /work/runs/dcn_fast --dataset mnist \
        --out out/bench_quantization_report.json

Without --model it trains nothing and builds an untrained DeepConvNet (the sweep's cost does not depend on the
weights; its sensitivity step then runs at the widest width losing > 1 point, as for a trained model). The
goal: ratio <= 2.0 for the full DeepConvNet report. --max-drop also times the mixed-precision search (a third run).
"""
import argparse
import json
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=".keras file or kdeep run directory (default: untrained DeepConvNet)")
    parser.add_argument("--dataset", default="mnist", help="dataset (default %(default)s)")
    parser.add_argument("--variants", help="comma-separated variants (default: all)")
    parser.add_argument("--limit", type=int, help="score the first N test images (default: all)")
    parser.add_argument("--sweep-limit", type=int, default=2000, help="test images the sweep scores")
    parser.add_argument("--max-drop", type=float, help="also time a run with the mixed-precision search")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    import kdeep.models
    from kdeep.io import load_model, write_atomic
    from quantization.pipeline import run_pipeline

    model = load_model(args.model) if args.model else kdeep.models.build("deepconvnet", input_shape=(28, 28, 1),
                                                                            num_classes=10)
    runs = [("report (today)", {}), ("report + sweep + sensitivity", {"sweep_bits": True})]
    if args.max_drop is not None:
        runs.append((f"report + sweep + --max-drop {args.max_drop:g}", {"sweep_bits": True, "max_drop": args.max_drop}))
    rows = []
    for label, options in runs:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            results = run_pipeline(model, args.dataset, folder, variants=args.variants, limit=args.limit,
                                   sweep_limit=args.sweep_limit or None, **options).to_dict()
            seconds = time.perf_counter() - start
        sweep = results.get("sweep", {})
        rows.append({"run": label, "seconds": seconds, "sweep_seconds": sweep.get("seconds", {}).get("sweep"),
                     "sensitivity_seconds": sweep.get("seconds", {}).get("sensitivity"),
                     "search_seconds": results.get("mixed", {}).get("seconds")})
    base = rows[0]["seconds"]
    print(f"model {model.name}, {args.dataset}, sweep on {args.sweep_limit or 'all'} test images")
    print(f"{'run':<40} {'seconds':>8} {'x today':>8} {'sweep s':>8} {'sens. s':>8} {'search s':>8}")
    for r in rows:
        r["ratio"] = r["seconds"] / base
        cells = [f"{r[k]:>8.0f}" if r[k] is not None else f"{'–':>8}" for k in ("sweep_seconds",
                                                                                  "sensitivity_seconds",
                                                                                  "search_seconds")]
        print(f"{r['run']:<40} {r['seconds']:>8.0f} {r['ratio']:>8.2f} " + " ".join(cells))
    if args.out:
        write_atomic(args.out, json.dumps({"model": model.name, "dataset": args.dataset, "limit": args.limit,
                                           "sweep_limit": args.sweep_limit, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
