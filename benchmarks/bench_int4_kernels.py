"""Benchmark: does LiteRT's CPU runtime have fast int4 kernels? One dense layer and one convolution, batch 1, at float,
int8 and int4 weights (dynamic range), as ratios to int8 measured in one run.

    python benchmarks/bench_int4_kernels.py --out out/bench_int4_kernels.json

XNNPACK (LiteRT's default CPU delegate) runs a FULLY_CONNECTED with int4 weights itself; an int4 CONV_2D falls back
to LiteRT's builtin kernel (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc: VisitFullyConnectedNode accepts
INT4 filters, VisitConv2DNode only INT8). The last column times the same file on LiteRT's builtin kernels alone: an
op XNNPACK takes runs faster in the default setup than there; an op it does not take runs the same (int4 CONV_2D),
which is what `quantization.plan.FAST_DYNAMIC_BITS` records.
"""
import argparse
import json
import sys


def _models() -> dict:
    """{name: one-layer Keras model}: a 1024x1024 dense layer and a 3x3, 64-to-64-channel convolution on 28x28."""
    import keras

    dense_in = keras.Input((1024,))
    conv_in = keras.Input((28, 28, 64))
    return {"FULLY_CONNECTED 1024x1024": keras.Model(dense_in, keras.layers.Dense(1024, name="dense")(dense_in)),
            "CONV_2D 3x3x64x64 @28x28": keras.Model(conv_in, keras.layers.Conv2D(64, 3, name="conv")(conv_in))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 invokes per layer and width")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    from kdeep.io import write_atomic
    from quantization.latency import measure
    from kdeep.report import describe_machine
    from quantization.plan import plan

    rows = []
    for name, model in _models().items():
        table = measure(model, plan(model), widths=(None, 8, 4), runs=args.runs)
        (times,) = table.us.values()
        (builtin,) = measure(model, plan(model), widths=(None, 8, 4), runs=args.runs, builtin=True).us.values()
        rows += [{"op": name, "weights": "float32" if bits is None else f"int{bits}", "median_us": us,
                  "x_int8": us / times[8], "builtin_median_us": builtin[bits]} for bits, us in times.items()]
    print(f"{describe_machine()}; batch 1, 1 thread, {args.runs} timed invokes, dynamic range (float activations)")
    print(f"{'op':<26} {'weights':>8} {'median µs':>10} {'×int8':>6} {'builtin µs':>11}")
    for row in rows:
        print(f"{row['op']:<26} {row['weights']:>8} {row['median_us']:>10.1f} {row['x_int8']:>6.2f} "
              f"{row['builtin_median_us']:>11.1f}")
    if args.out:
        write_atomic(args.out, json.dumps({"machine": describe_machine(), "runs": args.runs, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
