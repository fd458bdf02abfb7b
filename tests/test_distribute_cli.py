"""`kdeep launch -- train` end to end: 2 local workers train one run, only the chief writes it; bad TF_CONFIG fails fast."""
import json
import subprocess
import sys

import pytest

from kdeep.scoring import score


def kdeep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdeep", *args], capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_launch_two_workers_trains_one_run_written_by_the_chief(tmp_path):
    run_dir = tmp_path / "run"
    result = kdeep("launch", "--workers", "2", "--", "train", "--model", "deepconvnet", "--dataset", "mnist",
                   "--epochs", "1", "--batch-size", "64", "--limit", "384", "--val-split", "128",
                   "--out", str(run_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["test_images"] == 10000
    assert metrics["test_accuracy"] == pytest.approx(score(run_dir / "model.keras", "mnist").accuracy,
                                                     abs=1e-4)  # the saved model's own score
    assert (run_dir / "model.keras").exists() and (run_dir / "last.keras").exists()
    assert not list(run_dir.glob(".*tmp*"))  # no half-written or clashing temp files
    lines = result.stdout.splitlines()
    assert any(line.startswith("[worker 0] ") for line in lines) and any(line.startswith("[worker 1] ") for line in lines)
    assert not any("Epoch 1/1" in line for line in lines if line.startswith("[worker 1]"))  # chief's progress only


def test_train_multi_worker_with_bad_tf_config_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    # every TF_CONFIG mistake is covered in test_distribute_config.py; this checks the `kdeep train` path once
    from kdeep.cli import main

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 3}}')
    code = main(["train", "--strategy", "multi-worker", "--epochs", "1", "--limit", "256", "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        "kdeep: error: TF_CONFIG task index 3 is out of range for 1 'worker' address(es): use 0..0"]
    assert "Epoch" not in captured.out and not (tmp_path / "run" / "last.keras").exists()
