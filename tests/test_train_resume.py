"""Crash safety: `kdeep train` killed with SIGKILL after epoch 1 resumes on rerun without redoing epoch 1."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from kdeep.train import run_dir as rd

COMMAND = [sys.executable, "-m", "kdeep", "train", "--model", "deepconvnet", "--dataset", "mnist", "--limit", "800",
           "--val-split", "200", "--epochs", "3", "--batch-size", "100", "--select", "best"]


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sigkill_after_epoch_1_then_rerun_resumes(tmp_path):
    out = tmp_path / "run"
    command = [*COMMAND, "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    history = out / rd.HISTORY
    deadline = time.monotonic() + 240
    while not (history.exists() and len(_rows(history)) >= 1):
        assert process.poll() is None, process.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "epoch 1 did not finish in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _rows(history)
    assert 1 <= len(before) < 3  # killed mid-run

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {out} after epoch {len(before)}/3" in done.stdout
    assert "test accuracy" in done.stdout.strip().splitlines()[-1]
    after = _rows(history)
    assert [int(row["epoch"]) for row in after] == [1, 2, 3]
    assert after[:len(before)] == before  # finished epochs are not redone
    assert list(after[0]) == list(before[0]) and list(after[0])[0] == "epoch"  # same columns, same order
    metrics = json.loads((out / rd.METRICS).read_text())
    assert metrics["epochs_completed"] == 3
    state = json.loads((out / rd.STATE).read_text())
    assert metrics["train_seconds"] == round(sum(row["seconds"] for row in state["history"]), 3)
    for name in (rd.MODEL, rd.LAST, rd.BEST):
        keras.saving.load_model(out / name)
    assert not [path for path in out.iterdir() if "tmp" in path.name]
