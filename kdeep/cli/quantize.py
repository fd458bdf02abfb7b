"""`kdeep quantize`: convert a trained model to every LiteRT variant, score each on the test set, write the report."""
import argparse
import sys

from kdeep.cli.types import NON_NEGATIVE, POSITIVE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kdeep quantize`."""
    from quantization.adaround import ITERATIONS
    from quantization.pipeline import OBJECTIVES, SWEEP_IMAGES
    from quantization.ranges import RANGE_METHODS
    from quantization.search import SEARCHES
    from quantization.variants import VARIANTS

    parser = subparsers.add_parser(
        "quantize",
        help="quantize a trained model to LiteRT variants and write an accuracy-vs-bits report",
        description="Converts a kdeep run directory's model.keras (or any .keras file) to LiteRT variants, "
        "scores each on the dataset's test set and writes report.md/.json/.csv/.html and accuracy_vs_bits.png; "
        "exits 1 when a variant fails (the reason is printed and in the report), 2 on bad input. "
        "Variants: " + "; ".join(f"{v.name} ({v.bits} bits, {v.what})" for v in VARIANTS.values()) + ".",
    )
    parser.add_argument("model", metavar="RUN_DIR|MODEL.keras|PRESET", help="a kdeep run directory, a .keras file or a preset name (kdeep presets)")
    parser.add_argument("--dataset", help="dataset name or image folder: calibration and scoring (a run directory's "
                        "own dataset by default; another one is refused)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated variant names (default: all)")
    parser.add_argument("--qat-epochs", type=NON_NEGATIVE, default=1,
                        help="quantization-aware fine-tuning epochs (default 1)")
    parser.add_argument("--out", help="report directory (default: RUN_DIR/quantization or MODEL_quantization/)")
    parser.add_argument("--limit", type=POSITIVE, help="score only the first N test images (and fine-tune QAT on N)")
    parser.add_argument("--sweep", action="store_true",
                        help="also sweep simulated weight widths 1-8 x activation widths 4/6/8/16/float in Keras, "
                        "and measure per-layer sensitivity (sweep.png, sensitivity.png)")
    parser.add_argument("--sweep-limit", type=NON_NEGATIVE, default=SWEEP_IMAGES,
                        help="test images the simulated sweep scores (default %(default)s; 0 = all)")
    parser.add_argument("--max-drop", type=float, metavar="PP",
                        help="choose a weight width per layer (2/4/8/float; or activation widths: --search) for "
                        "the smallest file whose accuracy on "
                        "half the images the run held out (config.json val_split) drops at most PP points "
                        "(0 < PP < 100), export it as mixed.tflite, confirm it in LiteRT on the other half "
                        "(pareto.png); a run trained on every image is refused (train with --val-split)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="size",
                        help="what --max-drop makes smallest: size, or size with no layer slower than its start "
                        "in a per-layer latency table measured here (latency); default %(default)s")
    parser.add_argument("--search", choices=SEARCHES, default="weights",
                        help="what --max-drop chooses: weights (a width per layer, 2/4/8/float, float activations, "
                        "dynamic range), activations (8 or 16 bits per activation tensor, int8 weights: a "
                        "full-integer w8a8 file with 16-bit activations only where the budget needs them) or both "
                        "(activations, then 4 or 8 bits per layer's weights); default %(default)s")
    ptq = parser.add_argument_group("post-training quantization (in the simulator and in every file that can "
                                    "carry it; the report says which)")
    ptq.add_argument("--ranges", choices=RANGE_METHODS, default="minmax",
                     help="activation ranges from the calibration images: minmax, percentile (99.99th) or mse "
                     "(the clipped range with the least quantization error at the tensor's width); "
                     "default %(default)s")
    ptq.add_argument("--cle", action="store_true", help="cross-layer equalization of consecutive layers' channels")
    ptq.add_argument("--adaround", action="store_true", help="AdaRound: learn each 2-4-bit weight's rounding")
    ptq.add_argument("--adaround-iterations", type=POSITIVE, default=ITERATIONS,
                     help="AdaRound's steps per layer and width (default %(default)s)")
    ptq.add_argument("--bias-correction", action="store_true",
                     help="correct each layer's mean output shift caused by quantizing its weights")
    parser.set_defaults(func=quantize)


def quantize(args: argparse.Namespace) -> int:
    """Runs the quantization pipeline and prints the report table.

    Returns:
        0 when every requested variant was produced, 1 when one failed (each failure on its own stderr line).
    """
    from kdeep.train.run_dir import dataset_of
    from quantization.pipeline import run_pipeline
    from quantization.ptq import PTQOptions

    options = PTQOptions(ranges=args.ranges, equalize=args.cle, adaround=args.adaround,
                         bias_correction=args.bias_correction, adaround_iterations=args.adaround_iterations)
    dataset = dataset_of(args.model, args.dataset, required=True)
    results = run_pipeline(args.model, dataset, args.out, variants=args.variants, qat_epochs=args.qat_epochs,
                           limit=args.limit, sweep_bits=args.sweep, sweep_limit=args.sweep_limit or None,
                           max_drop=args.max_drop, objective=args.objective, options=options,
                           search_for=args.search)
    print((results.report_dir / "report.md").read_text(encoding="utf-8"))
    print(f"report: {results.report_dir / 'report.html'}")
    for name, reason in results.failed.items():
        print(f"kdeep: variant {name} failed: {reason}", file=sys.stderr)
    return 1 if results.failed else 0
