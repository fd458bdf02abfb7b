"""`kdeep launch -- train` end to end: 2 local workers train one run, only the chief writes it; bad TF_CONFIG fails fast."""
import json
import subprocess
import sys

import pytest

from kdeep.scoring import score
from ports import watch


@pytest.mark.slow
def test_launch_two_workers_trains_one_run_written_by_the_chief(tmp_path):
    """...and each worker listens on every interface (what its warning line and docs/distributed.md say)."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "kdeep", "launch", "--workers", "2", "--", "train", "--model",
                                "deepconvnet", "--dataset", "mnist", "--epochs", "2", "--batch-size", "64", "--limit",
                                "384", "--val-split", "128", "--out", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listened = watch(process, 400)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["test_images"] == 10000
    assert metrics["test_accuracy"] == pytest.approx(score(run_dir / "model.keras", "mnist").accuracy,
                                                     abs=1e-4)  # the saved model's own score
    assert (run_dir / "model.keras").exists() and (run_dir / "last.keras").exists()
    assert not list(run_dir.glob(".*tmp*"))  # no half-written or clashing temp files
    lines = stdout.splitlines()
    assert any(line.startswith("[worker 0] ") for line in lines) and any(line.startswith("[worker 1] ") for line in lines)
    # Keras heads each epoch "Epoch N/M" only when M > 1 (hence 2 epochs): the chief's progress, and only the chief's
    assert any("Epoch 2/2" in line for line in lines if line.startswith("[worker 0]"))
    assert not any("Epoch " in line for line in lines if line.startswith("[worker 1]"))
    warnings = [line for line in lines if "kdeep: warning: worker" in line]
    ports = {int(line.split("listens on port ")[1].split()[0]) for line in warnings}
    assert len(warnings) == 2 and len(ports) == 2  # one line per worker, naming its own port
    every = {(address, port) for address, port in listened if port in ports}
    assert {port for _, port in every} == ports and {address for address, _ in every} <= {"::", "0.0.0.0"}


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
