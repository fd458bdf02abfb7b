"""The model zoo's residual (Add) and Inception (Concatenate) nets: full-int8 conversion and the exact QAT twin."""
import numpy as np
import pytest

import kdeep.models
from quantization import quantize
from quantization import litert
from quantization.qat import TWIN_TOLERANCE, annotate, twin

# (model, input shape, build options, the merge op that must survive full-int8 conversion)
NETS = {
    "resnet20": ((28, 28, 1), {}, "ADD"),
    "googlenet": ((16, 16, 3), {"stem": "small"}, "CONCATENATION"),
}


def _build(name):
    shape, options, _ = NETS[name]
    model = kdeep.models.build(name, input_shape=shape, num_classes=10, **options)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # move BatchNorm statistics off their identity start, so the twin must copy them
        if "BatchNormalization" in type(layer).__name__:
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma * 1.5, beta + 0.1, rng.normal(0, 0.1, mean.shape), variance * 2 + 0.1])
    return model, rng.random((16, *shape), dtype=np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_full_int8_conversion(name, tmp_path):
    model, images = _build(name)
    done = quantize(model, ["int8"], images, tmp_path)
    runner = litert.open_model(done["int8"])
    ops = {op["op_name"] for op in runner.ops()}
    assert NETS[name][2] in ops
    assert np.dtype(np.float32) not in {np.dtype(t["dtype"]) for t in runner.tensor_details()}
    detail = runner.input_detail()
    assert detail["dtype"] == np.int8
    assert runner.run(np.zeros(detail["shape"], np.float32)).shape == (1, 10)


@pytest.mark.parametrize("name", ["deepconvnet", "deepconvnet_book",
                                  *(pytest.param(name, marks=pytest.mark.slow) for name in NETS)])
def test_qat_twin_equals_keras3_model(name):
    if name.startswith("deepconvnet"):
        model = kdeep.models.build(name, input_shape=(28, 28, 1), num_classes=10)
        images = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    else:
        model, images = _build(name)
    twin_model = twin(model, images[:2])
    assert type(twin_model).__module__.startswith("tf_keras")
    assert [layer.name for layer in twin_model.layers] == [layer.name for layer in model.layers]
    expected = np.asarray(model(images, training=False))
    # equal up to float32 summation order (oneDNN may split reductions differently between calls under load)
    assert np.max(np.abs(twin_model(images, training=False).numpy() - expected)) <= TWIN_TOLERANCE


@pytest.mark.slow
def test_book_dropout_rescaling_gets_annotated_for_qat():
    model = kdeep.models.build("deepconvnet_book")
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    layers = {layer.name: type(layer).__name__ for layer in annotate(twin(model, images)).layers}
    assert layers["quant_fc1_dropout_scale"] == layers["quant_logits_dropout_scale"] == "QuantizeWrapperV2"
    assert layers["quant_fc1"] == "QuantizeWrapperV2"
