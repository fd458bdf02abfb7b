"""Shared fixtures: real MNIST/Fashion-MNIST read through kdeep's loader (KDEEP_DATA_DIR in CI)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if _SHARED.is_dir():  # the team's read-only copy next to the checkout, as .ci/run exports it
    os.environ.setdefault("KDEEP_DATA_DIR", str(_SHARED))


@pytest.fixture(scope="session")
def mnist():
    """((x_train, y_train), (x_test, y_test)) of MNIST: uint8 (N, 28, 28, 1) images, int64 labels."""
    import kdeep.data

    return kdeep.data.load("mnist")


@pytest.fixture(scope="session")
def fashion_mnist():
    """((x_train, y_train), (x_test, y_test)) of Fashion-MNIST, as `mnist`."""
    import kdeep.data

    return kdeep.data.load("fashion_mnist")
