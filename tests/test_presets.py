"""Pretrained presets: every shipped preset scores what its card says, files are verified, names are checked."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from kdeep.errors import ModelError
from kdeep.models import presets

SHIPPED = [preset.name for preset in presets.list_presets()]
# README and docs/presets.md name these
PROMISED = {"deepconvnet_bn.mnist", "deepconvnet.mnist", "deepconvnet.mnist_book", "resnet20.fashion_mnist",
            "resnet56.fashion_mnist", "googlenet_bn.fashion_mnist", "resnet18.fashion_mnist"}


def test_the_presets_the_docs_name_ship():
    assert PROMISED <= set(SHIPPED), sorted(PROMISED - set(SHIPPED))


def test_presets_fit_in_6_mb():
    assert SHIPPED
    assert sum(path.stat().st_size for path in presets.FOLDER.iterdir()) <= 6 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_scores_its_card_on_the_test_set(name):
    from kdeep.scoring import score

    preset = presets.get(name)
    model = presets.load(name)
    assert model.count_params() == preset.params
    accuracy = score(model, preset.dataset).accuracy
    assert abs(accuracy - preset.test_accuracy) <= 0.0005, (accuracy, preset.test_accuracy)
    assert len(preset.labels) == model.outputs[0].shape[-1]


def test_build_with_a_dataset_tag_is_the_preset():
    name = "deepconvnet.mnist_book"
    import kdeep.models

    built = kdeep.models.build("deepconvnet", weights="mnist_book")
    loaded = presets.load(name)
    for a, b in zip(built.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_a_damaged_weights_file_is_refused_naming_the_fix(tmp_path, monkeypatch):
    name = "deepconvnet.mnist_book"
    for suffix in (".npz", ".json"):
        shutil.copy(presets.FOLDER / f"{name}{suffix}", tmp_path)
    data = bytearray((tmp_path / f"{name}.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / f"{name}.npz").write_bytes(bytes(data))
    monkeypatch.setattr(presets, "FOLDER", tmp_path)
    with pytest.raises(ModelError, match="damaged; reinstall kdeep"):
        presets.load(name)


def test_unknown_preset_is_one_line_with_the_valid_names_and_exit_2(capsys):
    from kdeep.cli import main

    assert main(["presets", "show", "deepconvnet.mnist_bok"]) == 2
    done = capsys.readouterr()
    assert done.out == ""
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'deepconvnet.mnist_book'" in lines[0]
    assert all(name in lines[0] for name in SHIPPED)
    with pytest.raises(ModelError, match="unknown preset"):
        presets.load("resnet20.imagenet")


def test_presets_lists_every_preset_with_its_accuracy(capsys):
    from kdeep.cli import main

    assert main(["presets", "--json"]) == 0
    cards = {card["name"]: card for card in json.loads(capsys.readouterr().out)}
    assert set(cards) == set(SHIPPED)
    assert main(["presets"]) == 0
    table = capsys.readouterr().out
    for name in SHIPPED:
        assert f"{100 * cards[name]['test_accuracy']:.2f}%" in next(line for line in table.splitlines()
                                                                    if line.startswith(name))


@pytest.mark.slow
def test_a_preset_s_recorded_command_still_trains_and_a_warm_started_run_publishes_its_chain(tmp_path):
    """The card's own command, cut to a fraction of an epoch, runs and writes a model; a run warm-started from it
    (`--init`, a clean fine-tune) publishes a card with both commands, the chain's epochs and seconds, and weights
    that score what the card says."""
    import hashlib

    from kdeep import io
    from kdeep.models import build
    from kdeep.scoring import score
    from kdeep.train.publish import publish

    preset = presets.get("deepconvnet.mnist_book")
    words = shlex.split(preset.train_command)
    assert words[:2] == ["kdeep", "train"] and " && " not in preset.train_command
    words = words[2:words.index("--out")] if "--out" in words else words[2:]
    first, second = tmp_path / "run", tmp_path / "clean"
    from kdeep.cli import main  # the command line's own entry, in this process (no second TensorFlow start-up)

    assert main(["train", *words, "--limit", "600", "--epochs", "1", "--out", str(first)]) == 0
    assert (first / "model.keras").is_file()
    assert main(["train", *words, "--limit", "600", "--epochs", "1", "--init", str(first), "--augment", "none",
                 "--lr", "2e-4", "--out", str(second)]) == 0
    card = publish(second, "deepconvnet.tiny", folder=tmp_path / "shelf")
    recorded = card.train_command.split(" && ")
    assert len(recorded) == 2 and recorded[0].endswith(f"--out {first}") and f"--init {first}" in recorded[1]
    assert "--limit 600 " in recorded[0] and "--augment" not in recorded[0] and "--init" not in recorded[0]
    assert "--augment none" in recorded[1] and "--lr 0.0002" in recorded[1]
    metrics = [io.read_json(run / "metrics.json", "") for run in (first, second)]
    assert card.epochs == 2 and card.train_seconds == pytest.approx(sum(m["train_seconds"] for m in metrics))
    stored = tmp_path / "shelf" / "deepconvnet.tiny.npz"
    assert card.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "shelf" / "deepconvnet.tiny.json").read_text())["test_accuracy"] == card.test_accuracy
    model = build("deepconvnet")
    with np.load(stored) as arrays:
        presets.assign(model, {path: arrays[path] for path in arrays.files})
    assert score(model, "mnist").accuracy == pytest.approx(card.test_accuracy, abs=1e-6)


def test_publishing_a_run_warm_started_from_a_missing_run_is_refused(tmp_path):
    """A card must record the whole chain of commands: an --init run or a teacher that cannot be found is named,
    not skipped."""
    from kdeep import io
    from kdeep.errors import ConfigError
    from kdeep.train import TrainConfig
    from kdeep.train.publish import publish

    run = tmp_path / "run"
    run.mkdir()
    io.write_json(run / "config.json", TrainConfig.from_recipe("book", init="gone/run0", out=str(run)).to_dict())
    io.write_json(run / "metrics.json", {"train_seconds": 1.0, "epochs_completed": 1, "test_accuracy": 0.5})
    with pytest.raises(ConfigError, match=r"warm-started from --init 'gone/run0', which is not found from here"):
        publish(run, "deepconvnet.tiny", folder=tmp_path / "shelf")
    io.write_json(run / "config.json", TrainConfig.from_recipe("book", teacher="deepconvnet.mnist,gone/teacher",
                                                               out=str(run)).to_dict())
    with pytest.raises(ConfigError, match=r"distilled from --teacher 'gone/teacher', which is not found from here"):
        publish(run, "deepconvnet.tiny", folder=tmp_path / "shelf")
    assert not (tmp_path / "shelf").exists()


def test_a_near_miss_names_the_closest_preset():
    with pytest.raises(ModelError, match="did you mean 'resnet20.fashion_mnist'"):
        presets.get("resnet20.fashion")


@pytest.mark.slow
def test_predict_with_a_preset_needs_no_data_and_no_training(tmp_path, fashion_mnist):
    """A fresh, offline install: `kdeep predict resnet20.fashion_mnist *.png` with no dataset anywhere."""
    from PIL import Image

    from kdeep.scoring import predict

    (_, _), (x_test, y_test) = fashion_mnist
    paths = []
    for i in range(16):
        paths.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(x_test[i, :, :, 0]).convert("RGB").resize((64, 64)).save(paths[-1])
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {**os.environ, "KDEEP_DATA_DIR": str(empty), "HOME": str(empty)}
    done = subprocess.run([sys.executable, "-m", "kdeep", "predict", "resnet20.fashion_mnist", *map(str, paths),
                           "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    labels = presets.get("resnet20.fashion_mnist").labels
    predicted = [labels.index(row["top"][0]["label"]) for row in json.loads(done.stdout)["predictions"]]
    keras_labels = predict(presets.load("resnet20.fashion_mnist"), x_test[:16]).argmax(axis=1).tolist()
    assert sum(a == b for a, b in zip(predicted, keras_labels)) >= 15  # PNG at 64x64 resized back to 28x28
    assert sum(a == b for a, b in zip(predicted, y_test[:16].tolist())) >= 13


@pytest.mark.slow
def test_a_run_can_start_from_a_preset_and_refuses_another_model(tmp_path, mnist):
    """--init: the run starts from the preset's weights (a fresh DeepConvNet scores chance after two steps at this
    rate); weights of another model are refused before the run directory is written."""
    from kdeep.errors import ConfigError
    from kdeep.scoring import score
    from kdeep.train import TrainConfig, fit

    (x_train, y_train), (x_test, y_test) = mnist
    small = ((x_train[:200], y_train[:200]), (x_test[:1000], y_test[:1000]))
    start = score(presets.load("deepconvnet.mnist_book"), small[1]).accuracy
    config = TrainConfig.from_recipe("book", init="deepconvnet.mnist_book", epochs=1, lr=1e-7,
                                     out=str(tmp_path / "warm"))
    warm = fit("deepconvnet", small, config=config, verbose=0)
    assert start > 0.98 and abs(warm.metrics["test_accuracy"] - start) <= 0.002
    assert "--init deepconvnet.mnist_book" in TrainConfig.from_dict(
        json.loads((tmp_path / "warm" / "config.json").read_text())).command()
    with pytest.raises(ConfigError, match="init='deepconvnet.mnist_book' holds 'deepconvnet'.*does not fit 'resnet20'"):
        fit("resnet20", small, config=TrainConfig(init="deepconvnet.mnist_book", epochs=1, val_split=0,
                                                  out=str(tmp_path / "bad")), verbose=0)
    assert not (tmp_path / "bad").exists()
