"""The ai-edge-quantizer backend on real MNIST: Keras layers -> TFLite ops, per-layer widths, SNR, the new variants."""
import json

import numpy as np
import pytest

import kdeep.models
from kdeep.cli import main as cli_main
from kdeep.errors import ArtifactError, QuantizationError
from quantization import VARIANTS, aiedge, quantize, run_pipeline
from kdeep.scoring import accuracy as top1
from quantization import litert
from kdeep.data import scale_pixels

from test_quantization_pipeline import mnist, trained  # noqa: F401 (the same small trained DeepConvNet)

AIEDGE = [name for name, variant in VARIANTS.items() if variant.backend == "aiedge"]
KERNELS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "fc1",
           "logits"]


@pytest.fixture(scope="module")
def data(mnist):  # noqa: F811
    """The first 4000 training and 800 test images of MNIST, scaled to [0, 1]."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (scale_pixels(x_train), y_train), (scale_pixels(x_test), y_test)


@pytest.fixture(scope="module")
def float_file(trained, data, tmp_path_factory):
    (x, _), _ = data
    return quantize(trained, ["float32"], x[:8], tmp_path_factory.mktemp("f32"))["float32"]


def accuracy(path, data):
    _, (x, y) = data
    return top1(litert.predict(path, x), y)


def weight_dtypes(path, ops):
    """{Keras layer: numpy dtype name of its weight tensor in the .tflite} (int4 and int2 read back as int8)."""
    tensors = {t["name"]: t for t in litert.open_model(path).tensor_details()}
    return {layer: np.dtype(tensors[op.weight]["dtype"]).name for layer, op in ops.items() if op.weight in tensors}


def test_layer_ops_maps_every_kernel_layer_to_its_op(trained, float_file):
    ops = aiedge.layer_ops(trained, float_file)
    assert list(ops) == KERNELS
    for name, op in ops.items():
        kernel = trained.get_layer(name).kernel
        assert op.op == ("FULLY_CONNECTED" if name in ("fc1", "logits") else "CONV_2D")
        assert op.weight_shape == (kernel.shape[-1], *kernel.shape[:-1])  # TFLite keeps output channels first


def test_layer_ops_on_resnet_with_folded_batch_norm(tmp_path):
    """ResNet-20's convolutions reach LiteRT fused with their BatchNorm; each still maps to its own op."""
    model = kdeep.models.build("resnet20", input_shape=(28, 28, 1), num_classes=10)
    path = quantize(model, ["float32"], np.zeros((2, 28, 28, 1), np.float32), tmp_path)["float32"]
    ops = aiedge.layer_ops(model, path)
    kernels = [layer.name for layer in model.layers if getattr(layer, "kernel", None) is not None]
    assert sorted(ops) == sorted(kernels) and len({op.scope for op in ops.values()}) == len(kernels)


def test_int4_is_small_and_close_to_float(float_file, data, tmp_path):
    path = aiedge.quantize_tflite(float_file, tmp_path / "int4.tflite", weight_bits={}, default_bits=4)
    assert path.stat().st_size < 0.2 * float_file.stat().st_size
    assert accuracy(path, data) >= accuracy(float_file, data) - 0.05


def test_per_layer_widths_reach_the_named_weight_tensors(trained, float_file, data, tmp_path):
    ops = aiedge.layer_ops(trained, float_file)
    mixed = aiedge.quantize_tflite(float_file, tmp_path / "mixed.tflite", weight_bits={"fc1": None, "logits": 8},
                                   default_bits=4, model=trained)
    uniform = aiedge.quantize_tflite(float_file, tmp_path / "int4.tflite", weight_bits={}, default_bits=4)
    dtypes = weight_dtypes(mixed, ops)
    assert dtypes["fc1"] == "float32" and dtypes["logits"] == "int8" and dtypes["block1_conv1"] == "int8"
    fc1_float_bytes = 4 * np.prod(ops["fc1"].weight_shape)
    assert mixed.stat().st_size - uniform.stat().st_size > 0.8 * (fc1_float_bytes - fc1_float_bytes / 8)
    assert accuracy(mixed, data) >= accuracy(float_file, data) - 0.05


def test_snr_falls_with_the_bit_width(trained, float_file, data, tmp_path):
    """Every layer's output is further from float at 4 bits than at 8; int2 dense layers lower only the dense SNRs."""
    _, (x, _) = data
    ops, snr = aiedge.layer_ops(trained, float_file), {}
    conv4 = {name: 4 for name, op in ops.items() if op.op == "CONV_2D"}
    for key, weight_bits, bits in (("8", {}, 8), ("4", {}, 4), ("2_dense", conv4, 2)):
        path = aiedge.quantize_tflite(float_file, tmp_path / f"w{key}.tflite", weight_bits=weight_bits,
                                      default_bits=bits, model=trained, dynamic=True)
        snr[key] = {row["layer"]: row["snr_db"] for row in aiedge.tensor_snr(float_file, path, x, trained)}
    assert list(snr["8"]) == KERNELS and min(snr["8"].values()) > 25
    for layer in KERNELS:
        assert snr["8"][layer] > snr["4"][layer] + 6  # about 6 dB per bit
    for layer in KERNELS[:6]:
        assert snr["2_dense"][layer] == pytest.approx(snr["4"][layer], abs=0.01)
    for layer in ("fc1", "logits"):
        assert snr["2_dense"][layer] < snr["4"][layer] - 3


def test_static_int8_activations_need_calibration(float_file):
    with pytest.raises(QuantizationError, match="need calibration images"):
        aiedge.quantize_tflite(float_file, float_file.with_name("x.tflite"), weight_bits={}, default_bits=4,
                               activation_bits=8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight_bits={"nope": 4}, default_bits=4), "names nope, which are not weighted layers.*valid: block1_conv1"),
    (dict(weight_bits={}, default_bits=3), "3-bit weights are not supported"),
    (dict(weight_bits={}, default_bits=4, activation_bits=4), "4-bit activations are not supported"),
])
def test_bad_widths_and_names_are_one_line_errors(trained, float_file, tmp_path, kwargs, message):
    with pytest.raises(QuantizationError, match=message):
        aiedge.quantize_tflite(float_file, tmp_path / "out.tflite", model=trained, **kwargs)
    assert not list(tmp_path.iterdir())


def test_layer_names_need_the_model(float_file, tmp_path):
    with pytest.raises(QuantizationError, match="pass model="):
        aiedge.quantize_tflite(float_file, tmp_path / "out.tflite", weight_bits={"fc1": 2}, default_bits=4)


def test_op_without_a_sub_8_bit_config_is_named(tmp_path):
    """ai-edge-quantizer has no int4 config for depthwise convolutions: the error names the layer."""
    import keras

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))
    path = quantize(model, ["float32"], np.zeros((2, 12, 12, 1), np.float32), tmp_path)["float32"]
    with pytest.raises(QuantizationError, match="layer depthwise: ai-edge-quantizer cannot give DEPTHWISE_CONV_2D"):
        aiedge.quantize_tflite(path, tmp_path / "out.tflite", weight_bits={"depthwise": 4}, default_bits=8,
                               model=model)


def test_unreadable_tflite_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(ArtifactError, match="not a valid LiteRT model"):
        aiedge.quantize_tflite(bad, tmp_path / "out.tflite", weight_bits={}, default_bits=4)


def test_qat_int4_fine_tunes_only_the_kernels(trained, data):
    from quantization import qat

    (x, y), _ = data
    tuned = qat.fine_tune(trained, x[:512], y[:512], epochs=1, weight_bits=4)
    wrapped = sorted(layer.layer.name for layer in tuned.layers if hasattr(layer, "layer"))
    assert wrapped == sorted(KERNELS)  # no activation fake-quant: the deployed int4 model keeps float activations
    weights = qat.float_weights(trained, tuned)
    before, after = trained.get_layer("fc1").get_weights()[0], weights.get_layer("fc1").get_weights()[0]
    assert before.shape == after.shape and 0 < np.abs(after - before).max() < 0.1


@pytest.mark.slow
def test_every_aiedge_variant_end_to_end(trained, data, tmp_path):
    """All five ai-edge-quantizer variants through run_pipeline: produced, runnable, scored, within tolerance."""
    (x, y), (x_test, y_test) = data
    out = run_pipeline(trained, ((x, y), (x_test, y_test)), tmp_path / "report", variants=["float32", *AIEDGE])
    results = json.loads((out / "report.json").read_text())
    assert results["failed"] == {} and list(results["variants"]) == ["float32", *AIEDGE]
    scores = results["variants"]
    float_size = scores["float32"]["size_bytes"]
    for name in ("int4", "dynamic_int4", "w4a8", "qat_int4"):
        assert scores[name]["size_bytes"] < 0.2 * float_size
        assert scores[name]["accuracy"] >= scores["float32"]["accuracy"] - 0.05
    assert scores["int2_dense"]["size_bytes"] < scores["int4"]["size_bytes"]
    assert scores["int2_dense"]["accuracy"] > 0.2  # int2 dense layers lose much, but still far above chance


def test_cli_exits_1_and_names_the_variant_that_failed(tmp_path, capsys):
    """qat_int8 cannot annotate GaussianNoise: float32 is still produced, the run exits 1 with the reason."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.GaussianNoise(0.1, name="noise")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="fc")(x)).save(tmp_path / "m.keras")
    code = cli_main(["quantize", str(tmp_path / "m.keras"), "--dataset", "mnist", "--variants", "float32,qat_int8",
                     "--limit", "200", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "kdeep: variant qat_int8 failed: QAT: tfmot cannot annotate" in captured.err
    assert "qat_int8 not produced" in captured.out and (tmp_path / "out" / "float32.tflite").is_file()
