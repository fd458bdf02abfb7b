"""`kdeep models`, `kdeep summary NAME` and `kdeep why-deeper`: the model zoo and its analysis on the command line."""
from __future__ import annotations

import argparse
import json

from kdeep.errors import ModelError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `models`, `summary` and `why-deeper` commands."""
    p = subparsers.add_parser("models", help="list every model with its parameters and MACs at its default input")
    p.add_argument("--family", help="only this family (deepconvnet, vgg, googlenet, resnet, cifar_resnet)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=list_command)

    p = subparsers.add_parser("summary", help="per-layer shapes, parameters, MACs and receptive fields of a model")
    p.add_argument("name", help="a model name from `kdeep models`")
    p.add_argument("--input-shape", type=_shape, help="H,W,C, e.g. 28,28,1 (default: the model's own)")
    p.add_argument("--num-classes", type=int, help="classifier width (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=summary_command)

    p = subparsers.add_parser("why-deeper", help="one kxk conv vs a stack of 3x3 convs with the same receptive field")
    p.add_argument("--c-in", type=int, default=64, help="input channels (default 64)")
    p.add_argument("--c-out", type=int, default=64, help="output channels (default 64)")
    p.add_argument("--kernels", type=_ints, default=(5, 7), help="odd kernel sizes, e.g. 5,7,9 (default 5,7)")
    p.add_argument("--size", type=_ints, default=(28, 28), help="feature map H,W for MACs (default 28,28)")
    p.add_argument("--bias", action="store_true", help="count biases too")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=why_deeper_command)


def list_command(args: argparse.Namespace) -> int:
    """Builds every (or every `--family`) model at its default input and prints params and MACs."""
    import keras

    from kdeep import analysis, models

    names = models.list_models(args.family)
    if not names:
        families = sorted({models.info(n).family for n in models.list_models()})
        raise ModelError(f"unknown family {args.family!r}; valid: {', '.join(families)}")
    rows = []
    for name in names:
        info = models.info(name)
        summary = analysis.summarize(models.build(name))
        rows.append({"name": name, "family": info.family, "input_shape": list(info.input_shape),
                     "num_classes": info.num_classes, "params": summary.params,
                     "trainable_params": summary.trainable_params, "macs": summary.macs,
                     "description": info.description})
        keras.backend.clear_session()  # frees each model before the next (VGGs hold ~0.5 GiB of weights)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [(r["name"], r["family"], "x".join(map(str, r["input_shape"])), str(r["num_classes"]),
              f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f}M") for r in rows]
    print(analysis.text_table(("model", "family", "input", "classes", "params", "MACs"), table, right=(3, 4, 5)))
    return 0


def summary_command(args: argparse.Namespace) -> int:
    """Prints one model's per-layer table (or JSON)."""
    from kdeep import analysis, models

    model = models.build(args.name, input_shape=args.input_shape, num_classes=args.num_classes)
    summary = analysis.summarize(model)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary)
    return 0


def why_deeper_command(args: argparse.Namespace) -> int:
    """Prints the kxk vs 3x3-stack comparison."""
    from kdeep import analysis

    if len(args.size) != 2:
        raise ModelError(f"--size takes H,W, got {','.join(map(str, args.size))}")
    rows = analysis.why_deeper(args.c_in, args.c_out, args.kernels, size=tuple(args.size), bias=args.bias)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(analysis.format_why_deeper(rows, args.c_in, args.c_out))
    return 0


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _shape(text: str) -> tuple[int, ...]:
    shape = _ints(text)
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected H,W,C (e.g. 28,28,1), got {text!r}")
    return shape
