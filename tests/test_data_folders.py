"""Image folders as datasets: the splits, the class names and channels read off the files, the one-line errors,
and a folder of real MNIST PNG files through train, evaluate (its dataset from the run) and quantize."""
import json

import numpy as np
import pytest

import kdeep.data
from kdeep.cli import main
from kdeep.data.folders import load_folder
from kdeep.errors import DataError


def _write(folder, images, labels, names, mode="L"):
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1)).convert(mode).save(folder / names[label] / f"{i:05d}.png")


def test_a_plain_folder_holds_out_every_fifth_image_of_each_class(mnist, tmp_path):
    (x, y), _test = mnist
    names = [f"digit_{d}" for d in range(10)]
    _write(tmp_path, x[:100], y[:100], names)
    (x_train, y_train), (x_test, y_test) = kdeep.data.load(str(tmp_path))
    counts = np.bincount(y[:100], minlength=10)
    assert np.bincount(y_test, minlength=10).tolist() == (counts // 5).tolist()
    assert len(x_train) + len(x_test) == 100 and x_train.shape[1:] == (28, 28, 1)  # grey files: one channel
    first_test = np.flatnonzero(y[:100] == y_test[0])[4]  # the 5th image of the first class is a test image
    np.testing.assert_array_equal(x_test[0], x[first_test])
    assert kdeep.data.class_names(str(tmp_path)) == tuple(names)


def test_train_and_test_subfolders_are_the_splits_and_rgb_files_give_three_channels(mnist, tmp_path):
    (x, y), (x_t, y_t) = mnist
    names = [str(d) for d in range(10)]
    _write(tmp_path / "train", x[:50], y[:50], names, mode="RGB")
    _write(tmp_path / "test", x_t[:20], y_t[:20], names, mode="RGB")
    (x_train, y_train), (x_test, y_test) = load_folder(tmp_path)
    assert x_train.shape == (50, 28, 28, 3) and x_test.shape == (20, 28, 28, 3)
    np.testing.assert_array_equal(np.sort(y_test), np.sort(y_t[:20]))
    np.testing.assert_array_equal(x_train[..., 1:2][np.argsort(y_train, kind="stable")][0],
                                  x[:50][np.argsort(y[:50], kind="stable")][0])


def test_folder_errors_name_the_problem(tmp_path):
    from PIL import Image

    (tmp_path / "one" / "a").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "a" / "0.png")
    with pytest.raises(DataError, match="at least two classes"):
        load_folder(tmp_path / "one")
    for name in ("a", "b"):
        (tmp_path / "sizes" / name).mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "sizes" / "a" / "0.png")
    Image.new("L", (9, 8)).save(tmp_path / "sizes" / "b" / "0.png")
    with pytest.raises(DataError, match=r"b/0.png: image size 9x8.*must share one size"):
        load_folder(tmp_path / "sizes")
    (tmp_path / "sizes" / "b" / "0.png").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match=r"b/0.png: not a readable image"):
        load_folder(tmp_path / "sizes")
    with pytest.raises(DataError, match="unknown dataset 'nowhere'.*or give a folder"):
        kdeep.data.load("nowhere")


@pytest.mark.slow
def test_a_png_folder_trains_evaluates_from_its_run_and_quantizes(mnist, tmp_path, capsys):
    (x, y), (x_t, y_t) = mnist
    names = [str(d) for d in range(10)]
    _write(tmp_path / "digits" / "train", x[:1000], y[:1000], names)
    _write(tmp_path / "digits" / "test", x_t[:200], y_t[:200], names)
    folder, run = str(tmp_path / "digits"), str(tmp_path / "run")
    assert main(["train", "--dataset", folder, "--epochs", "1", "--batch-size", "32", "--val-split", "0",
                 "--out", run]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", run, "--json"]) == 0  # the dataset comes from the run's config.json
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["n"] == 200 and evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert main(["quantize", run, "--variants", "float32", "--out", str(tmp_path / "q")]) == 0
    report = json.loads((tmp_path / "q" / "report.json").read_text())
    assert report["dataset"] == folder and report["n_test"] == 200
    assert report["variants"]["float32"]["accuracy"] == pytest.approx(metrics["test_accuracy"])
