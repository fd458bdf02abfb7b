"""Short real-MNIST runs: learning, run-directory artifacts, evaluation, NaN stop, mixed precision."""
import csv
import json

import keras
import numpy as np
import pytest

import kdeep.train
from kdeep import scoring
from kdeep.cli import main
from kdeep.errors import TrainingError
from kdeep.train import TrainConfig
from kdeep.train import run_dir as rd
from kdeep.train.trainer import averaged_weights, epochs_since_best, stops_early


@pytest.fixture(scope="module")
def small_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:2400], y_train[:2400]), (x_test[:1000], y_test[:1000])


@pytest.fixture(scope="module")
def trained(small_mnist, tmp_path_factory):
    config = TrainConfig(epochs=3, batch_size=32, lr=2e-3, val_split=400, select="best", seed=1,
                         out=str(tmp_path_factory.mktemp("run")))
    return kdeep.train.fit("deepconvnet", small_mnist, config=config, verbose=0)


@pytest.mark.slow
def test_loss_decreases_and_accuracy_is_far_above_chance(trained):
    losses = [row["loss"] for row in trained.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert trained.metrics["test_accuracy"] > 0.5  # chance is 0.1
    assert trained.metrics["train_images"] == 2000 and trained.metrics["val_images"] == 400


@pytest.mark.slow
def test_run_directory_holds_every_artifact(trained, small_mnist):
    names = {path.name for path in trained.dir.iterdir()}
    assert {rd.CONFIG, rd.MODEL, rd.LAST, rd.BEST, rd.HISTORY, rd.METRICS, rd.LOGS} <= names
    assert not [name for name in names if "tmp" in name]
    metrics = json.loads((trained.dir / rd.METRICS).read_text())
    for key in ("test_accuracy", "test_loss", "params", "epochs_completed", "train_seconds", "images_per_second"):
        assert metrics[key] is not None, key
    assert metrics["params"] == 123552 and metrics["epochs_completed"] == 3
    with open(trained.dir / rd.HISTORY) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and "val_accuracy" in rows[0] and "lr" in rows[0]
    best = max(trained.history, key=lambda row: row["val_accuracy"])["epoch"]
    assert metrics["selected_epoch"] == best  # chosen on validation accuracy, never on the test set
    assert list((trained.dir / rd.LOGS / "train").glob("events.out.tfevents.*"))
    for name in (rd.MODEL, rd.LAST, rd.BEST):
        assert isinstance(keras.saving.load_model(trained.dir / name), keras.Model)
    again = scoring.score(trained.dir, small_mnist)
    assert again.accuracy == pytest.approx(metrics["test_accuracy"])
    confusion = np.array(again.confusion_matrix)
    assert confusion.sum() == 1000 and np.trace(confusion) / 1000 == pytest.approx(again.accuracy)


@pytest.mark.slow
def test_cli_evaluate_json(trained, capsys):
    assert main(["evaluate", str(trained.dir / rd.MODEL), "--dataset", "mnist", "--limit", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 500 and len(result["per_class_accuracy"]) == 10


class _PoisonAtEpoch2(keras.callbacks.Callback):
    """NaN weights in the last layer from epoch 2 on (an earlier layer's NaNs can vanish in a fused ReLU: oneDNN's
    AVX-512 kernels give max(NaN, 0) = 0)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            kernel = self.model.get_layer("logits").kernel
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))


@pytest.mark.slow
def test_nan_loss_stops_with_clear_error_and_keeps_last_good_epoch(small_mnist, tmp_path):
    config = TrainConfig(epochs=3, batch_size=100, limit=300, val_split=0, out=str(tmp_path))
    with pytest.raises(TrainingError, match="loss became nan in epoch 2"):
        kdeep.train.fit("deepconvnet", small_mnist, config=config, callbacks=[_PoisonAtEpoch2()], verbose=0)
    assert json.loads((tmp_path / rd.STATE).read_text())["epochs_completed"] == 1
    last = keras.saving.load_model(tmp_path / rd.LAST)
    assert all(np.isfinite(w).all() for w in last.get_weights())
    assert not (tmp_path / rd.MODEL).exists()


@pytest.mark.slow
def test_epochs_since_best_counts_from_the_first_best_validation_accuracy():
    rows = [{"epoch": e, "val_accuracy": a} for e, a in enumerate([0.90, 0.95, 0.94, 0.95], start=1)]
    assert epochs_since_best(rows) == 2  # a tie with the best is no improvement
    assert epochs_since_best(rows[:2]) == 0
    assert epochs_since_best([{"epoch": 1, "loss": 0.3}]) == 0  # no validation: never stale
    assert stops_early(rows, 2) and not stops_early(rows, 3)
    assert not stops_early(rows, 0)


@pytest.mark.slow
def test_early_stopping_ends_the_run_and_a_rerun_does_not_train_on(small_mnist, tmp_path):
    # At lr 1e-12 Adam's steps vanish below float32 resolution: validation accuracy cannot improve after epoch 1.
    config = TrainConfig(epochs=6, batch_size=100, lr=1e-12, limit=500, val_split=100, early_stopping=2,
                         out=str(tmp_path))
    run = kdeep.train.fit("deepconvnet", small_mnist, config=config, verbose=0)
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    assert len({row["val_accuracy"] for row in run.history}) == 1
    assert run.metrics["epochs_completed"] == 3 and run.metrics["stopped_early"] is True
    checkpoint = (tmp_path / rd.LAST).stat().st_mtime_ns
    again = kdeep.train.fit("deepconvnet", small_mnist, config=config, verbose=0)
    assert [row["epoch"] for row in again.history] == [1, 2, 3]
    assert (tmp_path / rd.LAST).stat().st_mtime_ns == checkpoint  # no epoch 4 was trained
    assert again.metrics["epochs_completed"] == 3 and again.metrics["stopped_early"] is True


class _WeightsAfterEachStep(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([v.numpy().copy() for v in self.model.trainable_variables])


def _running_averages(steps, momentum):
    """The EMA of the weights after each step, as Keras keeps it: the first step's weights, then m*a + (1-m)*w."""
    averages = [steps[0]]
    for weights in steps[1:]:
        averages.append([momentum * a + (1 - momentum) * w for a, w in zip(averages[-1], weights)])
    return averages


def _assert_weights_equal(expected, variables, rtol=1e-4, atol=1e-6):
    for want, got in zip(expected, variables, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=rtol, atol=atol)


@pytest.mark.slow
def test_ema_final_model_is_the_moving_average_of_the_weights_and_survives_resume(small_mnist, tmp_path):
    momentum = 0.6
    config = TrainConfig(epochs=2, batch_size=100, limit=300, val_split=0, ema=momentum, out=str(tmp_path))
    recorder = _WeightsAfterEachStep()
    run = kdeep.train.fit("deepconvnet", small_mnist, config=config, callbacks=[recorder], verbose=0)
    assert len(recorder.steps) == 6
    average = _running_averages(recorder.steps, momentum)[-1]
    _assert_weights_equal(average, run.model.trainable_variables)
    saved = keras.saving.load_model(tmp_path / rd.MODEL)
    _assert_weights_equal(average, saved.trainable_variables)
    raw = keras.saving.load_model(tmp_path / rd.LAST)  # the resume point keeps the raw weights
    _assert_weights_equal(recorder.steps[-1], raw.trainable_variables, rtol=1e-6, atol=0)
    assert not np.allclose(raw.get_layer("fc1").kernel.numpy(), saved.get_layer("fc1").kernel.numpy())

    (tmp_path / rd.MODEL).unlink()  # a crash after the last epoch: the rerun rebuilds the average from last.keras
    (tmp_path / rd.METRICS).unlink()
    again = kdeep.train.fit("deepconvnet", small_mnist, config=config, verbose=0)
    _assert_weights_equal(average, again.model.trainable_variables)
    assert again.metrics["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])


@pytest.mark.slow
def test_ema_validation_scores_and_best_checkpoint_hold_the_averaged_weights(small_mnist, tmp_path):
    momentum = 0.6
    config = TrainConfig(epochs=3, batch_size=100, limit=400, val_split=100, ema=momentum, select="best",
                         out=str(tmp_path))
    recorder = _WeightsAfterEachStep()
    run = kdeep.train.fit("deepconvnet", small_mnist, config=config, callbacks=[recorder], verbose=0)
    assert len(recorder.steps) == 9  # 300 training images, batches of 100, 3 epochs
    averages = _running_averages(recorder.steps, momentum)[2::3]  # after each epoch's 3rd step
    x_val, y_val = small_mnist[0][0][300:400], small_mnist[0][1][300:400]
    scored = keras.saving.load_model(tmp_path / rd.LAST)
    for row, epoch_average, raw in zip(run.history, averages, recorder.steps[2::3], strict=True):
        for variable, value in zip(scored.trainable_variables, raw):
            variable.assign(value)
        raw_loss = scoring.score(scored, (x_val, y_val)).loss
        for variable, value in zip(scored.trainable_variables, epoch_average):
            variable.assign(value)
        assert row["val_loss"] == pytest.approx(scoring.score(scored, (x_val, y_val)).loss, rel=1e-3)
        assert row["val_loss"] != pytest.approx(raw_loss, rel=1e-3)  # validation did not score the raw weights
    best = run.metrics["selected_epoch"]
    assert run.metrics["val_accuracy"] == max(row["val_accuracy"] for row in run.history)
    _assert_weights_equal(averages[best - 1], keras.saving.load_model(tmp_path / rd.MODEL).trainable_variables)
    _assert_weights_equal(recorder.steps[-1], keras.saving.load_model(tmp_path / rd.LAST).trainable_variables)


class _AveragedAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with averaged_weights(self.model) as model:
            self.inside = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        self.after = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])  # mixed_float16: a LossScaleOptimizer
def test_averaged_weights_holds_the_moving_average_inside_and_the_raw_weights_after(small_mnist, tmp_path,
                                                                                    precision):
    momentum = 0.6
    # 3 steps of 32 images, scored on 100 (a float16 step of 100 images takes ~9 s on a 2-core CPU)
    config = TrainConfig(epochs=1, batch_size=32, limit=96, val_split=0, ema=momentum, mixed_precision=precision,
                         out=str(tmp_path))
    recorder, probe = _WeightsAfterEachStep(), _AveragedAtEpochEnd()
    (x_train, y_train), (x_test, y_test) = small_mnist
    kdeep.train.fit("deepconvnet", ((x_train, y_train), (x_test[:100], y_test[:100])), config=config,
                    callbacks=[recorder, probe], verbose=0)
    assert len(recorder.steps) == 3
    _assert_weights_equal(_running_averages(recorder.steps, momentum)[-1], probe.inside)
    _assert_weights_equal(recorder.steps[-1], probe.after, rtol=0, atol=0)
    assert not np.allclose(probe.inside[-2], probe.after[-2])

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("adam", "mse")
    before = [v.numpy().copy() for v in plain.trainable_variables]
    with averaged_weights(plain) as same:  # no average kept: nothing changes
        _assert_weights_equal(before, same.trainable_variables, rtol=0, atol=0)


@pytest.mark.slow
def test_mixed_precision_keeps_float32_output(small_mnist, tmp_path):
    config = TrainConfig(epochs=1, batch_size=32, limit=64, val_split=0, mixed_precision="mixed_float16",
                         out=str(tmp_path))
    run = kdeep.train.fit("deepconvnet", small_mnist, config=config, verbose=0)
    assert run.model.get_layer("block1_conv1").compute_dtype == "float16"
    assert isinstance(run.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert run.model.outputs[0].dtype == "float32"
    assert run.model.predict(small_mnist[1][0][:4] / 255.0, verbose=0).dtype == np.float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
