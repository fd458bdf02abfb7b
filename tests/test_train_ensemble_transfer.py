"""Ensembles average their members' softmax outputs; transfer freezes the backbone, then unfreezes the top blocks."""
import json

import keras
import numpy as np
import pytest

import kdeep.models
from kdeep.errors import ConfigError
from kdeep.train import TrainConfig, fit
from kdeep.train import run_dir as rd
from kdeep.train.ensemble import build_ensemble, fit_ensemble
from kdeep.train.finetune import new_head, transfer, unfreeze_top


@pytest.fixture(scope="module")
def tiny_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:200], y_train[:200]), (x_test[:300], y_test[:300])


@pytest.mark.slow
def test_ensemble_output_is_the_mean_of_member_outputs(tiny_mnist, tmp_path):
    run = fit_ensemble("deepconvnet", tiny_mnist, members=2, verbose=0,
                       config=TrainConfig(epochs=1, batch_size=50, val_split=0, out=str(tmp_path)))
    loaded = keras.saving.load_model(tmp_path / rd.ENSEMBLE)
    members = [keras.saving.load_model(tmp_path / f"member{i}" / rd.MODEL) for i in (1, 2)]
    x, y = tiny_mnist[1][0].astype("float32") / 255, tiny_mnist[1][1]
    expected = np.mean([member.predict(x, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    metrics = json.loads((tmp_path / rd.METRICS).read_text())
    assert [m["seed"] for m in metrics["members"]] == [0, 1] and metrics["params"] == 2 * 123552
    assert run.metrics["test_accuracy"] == metrics["test_accuracy"]
    assert metrics["test_accuracy"] == pytest.approx(float((expected.argmax(1) == y).mean()))
    with pytest.raises(Exception, match="shapes"):
        build_ensemble([members[0], kdeep.models.build("deepconvnet", num_classes=5)])


def _weights(model, names):
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in names}


def _changed(before, model):
    return {name for name, ws in before.items()
            if any(not np.array_equal(a, b) for a, b in zip(ws, model.get_layer(name).get_weights()))}


@pytest.mark.slow
def test_transfer_freezes_backbone_then_unfreezes_top_block(fashion_mnist, tmp_path):
    source = tmp_path / "mnist_model.keras"
    kdeep.models.build("deepconvnet").save(source)  # any .keras file works
    backbone = keras.saving.load_model(source)
    convs = [f"block{b}_conv{c}" for b in (1, 2, 3) for c in (1, 2)]
    before = _weights(backbone, convs)
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    data = (x_train[:200], y_train[:200]), (x_test[:200], y_test[:200])
    config = TrainConfig(epochs=1, batch_size=50, val_split=0, out=str(tmp_path / "transfer"))
    run = transfer(source, 10, data, config=config, unfreeze_blocks=1, verbose=0)

    head = keras.saving.load_model(tmp_path / "transfer" / "head" / rd.MODEL)
    assert _changed(before, head) == set()  # phase 1: backbone frozen
    assert not any(head.get_layer(name).trainable for name in convs)
    assert "fc1" not in {layer.name for layer in head.layers}  # the book's affine layers are the replaced head
    assert head.get_layer("transfer_logits").trainable and run.metrics["unfrozen_blocks"] == ["block3"]
    assert _changed(before, run.model) == {"block3_conv1", "block3_conv2"}  # phase 2: top block + head only
    assert not np.array_equal(head.get_layer("transfer_logits").get_weights()[0],
                              run.model.get_layer("transfer_logits").get_weights()[0])
    images, labels = data[1][0].astype("float32") / 255.0, data[1][1]
    head_accuracy = float((head.predict(images, verbose=0).argmax(axis=1) == labels).mean())
    assert json.loads((tmp_path / "transfer" / rd.METRICS).read_text())["head_test_accuracy"] == pytest.approx(
        head_accuracy, abs=1e-6)  # the frozen-backbone phase's own score, not the final model's


@pytest.mark.slow
def test_transfer_adapts_a_backbone_for_32x32_rgb_to_28x28_grey_images(fashion_mnist, tmp_path):
    source = tmp_path / "rgb32.keras"
    kdeep.models.build("deepconvnet", input_shape=(32, 32, 3)).save(source)
    backbone = keras.saving.load_model(source)
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    data = (x_train[:200], y_train[:200]), (x_test[:200], y_test[:200])
    config = TrainConfig(epochs=1, batch_size=50, val_split=0, out=str(tmp_path / "transfer"))
    run = transfer(source, 10, data, config=config, unfreeze_blocks=1, verbose=0)
    assert run.model.input_shape == (None, 28, 28, 1) and run.metrics["unfrozen_blocks"] == ["block3"]

    head = keras.saving.load_model(tmp_path / "transfer" / "head" / rd.MODEL)  # phase 1: the backbone unchanged
    images = x_test[:8].astype("float32") / 255.0
    rgb32 = np.repeat(keras.ops.convert_to_numpy(keras.ops.image.resize(images, (32, 32))), 3, axis=-1)
    features = keras.Model(backbone.input, backbone.get_layer("fc1").input).predict(rgb32, verbose=0)
    assert features.std(axis=0).mean() > 1e-3  # real features, so the comparison below can fail
    kernel, bias = head.get_layer("transfer_logits").get_weights()
    logits = features @ kernel + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(head.predict(images, verbose=0), expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_keras_application_gets_the_input_adapter_and_numbered_blocks():
    application = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    model = new_head(application, 5, image_shape=(28, 28, 1))
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 5)
    assert [layer.name for layer in model.layers[1:3]] == ["adapter_resize", "adapter_rgb"]
    assert unfreeze_top(model, 2) == ["Conv_1", "block_16"]  # not one "block" holding all 16 blocks
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert trainable == {name for name in (layer.name for layer in model.layers if layer.weights)
                         if name.startswith(("Conv_1", "block_16_", "transfer_"))}


@pytest.mark.slow
def test_fit_refuses_a_model_for_other_images_in_one_line(fashion_mnist, tmp_path):
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    (x_train, y_train), test = fashion_mnist
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(32, 32, 3\) and the dataset's images are "
                                          r"\(28, 28, 1\): .* kdeep finetune"):
        fit(model, ((x_train[:100], y_train[:100]), test), config=TrainConfig(epochs=1, val_split=0,
                                                                               out=str(tmp_path)), verbose=0)
