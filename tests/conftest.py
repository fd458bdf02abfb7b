"""Shared fixtures: real MNIST/Fashion-MNIST read through kdeep's loader (KDEEP_DATA_DIR in CI), and the one small
DeepConvNet trained on it that every quantization test module uses (trained once per session)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One BLAS thread per test process (set before numpy loads): pytest.ini runs one worker per core, and OpenBLAS's
# spinning threads next to a busy core slowed numpy's products (AdaRound's statistics and steps) up to 65x:
# test_quantization_ptq.py took 165 s with the default threads and 121 s with one, beside a training run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
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


SMALL_TRAIN, SMALL_TEST = 4000, 800  # the first MNIST images `small_mnist` keeps


@pytest.fixture(scope="session")
def small_mnist():
    """The first 4,000 training and 800 test images of MNIST (uint8), as `mnist` (read through the cached
    `load_splits`, not the `mnist` fixture, so a module may name its own subset `mnist`)."""
    import kdeep.data

    (x_train, y_train), (x_test, y_test) = kdeep.data.load_splits("mnist")
    return (x_train[:SMALL_TRAIN], y_train[:SMALL_TRAIN]), (x_test[:SMALL_TEST], y_test[:SMALL_TEST])


@pytest.fixture(scope="session")
def trained_deepconvnet(small_mnist):
    """The book's DeepConvNet without dropout (trains faster), one epoch of Adam on `small_mnist`'s 4,000 training
    images, seeded: ~95% on MNIST's test set. Shared by the quantization tests; do not train or mutate it."""
    import keras

    import kdeep.data
    import kdeep.models

    keras.utils.set_random_seed(0)
    (x, y), _ = small_mnist
    model = kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10, dropout=0.0)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(kdeep.data.pipeline(x, y, 32, seed=0), epochs=1, verbose=0)
    return model
