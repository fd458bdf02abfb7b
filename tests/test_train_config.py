"""TrainConfig, recipes, config.json round trips, refusal of a different config, CLI errors (no training)."""
import json

import pytest

from kdeep.cli import main
from kdeep.errors import ConfigError
from kdeep.train import RECIPES, TrainConfig
from kdeep.train import run_dir as rd


def test_recipes_set_their_fields_and_flags_override_them():
    book = TrainConfig.from_recipe("book")
    assert (book.optimizer, book.lr, book.batch_size, book.epochs, book.augment) == ("adam", 1e-3, 100, 20, None)
    assert TrainConfig.from_recipe("augmented").augment == "digits"
    assert TrainConfig.from_recipe("augmented").schedule != "constant"
    assert TrainConfig.from_recipe("fast", epochs=7, lr=None).epochs == 7  # None = flag not given
    assert TrainConfig.from_recipe("fast", lr=None).lr == RECIPES["fast"]["lr"]
    with pytest.raises(ConfigError, match="unknown recipe"):
        TrainConfig.from_recipe("slow")


@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("schedule", "linear"), ("epochs", 0),
                                          ("mixed_precision", "float16"), ("val_split", -1), ("label_smoothing", 1.0),
                                          ("strategy", "tpu"), ("ema", 1.0), ("ema", -0.5),
                                          ("early_stopping", -1)])
def test_bad_values_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_select_best_and_early_stopping_need_validation():
    with pytest.raises(ConfigError, match="val_split"):
        TrainConfig(select="best", val_split=0)
    with pytest.raises(ConfigError, match="early_stopping watches validation accuracy: set val_split > 0"):
        TrainConfig(early_stopping=3, val_split=0)


def test_val_split_default_is_5000_for_mnist_sized_sets():
    from kdeep.data import validation_count

    assert validation_count(TrainConfig().val_split, 60000) == 5000
    assert validation_count(TrainConfig().val_split, 1000) == 100
    assert validation_count(TrainConfig(val_split=0).val_split, 60000) == 0
    with pytest.raises(ConfigError, match="val_split=200 leaves no training images out of 200"):
        validation_count(200, 200)


def test_config_json_round_trip_and_different_config_refused(tmp_path):
    config = TrainConfig.from_recipe("fast", out=str(tmp_path))
    rd.prepare(tmp_path, config)
    assert TrainConfig.from_dict(json.loads((tmp_path / rd.CONFIG).read_text())) == config
    rd.prepare(tmp_path, TrainConfig.from_recipe("fast", out="elsewhere"))  # same config: resumes; out not compared
    with pytest.raises(ConfigError, match=r"different config \(lr: 0.003 -> 0.1\)"):
        rd.prepare(tmp_path, TrainConfig.from_recipe("fast", lr=0.1))
    assert not list(tmp_path.glob(".*tmp*"))  # no temp files left behind


def test_only_the_writing_process_creates_the_run_directory(tmp_path):
    """A multi-worker member that is not the chief checks the run directory but writes nothing there."""
    config = TrainConfig.from_recipe("fast")
    assert rd.prepare(tmp_path / "run", config, write=False) == tmp_path / "run"
    assert not (tmp_path / "run").exists()
    rd.prepare(tmp_path / "run", config)
    with pytest.raises(ConfigError, match="different config"):
        rd.prepare(tmp_path / "run", TrainConfig.from_recipe("fast", lr=0.1), write=False)


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--val-split", "-3"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kdeep: error: val_split=-3") and "\n" not in error
    assert main(["train", "--out", str(tmp_path / "r"), "--recipe", "book", "--early-stopping", "3"]) == 2
    error = capsys.readouterr().err.strip()  # the book recipe holds out no validation images
    assert error.startswith("kdeep: error: early_stopping watches validation accuracy") and "\n" not in error
    assert main(["evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "no model at" in capsys.readouterr().err
