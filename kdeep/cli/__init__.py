"""The `kdeep` command line: argument parsing and friendly errors; every command calls the library.

Each command group lives in its own module here (`data`, `models`, `train`, ...) and exposes
`register(subparsers)`, which adds its sub-commands with `set_defaults(func=handler)`. A handler takes the
parsed arguments and returns an exit code. Library errors (`KdeepError`) become one line on stderr and
exit code 2, never a traceback.
"""
import argparse
import importlib
import sys
from typing import Sequence

from kdeep import __version__
from kdeep.errors import KdeepError

COMMAND_MODULES = ("data", "models", "train", "quantize", "launch", "compare")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="kdeep", description="Deeper convnets for Keras 3: train, evaluate, distribute, quantize."
    )
    parser.add_argument("--version", action="version", version=f"kdeep {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"kdeep.cli.{module}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: arguments without the program name; `sys.argv[1:]` when None.

    Returns:
        The exit code: 0 on success, 2 on bad input (with a one-line message on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KdeepError as error:
        print(f"kdeep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdeep: interrupted", file=sys.stderr)
        return 130
