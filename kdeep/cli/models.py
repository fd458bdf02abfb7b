"""`kdeep models`, `kdeep summary NAME` and `kdeep why-deeper`: the model zoo and its analysis on the command line."""
from __future__ import annotations

import argparse
import json

from kdeep.cli.types import POSITIVE
from kdeep.train.config import RECIPES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `models`, `summary` and `why-deeper` commands."""
    p = subparsers.add_parser("models", help="list the models: family, default input, parameters, description")
    p.add_argument("--family", help="only this family: deepconvnet, vgg, googlenet, resnet (with the CIFAR "
                                    "ResNets), cifar_resnet or plain")
    p.add_argument("--costs", action="store_true",
                   help="build each model at its default input and add MACs (about a minute for all of them)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=list_command)

    p = subparsers.add_parser("summary", help="per-layer shapes, parameters, MACs and receptive fields of a model")
    p.add_argument("name", help="a model name from `kdeep models`")
    p.add_argument("--input-shape", type=_shape, help="H,W,C, e.g. 28,28,1 (default: the model's own)")
    p.add_argument("--num-classes", type=int, help="classifier width (default: the model's own)")
    p.add_argument("--width", type=float, default=1.0,
                   help="channel multiplier of VGG, GoogLeNet and ResNet, in (0, 4] (default 1.0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=summary_command)

    p = subparsers.add_parser("why-deeper", help="one kxk conv vs a stack of 3x3 convs with the same receptive field")
    p.add_argument("--c-in", type=int, default=64, help="input channels (default 64)")
    p.add_argument("--c-out", type=int, default=64, help="output channels (default 64)")
    p.add_argument("--kernels", type=_ints, default=(5, 7), help="odd kernel sizes, e.g. 5,7,9 (default 5,7)")
    p.add_argument("--size", type=_ints, default=(28, 28), help="feature map H,W for MACs (default 28,28)")
    p.add_argument("--bias", action="store_true", help="count biases too")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    train = p.add_argument_group("--train: train a large-kernel net and a 3x3-stack net with the same parameters "
                                 "and receptive field, one pair per kernel in --kernels")
    train.add_argument("--train", action="store_true", help="train the pairs and report their accuracy")
    train.add_argument("--dataset", default="fashion_mnist", help="dataset (default %(default)s)")
    train.add_argument("--channels", type=int, default=32, help="width of the large-kernel convs (default 32)")
    train.add_argument("--stages", type=int, default=2, help="conv stages, each closed by a 2x2 max-pool (default 2)")
    train.add_argument("--recipe", default="fast", choices=tuple(RECIPES),
                       help="training recipe for both nets (default %(default)s)")
    train.add_argument("--epochs", type=POSITIVE, help="override the recipe's epochs")
    train.add_argument("--limit", type=POSITIVE, help="use only the first N training images")
    train.add_argument("--out", default="runs/why-deeper", help="run directories go to OUT/<net> (resumable)")
    p.set_defaults(func=why_deeper_command)


def list_command(args: argparse.Namespace) -> int:
    """Prints the registry's models (of `--family`); with `--costs`, builds each and adds its MACs."""
    from kdeep import analysis

    rows = analysis.model_rows(args.family, costs=args.costs)
    print(json.dumps([row.to_dict() for row in rows], indent=2) if args.json else analysis.format_model_rows(rows))
    return 0


def summary_command(args: argparse.Namespace) -> int:
    """Prints one model's per-layer table (or JSON)."""
    from kdeep import analysis, models

    model = models.build(args.name, input_shape=args.input_shape, num_classes=args.num_classes, width=args.width)
    summary = analysis.summarize(model)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary)
    return 0


def why_deeper_command(args: argparse.Namespace) -> int:
    """Prints the kxk vs 3x3-stack comparison, or with --train the trained pairs."""
    from kdeep import analysis

    if args.train:
        return why_deeper_train(args)
    rows = analysis.why_deeper(args.c_in, args.c_out, args.kernels, size=tuple(args.size), bias=args.bias)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(analysis.format_why_deeper(rows, args.c_in, args.c_out))
    return 0


def why_deeper_train(args: argparse.Namespace) -> int:
    """Trains each (large kernel, 3x3 stack) pair (`kdeep.train.deeper`) and prints accuracy, parameters and MACs."""
    from kdeep import analysis
    from kdeep.train.deeper import train_why_deeper

    result = train_why_deeper(args.dataset, args.kernels, channels=args.channels, stages=args.stages,
                              recipe=args.recipe, epochs=args.epochs, limit=args.limit, out=args.out)
    rows = [(n.name, str(n.convs), str(n.channels), f"{n.receptive_field}x{n.receptive_field}", f"{n.params:,}",
             f"{n.macs / 1e6:,.2f}M", "-" if n.val_accuracy is None else f"{100 * n.val_accuracy:.2f}%",
             f"{100 * n.test_accuracy:.2f}%") for n in result.nets]
    print(f"{result.dataset}, recipe {result.config.recipe} ({result.config.epochs} epochs), {result.stages} stages")
    print(analysis.text_table(("net", "convs", "channels", "receptive field", "params", "MACs", "val acc", "test acc"),
                              rows, right=(1, 2, 4, 5, 6, 7)))
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
