"""`kdeep export` (deployable LiteRT files and a model card) and `kdeep predict` (classify image files)."""
from __future__ import annotations

import argparse
import json
import sys

from kdeep.cli.types import NON_NEGATIVE, POSITIVE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kdeep export` and `kdeep predict`."""
    _export_flags(subparsers.add_parser(
        "export", help="deployable LiteRT files (image in, probabilities out, TFLite Metadata) and a model card",
        description="Writes OUT/<variant>.tflite for each variant: a [1, H, W, 3] RGB image input (float32 with "
        "NormalizationOptions, or uint8 pixels for the full-integer variants), a probabilities output, the "
        "signature serving_default (image -> probabilities), TFLite Metadata with the labels file packed in, as "
        "MediaPipe's ImageClassifier and LiteRT's CompiledModel take them; then model_card.md and "
        "model_card.json. Exits 1 when a variant fails, 2 on bad input.")).set_defaults(func=export_command)
    _predict_flags(subparsers.add_parser(
        "predict", help="classify image files or folders with a .keras, run directory or .tflite model",
        description="Decodes PNG/JPEG/... files of any size and channel count, prepares them as the model takes "
        "them (resize, channels, scaling) and prints the top classes of each. A file that is not a readable "
        "image gets one line on stderr and is skipped; the others are still classified, and the exit code is 1."
    )).set_defaults(func=predict_command)


def _export_flags(export: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from quantization.deploy import CHANNELS, INTEGER_IO
    from quantization.variants import VARIANTS

    export.add_argument("model", metavar="RUN_DIR|MODEL.keras|PRESET", help="a kdeep run directory, a .keras file or a preset name (kdeep presets)")
    export.add_argument("--out", required=True, help="folder for the files and the model card")
    export.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated variants (default: all): {', '.join(VARIANTS)}")
    export.add_argument("--dataset", help="dataset name or image folder: calibration, labels, scoring (a run's own "
                        "by default)")
    export.add_argument("--channels", choices=CHANNELS, default="rgb",
                        help="input channels: rgb (default) or the model's own count")
    export.add_argument("--integer-io", choices=INTEGER_IO, default="uint8",
                        help="input/output type of the full-integer variants (default uint8)")
    export.add_argument("--qat-epochs", type=NON_NEGATIVE, default=1, help="quantization-aware fine-tuning epochs")
    export.add_argument("--limit", type=POSITIVE, help="calibrate, fine-tune and score on the first N images")
    export.add_argument("--no-score", action="store_true", help="do not score the files for the model card")
    export.add_argument("--author", default="kdeep", help="the metadata's author field")
    export.add_argument("--license", default="unspecified", help="the metadata's license field")
    export.add_argument("--version", dest="model_version", default="1", help="the metadata's version field")
    return export


def _predict_flags(predict: argparse.ArgumentParser) -> argparse.ArgumentParser:
    predict.add_argument("model", metavar="MODEL", help="a .keras file, a run directory, a .tflite file or a preset name (kdeep presets)")
    predict.add_argument("inputs", metavar="IMAGE|FOLDER", nargs="+", help="image files and folders of them")
    predict.add_argument("--top-k", type=POSITIVE, default=3, help="classes shown per image (default 3)")
    predict.add_argument("--batch-size", type=POSITIVE, default=256, help="images per batch (default 256)")
    predict.add_argument("--dataset", help="dataset whose class names label a .keras model without labels")
    predict.add_argument("--threads", type=POSITIVE, default=None,
                         help="threads of a .tflite model's invokes (default: every core)")
    predict.add_argument("--json", action="store_true", help="print the result as JSON")
    return predict


def export_command(args: argparse.Namespace) -> int:
    """Exports, prints the model card and where it went; 1 when a variant failed."""
    from quantization.export import export

    result = export(args.model, args.out, variants=args.variants, dataset=args.dataset, channels=args.channels,
                    integer_io=args.integer_io, qat_epochs=args.qat_epochs, limit=args.limit,
                    score=not args.no_score, author=args.author, license=args.license, version=args.model_version)
    print(result.card.markdown())
    print(f"kdeep export: {len(result.files)} files and model_card.md in {result.out_dir}")
    for name, reason in result.failed.items():
        print(f"kdeep: variant {name} failed: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


def _progress(done: int, total: int) -> None:
    """A progress line on stderr, redrawn on a terminal, printed once at the end otherwise."""
    if sys.stderr.isatty() or done == total:
        print(f"\rkdeep: {done}/{total} files", end="\n" if done == total else "", file=sys.stderr, flush=True)


def predict_command(args: argparse.Namespace) -> int:
    """Prints each file's top classes (or JSON); 1 when a file was skipped."""
    from kdeep.classify import classify

    result = classify(args.model, args.inputs, top_k=args.top_k, batch_size=args.batch_size, dataset=args.dataset,
                      threads=args.threads,
                      progress=_progress if len(args.inputs) > 1 or _is_folder(args.inputs[0]) else None)
    for why in result.skipped.values():
        print(f"kdeep: skipped {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        for prediction in result.predictions:
            print(f"{prediction.file}: " + ", ".join(f"{label} {100 * p:.1f}%" for label, p in prediction.top))
        if result.accuracy is not None:
            print(f"kdeep: accuracy {100 * result.accuracy:.2f}% against the folder names "
                  f"({len(result.predictions)} images)")
    return 1 if result.skipped else 0


def _is_folder(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_dir()
