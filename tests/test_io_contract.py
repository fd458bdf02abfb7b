"""The artifact layer (kdeep.io) and the model contract (kdeep.contract) on real models and MNIST."""
import dataclasses
import os
import zipfile

import keras
import numpy as np
import pytest

import kdeep.models
from kdeep import io
from kdeep.contract import Contract, attach, contract_of, infer, probabilities
from kdeep.errors import ArtifactError


def test_atomic_write_keeps_the_old_file_when_the_write_fails_and_leaves_no_temp(tmp_path):
    target = io.write_atomic(tmp_path / "report.json", "old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), io.atomic_path(target) as temp:
        temp.write_text("half of the new cont")
        raise Boom
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_writes_take_the_mode_from_the_umask_and_unique_temp_names(tmp_path):
    old = os.umask(0o027)
    try:
        path = io.write_json(tmp_path / "a" / "metrics.json", {"accuracy": np.float32(0.5)})
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    assert io.read_json(path, "rerun") == {"accuracy": 0.5}
    with io.atomic_path(tmp_path / "x.csv") as first, io.atomic_path(tmp_path / "x.csv") as second:
        assert first != second and first.suffix == second.suffix == ".csv"
        first.write_text("1")
        second.write_text("2")
    assert (tmp_path / "x.csv").read_text() == "1"  # the last to finish wins; neither is ever half there


def test_write_csv_and_read_json_errors(tmp_path):
    io.write_csv(tmp_path / "h.csv", [{"epoch": 1, "loss": 0.5}, {"epoch": 2}], ["epoch", "loss"])
    assert (tmp_path / "h.csv").read_text() == "epoch,loss\n1,0.5\n2,\n"
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ArtifactError, match=r"bad.json is unreadable .*: delete it"):
        io.read_json(tmp_path / "bad.json", "delete it")


def test_a_built_model_carries_its_contract_and_the_keras_file_keeps_it(tmp_path):
    model = kdeep.models.build("resnet20", input_shape=(28, 28, 1), classifier_activation=None)
    contract = contract_of(model)
    assert contract.output == "logits" and contract.family == "cifar_resnet"
    assert contract.classifier[0] == "logits" and contract.classifier[-1] == "predictions"
    assert contract.blocks[0] == "stem" and contract.blocks[-1] == "stage3" and "logits" not in contract.blocks
    custom = attach(model, Contract(input_range=(-1.0, 1.0), output="logits", classifier=contract.classifier,
                                    blocks=contract.blocks, family="cifar_resnet", width=0.5))
    path = io.save_model(custom, tmp_path / "model.keras")
    with zipfile.ZipFile(path) as archive:
        assert io.CONTRACT_ENTRY in archive.namelist()
    loaded = io.load_model(tmp_path)  # a run directory resolves to its model.keras
    assert contract_of(loaded) == contract_of(custom)
    assert contract_of(loaded).input_range == (-1.0, 1.0) and contract_of(loaded).width == 0.5


def test_transfer_and_strategy_clones_keep_the_backbones_input_range():
    from kdeep.train.finetune import new_head
    from kdeep.train.trainer import _build
    from kdeep.train.config import TrainConfig

    backbone = kdeep.models.build("deepconvnet")
    attach(backbone, dataclasses.replace(contract_of(backbone), input_range=(-1.0, 1.0)))
    head = new_head(backbone, 5)
    assert contract_of(head).input_range == (-1.0, 1.0) and contract_of(head).classifier[0] == "transfer_logits"
    import tensorflow as tf

    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        clone = _build(backbone, TrainConfig(), (28, 28, 1), 10, None)
    assert clone is not backbone and contract_of(clone).input_range == (-1.0, 1.0)


def test_a_model_from_elsewhere_gets_an_inferred_contract():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="block1_conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    contract = infer(keras.Model(inputs, outputs))
    assert contract.output == "probabilities"
    assert contract.classifier == ("fc", "head") and contract.blocks == ("block1",)
    logits = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    assert infer(logits).output == "logits"


def test_probabilities_follow_the_contract_not_the_numbers():
    rows = np.array([[0.2, 0.3, 0.5], [2.0, 0.0, -1.0]], np.float32)
    assert np.array_equal(probabilities(rows, "probabilities"), rows)
    soft = probabilities(rows, "logits")
    assert np.allclose(soft.sum(axis=1), 1.0) and soft[1].argmax() == 0
    assert not np.allclose(soft[0], rows[0])  # a logit row that happens to sum to 1 is still softmaxed


def test_load_model_errors_are_one_line(tmp_path):
    good = io.save_model(kdeep.models.build("deepconvnet"), tmp_path / "good.keras")
    (tmp_path / "cut.keras").write_bytes(good.read_bytes()[:1500])
    for path, pattern in ((tmp_path / "missing.keras", "no model at"),
                          (tmp_path / "cut.keras", "not a readable Keras model"),
                          (tmp_path / "empty", "holds no model.keras or ensemble.keras")):
        if path.name == "empty":
            path.mkdir()
        with pytest.raises(ArtifactError, match=pattern) as error:
            io.load_model(path)
        assert "\n" not in str(error.value)
    assert io.resolve_model(good, tflite=True) == good


@pytest.mark.slow
def test_the_contract_input_range_reaches_the_pipeline_training_and_evaluation(mnist, tmp_path, monkeypatch):
    """A model whose contract says (-1, 1) gets images in [-1, 1] from the pipeline, the evaluator and the trainer."""
    import kdeep.data
    import kdeep.train
    from kdeep.scoring import predict

    (x_train, y_train), (x_test, y_test) = mnist
    images, _ = next(iter(kdeep.data.pipeline(x_test[:64], y_test[:64], 64, shuffle=False, input_range=(-1, 1))))
    assert float(images.numpy().min()) == -1.0 and float(images.numpy().max()) == 1.0

    inputs = keras.Input((28, 28, 1))
    lowest = keras.layers.Lambda(lambda x: keras.ops.min(x, axis=(1, 2, 3), keepdims=False)[:, None])(inputs)
    echo = keras.Model(inputs, keras.layers.Lambda(lambda m: keras.ops.tile(m, (1, 10)))(lowest))
    attach(echo, Contract(input_range=(-1.0, 1.0), output="probabilities"))
    assert np.allclose(predict(echo, x_test[:20])[:, 0], -1.0)  # black pixels arrive as -1, not 0

    ranges = []
    original = kdeep.data.pipeline

    def spy(*args, **kwargs):
        ranges.append(kwargs.get("input_range"))
        return original(*args, **kwargs)

    monkeypatch.setattr(kdeep.data, "pipeline", spy)
    net = kdeep.models.build("deepconvnet", dropout=0.0)
    attach(net, dataclasses.replace(contract_of(net), input_range=(-1.0, 1.0)))
    config = kdeep.train.TrainConfig(epochs=1, batch_size=50, limit=100, val_split=0, out=str(tmp_path / "run"))
    run = kdeep.train.fit(net, ((x_train, y_train), (x_test[:50], y_test[:50])), config=config, verbose=0)
    assert ranges and set(ranges) == {(-1.0, 1.0)}  # training and the test evaluation
    assert contract_of(io.load_model(run.dir)).input_range == (-1.0, 1.0)
