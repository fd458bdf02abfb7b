"""`kdeep data list|info`: in-process through kdeep.cli.main and once as a real subprocess."""
import json
import subprocess
import sys

import pytest

import kdeep.data
from kdeep.cli import main
from kdeep.data.datasets import locate

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.slow
def test_info_json_parses_and_matches_the_loader(capsys):
    assert main(["data", "info", "mnist", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == kdeep.data.info("mnist")
    assert summary["train"]["class_counts"] == MNIST_TRAIN_COUNTS and summary["train"]["images"] == [60000, 28, 28, 1]
    assert summary["path"] == str(locate("mnist"))  # $KDEEP_DATA_DIR/mnist, or the download cache
    assert abs(summary["pixel_mean"][0] - 0.13066) < 1e-4  # the published MNIST statistic


@pytest.mark.slow
def test_info_json_as_a_subprocess_with_data_dir():
    data_dir = str(locate("fashion_mnist"))
    result = subprocess.run([sys.executable, "-m", "kdeep", "data", "info", "fashion_mnist", "--json",
                             "--data-dir", data_dir], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["path"] == data_dir and summary["test"]["class_counts"] == [1000] * 10


def test_list_and_text_info_and_errors(capsys, tmp_path, monkeypatch):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("mnist", "fashion_mnist", "cifar10"))
    assert str(locate("mnist")) in out
    assert main(["data", "info", "mnist"]) == 0
    assert "5923" in capsys.readouterr().out
    assert main(["data", "info", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    monkeypatch.setenv("KDEEP_CACHE_DIR", str(tmp_path))
    assert main(["data", "info", "cifar10", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdeep: error: dataset 'cifar10' not found") and "KDEEP_DATA_DIR" in err
