"""The recorded architecture comparison on Fashion-MNIST: DeepConvNet, ResNet-20, ResNet-56, and VGG-11-BN,
GoogLeNet and ResNet-18 at the width that brings each to about ResNet-20's 30 M MACs, one recipe for all.

    python apps/compare_architectures.py                                    # the full run (many CPU hours)
    python apps/compare_architectures.py --out /tmp/cmp --epochs 1 --limit 500 --no-litert     # quick look

Every `kdeep compare` flag is accepted (--models, --recipe, --epochs, --limit, --no-litert, ...); the defaults are
the recorded comparison's (kdeep.compare.FASHION_MNIST_MODELS, the sgd_cosine recipe). Rerunning the same command
continues an interrupted comparison; the results land in OUT/results.csv, OUT/report.html (docs/compare.md).
"""
import sys

from kdeep.cli import main

DEFAULT_OUT = "runs/compare-fashion-mnist"


def run(argv: list[str]) -> int:
    """`kdeep compare` with the recorded comparison's defaults (and --out DEFAULT_OUT unless given)."""
    has_out = any(arg == "--out" or arg.startswith("--out=") for arg in argv)
    return main(["compare", *([] if has_out else ["--out", DEFAULT_OUT]), *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
