"""The `kdeep` command line: argument parsing and friendly errors; every command calls the library.

Each command group lives in its own module here (`data`, `models`, `train`, ...) and exposes
`register(subparsers)`, which adds its sub-commands with `set_defaults(func=handler)`. A handler takes the
parsed arguments and returns an exit code. Library errors (`KdeepError`) become one line on stderr and
exit code 2, never a traceback. TensorFlow's own logging is off unless `--verbose` (kdeep.quiet).
"""
import argparse
import importlib
import os
import signal
import sys
from typing import Sequence

from kdeep import __version__, progress
from kdeep.errors import KdeepError
from kdeep.quiet import native_stderr_filtered, set_verbosity

COMMAND_MODULES = ("data", "models", "presets", "train", "quantize", "deploy", "launch", "compare")
VERBOSE_HELP = "show TensorFlow's, absl's and the converters' log lines (also KDEEP_VERBOSE=1)"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (`kdeep: error: ...` with where to find help), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"kdeep: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser with every command group registered."""
    parser = OneLineParser(
        prog="kdeep", description="Deeper convnets for Keras 3: train, evaluate, distribute, quantize."
    )
    parser.add_argument("--version", action="version", version=f"kdeep {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"kdeep.cli.{module}").register(subparsers)
    _add_verbose(subparsers)
    return parser


def _add_verbose(subparsers: argparse._SubParsersAction) -> None:
    """Accepts --verbose after every (sub-)command too: `kdeep run --verbose`, `kdeep data info mnist --verbose`."""
    for command in subparsers.choices.values():
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbose(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: arguments without the program name; `sys.argv[1:]` when None.

    Returns:
        The exit code: 0 on success, 2 on bad input (with a one-line message on stderr), 1 when real work failed,
        141 (128 + SIGPIPE) when the reader of stdout went away (`kdeep ... | head`), silently.
    """
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return 128 + signal.SIGPIPE


def _run(argv: Sequence[str] | None) -> int:
    """Parses `argv` and runs its command: library errors become one line and exit code 2."""
    parser = build_parser()  # the command modules import TensorFlow only inside their handlers
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) or a usage error (2, already printed on one line)
        return int(exit_.code or 0)
    set_verbosity(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with native_stderr_filtered(), progress.shown():  # progress lines go to the live stderr
            return int(args.func(args) or 0)
    except KdeepError as error:
        print(f"kdeep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdeep: interrupted", file=sys.stderr)
        return 130


def _discard_stdout() -> None:
    """Points stdout at /dev/null, so the interpreter's last flush of a closed pipe raises nothing."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stdout (pytest's capture) has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
