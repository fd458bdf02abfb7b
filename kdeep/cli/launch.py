"""`kdeep launch`: run a kdeep command as N local multi-worker processes (MultiWorkerMirroredStrategy)."""
import argparse
import sys

from kdeep.cli.types import POSITIVE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kdeep launch --workers N [--port-base P] -- <kdeep train args>`."""
    parser = subparsers.add_parser(
        "launch",
        help="run `kdeep train` as N local workers of one multi-worker cluster",
        description="Starts N local worker processes, each with its TF_CONFIG (ports on 127.0.0.1), runs the "
        "kdeep command after `--` in each (`train` is assumed when it starts with an option; "
        "`--strategy multi-worker` is added unless given), streams their output as `[worker i] ...` and "
        "exits non-zero if any worker fails.",
    )
    parser.add_argument("--workers", type=POSITIVE, default=2, help="number of worker processes (default 2)")
    parser.add_argument("--port-base", type=int, default=None,
                        help="worker i listens on 127.0.0.1:PORT_BASE+i (default: free ports)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- then the kdeep command, e.g. -- train --model deepconvnet --out runs/mw")
    parser.set_defaults(func=_launch)


def worker_command(args: list[str]) -> list[str]:
    """The command each worker runs: `python -m kdeep <args>`, defaulting to train under multi-worker strategy."""
    args = args[1:] if args[:1] == ["--"] else list(args)
    if not args or args[0].startswith("-"):
        args = ["train", *args]
    if args[0] == "train" and not any(a == "--strategy" or a.startswith("--strategy=") for a in args):
        args += ["--strategy", "multi-worker"]
    return [sys.executable, "-m", "kdeep", *args]


def _launch(args: argparse.Namespace) -> int:
    from kdeep.distribute import launch

    return launch(args.workers, worker_command(args.command), port_base=args.port_base)
