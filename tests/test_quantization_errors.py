"""Bad inputs to quantization give one clear QuantizationError (or CLI exit 2), and no half-written files."""
import os
import types

import numpy as np
import pytest

from kdeep.cli import main as cli_main
from kdeep.errors import ArtifactError, QuantizationError
from quantization import VARIANTS, quantize, score_variant
from kdeep.io import write_atomic


@pytest.fixture(scope="module")
def small_model():
    import keras

    inputs = keras.Input((12, 12, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="fc")(x), name="small")


@pytest.fixture(scope="module")
def float32_file(small_model, tmp_path_factory):
    images = np.random.default_rng(0).random((8, 12, 12, 1), dtype=np.float32)
    return quantize(small_model, ["float32"], images, tmp_path_factory.mktemp("f32"))["float32"]


@pytest.mark.parametrize("data, message", [
    (np.zeros((0, 12, 12, 1), np.float32), "empty"),
    (np.zeros((4, 28, 28, 1), np.float32), r"shape \(4, 28, 28, 1\).*\(N, 12, 12, 1\)"),
    (np.zeros((4, 12, 12), np.float32), "shape"),
    (np.zeros((4, 12, 12, 1), np.uint8), "dtype uint8"),
    (None, "empty"),
])
def test_bad_representative_data(small_model, tmp_path, data, message):
    with pytest.raises(QuantizationError, match=message):
        quantize(small_model, ["int8"], data, tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_variant_lists_valid_names(small_model, tmp_path):
    with pytest.raises(QuantizationError, match="int3.*valid: " + ", ".join(VARIANTS)):
        quantize(small_model, "float32,int3", np.zeros((2, 12, 12, 1), np.float32), tmp_path)


def test_qat_needs_training_data(small_model, tmp_path):
    with pytest.raises(QuantizationError, match="train_data"):
        quantize(small_model, ["qat_int8"], np.zeros((2, 12, 12, 1), np.float32), tmp_path)


@pytest.mark.slow
def test_layer_tfmot_cannot_annotate_is_named_and_others_still_run(tmp_path):
    import keras

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.GaussianNoise(0.1, name="noise")(inputs)  # no tfmot 8-bit default for GaussianNoise
    x = keras.layers.Flatten(name="flat")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="fc")(x))
    images = np.random.default_rng(1).random((16, 12, 12, 1), dtype=np.float32)
    done = quantize(model, ["float32", "qat_int8"], images, tmp_path, train_data=(images, np.zeros(16, int)))
    assert list(done) == ["float32"] and done["float32"].is_file()
    assert "'noise' (GaussianNoise) is not supported by tfmot" in done.failed["qat_int8"]


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer at all" * 10])
def test_corrupt_tflite(tmp_path, content):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="not a valid LiteRT model") as error:
        score_variant(path, np.zeros((2, 12, 12, 1), np.float32), np.zeros(2))
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_truncated_tflite(float32_file, tmp_path):
    path = tmp_path / "truncated.tflite"
    path.write_bytes(float32_file.read_bytes()[:200])
    with pytest.raises(ArtifactError, match="not a valid LiteRT model"):
        score_variant(path, np.zeros((2, 12, 12, 1), np.float32), np.zeros(2))


@pytest.mark.slow
def test_missing_tflite_and_label_mismatch(float32_file, tmp_path):
    with pytest.raises(ArtifactError, match="no LiteRT model at .*nope.tflite"):
        score_variant(tmp_path / "nope.tflite", np.zeros((2, 12, 12, 1), np.float32), np.zeros(2))
    with pytest.raises(QuantizationError, match="as many labels"):
        score_variant(float32_file, np.zeros((2, 12, 12, 1), np.float32), np.zeros(3))


@pytest.mark.parametrize("make", ["text.keras", "empty_dir", "notes.txt"])
def test_path_that_is_not_a_model(tmp_path, capsys, make):
    path = tmp_path / make
    if make == "empty_dir":
        path.mkdir()
    else:
        path.write_text("hello")
    assert cli_main(["quantize", str(path), "--dataset", "mnist"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kdeep: error:") and str(path) in error and error.count("\n") == 1


def test_cli_unknown_variant(tmp_path, capsys):
    assert cli_main(["quantize", str(tmp_path), "--dataset", "mnist", "--variants", "int3"]) == 2
    assert "valid: float32" in capsys.readouterr().err


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"
    write_atomic(target, b"old")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new content")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.tflite"]


@pytest.mark.slow
def test_failed_conversion_writes_nothing(small_model, tmp_path, monkeypatch):
    import tensorflow as tf

    def crash():
        raise RuntimeError("converter crashed")

    broken = types.SimpleNamespace(target_spec=types.SimpleNamespace(), convert=crash)
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", lambda *args, **kwargs: broken)
    done = quantize(small_model, ["float32"], np.zeros((2, 12, 12, 1), np.float32), tmp_path)
    assert "converter crashed" in done.failed["float32"] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("arguments, message", [
    (dict(limit=0), "limit=0 must be an integer >= 1"),
    (dict(sweep_limit=-5), "sweep_limit=-5 must be an integer >= 1"),
    (dict(qat_epochs=-1), "qat_epochs=-1 must be an integer >= 0"),
    (dict(calibration_samples=0), "calibration_samples=0 must be an integer >= 1"),
    (dict(max_drop=0.5), "no config.json beside the model passed in says which those are; pass a run directory "
                         "trained with --val-split N"),
    (dict(max_drop=0.5, validation=(np.zeros((1, 12, 12, 1)), [0])), "validation must be .images, labels., at least 2"),
    (dict(max_drop=0.5, objective="speed"), "objective 'speed' is unknown; use one of size, latency"),
])
def test_run_pipeline_refuses_bad_counts_before_anything_runs(small_model, tmp_path, arguments, message):
    from quantization import run_pipeline

    with pytest.raises(QuantizationError, match=message):
        run_pipeline(small_model, "mnist", tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def test_max_drop_on_a_run_that_held_nothing_out_is_one_line_exit_2(small_model, tmp_path, capsys):
    """A `fast`-recipe run trained on every training image: --max-drop has no held-out image to choose on."""
    from kdeep import io
    from kdeep.train.config import TrainConfig

    run = tmp_path / "run"
    io.save_model(small_model, run / "model.keras")
    write_atomic(run / "config.json", TrainConfig.from_recipe("fast", out=str(run)).dumps())
    code = cli_main(["quantize", str(run), "--dataset", "mnist", "--max-drop", "0.3", "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "trained on every training image (config.json val_split=0 (recipe fast)); retrain with --val-split" in err
    assert not (tmp_path / "q").exists()


def test_a_file_that_fails_the_export_check_is_not_scored_and_exits_1(tmp_path, capsys, monkeypatch):
    """The check after every export: a file whose outputs are not the model's is a failed variant (exit 1), and
    no file of it is left in the report directory."""
    import keras

    from kdeep import io
    from quantization import check

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten(name="flat")(inputs)
    io.save_model(keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="fc")(x)), tmp_path / "m.keras")
    monkeypatch.setattr(check, "MIN_AGREEMENT", 1.01)  # no file can agree on more than every image ...
    monkeypatch.setattr(check, "MARGIN", 0.0)  # ... of the untrained model's, each of them decided
    code = cli_main(["quantize", str(tmp_path / "m.keras"), "--dataset", "mnist", "--variants", "float32",
                     "--limit", "50", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert ("kdeep: variant float32 failed: float32.tflite: top-1 agreement with the Keras model 100.0% on the 50 of "
            "50 real images it decides") in err
    assert "FAILED: its outputs are not the model's; not scored" in err
    assert not (tmp_path / "out" / "float32.tflite").exists()
