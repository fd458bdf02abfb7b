"""`kdeep launch --one-process`: data-parallel training on one machine that opens no network port (multi-worker
processes each listen on every interface, unauthenticated: TensorFlow's gRPC server binds 0.0.0.0)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ports import watch

REPO = Path(__file__).resolve().parents[1]


def test_the_port_watch_sees_a_listening_child():
    """The check below can fail: a child that listens on a port is seen."""
    code = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1]," \
           " flush=True); time.sleep(1)"
    wrapper = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, "
                                                      f"'-c', {code!r}])"], stdout=subprocess.PIPE, text=True)
    port = int(wrapper.stdout.readline())
    assert ("127.0.0.1", port) in watch(wrapper, 30)
    wrapper.wait()


@pytest.mark.slow
def test_one_process_trains_on_two_devices_and_opens_no_port(tmp_path):
    run_dir = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kdeep", "launch", "--workers", "2", "--one-process", "--", "train", "--model",
         "deepconvnet", "--epochs", "1", "--batch-size", "64", "--limit", "384", "--val-split", "0", "--out",
         str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "PYTHONPATH": str(REPO)})
    ports = watch(process, 400)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output[-3000:]
    assert ports == set()
    assert "on 2 replicas" in output and "warning" not in output  # MirroredStrategy over 2 logical CPU devices
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["train_images"] == 384
