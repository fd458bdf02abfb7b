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
# The simulator is held to LiteRT image by image: top-1 agreement of at least 99 % (measured 2026-12-06 on the
# 60-epoch preset shipped until 2026-12-07: 28-29 of the 10,000 test images differ at int8 and w4a8, 99.7 %), and to
# an accuracy gap of at most 0.30 points (6 of the 2,000 images). Issue 28's target is 0.15 points on the test set; on
# 2,000 images the gap is the net of ~6 disagreeing images, so its standard error is about 0.12 points and a 0.15
# bound fails by chance: the same files gave w4a8 gaps of 0.15 on the Xeon with AVX-512 and 0.25 on the AMD EPYC with
# AVX2 only (the simulated accuracy moved, 95.00 -> 95.10 %; LiteRT's stayed at 94.85 %), and 0.06 on all 10,000
# images there (docs/RESULTS.md).
TOLERANCE_PP, MIN_AGREEMENT = 0.30, 0.99
TWINS = {"int8": (8, 8), "int4": (4, None), "w4a8": (4, 8)}  # variant -> simulated (weight, activation) widths

pytestmark = pytest.mark.slow  # three conversions of ResNet-20, AdaRound on it, 2,000 images through each


@pytest.fixture(scope="module")
def resnet():
    """The shipped `resnet20.fashion_mnist` preset: ResNet-20 with BatchNorm after every convolution, fully trained
    (95.04 % on the test set; docs/presets.md)."""
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
    simulated = simulator.predict(x, simulator.uniform(weight_bits), activation_bits).argmax(-1)
    deployed = litert.predict(converted[variant], x).argmax(-1)
    agreement = float(np.mean(simulated == deployed))
    assert agreement >= MIN_AGREEMENT, f"{variant}: simulator and LiteRT agree on {agreement:.2%} of the images"
    gap = abs(int(np.sum(simulated == y)) - int(np.sum(deployed == y)))  # images
    assert gap <= round(TOLERANCE_PP / 100 * TEST), \
        f"{variant}: simulated {np.mean(simulated == y):.2%}, LiteRT {np.mean(deployed == y):.2%}"


def test_adaround_keeps_3_bit_weights_within_1_5_points_of_float(resnet, files, simulator, fashion_mnist):
    """Issue 28's 3-bit target on the trained preset: every layer's weights at 3 bits lose at most 1.5 points with
    AdaRound (each layer fitted to the inputs of the network quantized before it), where round to nearest loses more
    than 5 (measured 2026-12-06 on these 2,000 images with the 60-epoch preset: float 95.65 %, nearest 85.60 %,
    AdaRound 94.70 % with the defaults, 94.85 % with the 200 iterations on 128 images used here to keep the suite
    short)."""
    (x_train, _), (x_test, y_test) = fashion_mnist
    x, y = scale_pixels(x_test[:TEST]), y_test[:TEST].reshape(-1)
    calibration = convert.calibration_images(x_train)  # what `kdeep quantize` calibrates on
    adaround = ptq.simulator(resnet, calibration, ptq.PTQOptions(adaround=True, adaround_iterations=200,
                                                               calibration_images=128))
    float_accuracy = simulator.accuracy(x, y, simulator.uniform(None))
    assert float_accuracy - simulator.accuracy(x, y, simulator.uniform(3)) > 0.05
    assert float_accuracy - adaround.accuracy(x, y, adaround.uniform(3)) <= 0.015
