"""The simulator against LiteRT on a BatchNorm network: the ResNet-20 Fashion-MNIST preset, whose
convolutions reach LiteRT with their BatchNorm folded in, at int8, int4 and w4a8 on the same 2,000 test images; and
AdaRound's 3-bit weights on the same trained network."""
import numpy as np
import pytest

import kdeep.models
from kdeep.data import scale_pixels
from quantization import convert, litert, ptq, quantize
from quantization.sweep import Simulator

TRAIN, TEST, CALIBRATION = 6000, 2000, 300
# |simulated - LiteRT| allowed: issue 28's target, 0.15 points (3 of the 2,000 images), for all three. Measured
# 2026-12-06 on the preset (float 95.65 % on these images): int8 0.05, int4 0.00, w4a8 0.15.
TOLERANCE_PP = 0.15
TWINS = {"int8": (8, 8), "int4": (4, None), "w4a8": (4, 8)}  # variant -> simulated (weight, activation) widths

pytestmark = pytest.mark.slow  # three conversions of ResNet-20, AdaRound on it, 2,000 images through each


@pytest.fixture(scope="module")
def resnet():
    """The shipped `resnet20.fashion_mnist` preset: ResNet-20 with BatchNorm after every convolution, fully trained
    (94.88 % on the test set; docs/presets.md)."""
    return kdeep.models.build("resnet20", weights="fashion_mnist")


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
    assert float_accuracy > 0.9  # the trained preset
    weight_bits, activation_bits = TWINS[variant]
    simulated = simulator.accuracy(x, y, simulator.uniform(weight_bits), activation_bits)
    deployed = float(np.mean(litert.predict(converted[variant], x).argmax(-1) == y))
    gap = abs(simulated - deployed) * TEST  # images
    assert round(gap) <= round(TOLERANCE_PP / 100 * TEST), \
        f"{variant}: simulated {simulated:.2%}, LiteRT {deployed:.2%}"


def test_adaround_keeps_3_bit_weights_within_1_5_points_of_float(resnet, files, simulator, fashion_mnist):
    """Issue 28's 3-bit target on the trained preset: every layer's weights at 3 bits lose at most 1.5 points with
    AdaRound (each layer fitted to the inputs of the network quantized before it), where round to nearest loses
    more than 5 (measured 2026-12-06 on these 2,000 images: float 95.65 %, nearest 85.60 %, AdaRound 94.70 % with
    the defaults, 94.85 % with the 200 iterations on 128 images used here to keep the suite short)."""
    (x_train, _), (x_test, y_test) = fashion_mnist
    x, y = scale_pixels(x_test[:TEST]), y_test[:TEST].reshape(-1)
    calibration = convert.calibration_images(x_train)  # what `kdeep quantize` calibrates on
    adaround = ptq.simulator(resnet, calibration, ptq.PTQOptions(adaround=True, adaround_iterations=200,
                                                               calibration_images=128))
    float_accuracy = simulator.accuracy(x, y, simulator.uniform(None))
    assert float_accuracy - simulator.accuracy(x, y, simulator.uniform(3)) > 0.05
    assert float_accuracy - adaround.accuracy(x, y, adaround.uniform(3)) <= 0.015
