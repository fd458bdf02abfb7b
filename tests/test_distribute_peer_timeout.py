"""A multi-worker job whose peer never arrives fails in one line after KDEEP_PEER_TIMEOUT seconds."""
import json
import os
import subprocess
import sys

import pytest

from kdeep.distribute.launch import free_ports
from kdeep.distribute.strategy import DEFAULT_PEER_TIMEOUT, PEER_TIMEOUT_ENV, peer_timeout
from kdeep.errors import ConfigError

TIMEOUT = 5  # seconds each lone worker waits for its peer


def test_peer_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(PEER_TIMEOUT_ENV, raising=False)
    assert peer_timeout() == DEFAULT_PEER_TIMEOUT == 300
    monkeypatch.setenv(PEER_TIMEOUT_ENV, "12.5")
    assert peer_timeout() == 12.5
    for bad in ("0", "-3", "soon", "inf", "nan"):
        monkeypatch.setenv(PEER_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=rf"^{PEER_TIMEOUT_ENV}='{bad}' is not a positive number of seconds"):
            peer_timeout()


@pytest.mark.slow
def test_a_lone_worker_of_two_exits_with_one_line_naming_its_missing_peer(tmp_path):
    ports = free_ports(4)  # two clusters of 2: worker 0 alone in one (the leader), worker 1 alone in the other
    clusters = [[f"127.0.0.1:{port}" for port in ports[:2]], [f"127.0.0.1:{port}" for port in ports[2:]]]
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "KDEEP_VERBOSE")}
    workers = []
    for index, cluster in enumerate(clusters):
        tf_config = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "-m", "kdeep", "train", "--strategy", "multi-worker", "--epochs", "1",
                   "--limit", "256", "--out", str(tmp_path / f"run{index}")]
        workers.append(subprocess.Popen(command, env={**env, "TF_CONFIG": tf_config, PEER_TIMEOUT_ENV: str(TIMEOUT)},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        results = [worker.communicate(timeout=TIMEOUT + 240) for worker in workers]  # hangs forever without it
    finally:
        for worker in workers:
            worker.kill()
    for index, (worker, (out, err)) in enumerate(zip(workers, results)):
        assert worker.returncode == 2, out[-2000:] + err[-2000:]
        missing = clusters[index][1 - index]
        port = clusters[index][index].rsplit(":", 1)[1]
        assert err.splitlines() == [
            f"kdeep: warning: worker {index} listens on port {port} on every network interface (TensorFlow's gRPC "
            f"server binds [::]/0.0.0.0 whatever host TF_CONFIG names) with no authentication: train on a trusted "
            f"network only, firewall the TF_CONFIG ports, or on one machine use `kdeep launch --one-process`",
            f"kdeep: error: multi-worker training: worker {index} waited {TIMEOUT} s for worker {1 - index} "
            f"({missing}) from TF_CONFIG, which never joined: start every worker listed in TF_CONFIG (e.g. with "
            f"`kdeep launch`), or wait longer with {PEER_TIMEOUT_ENV}=SECONDS"]
        assert "Epoch" not in out and not (tmp_path / f"run{index}" / "last.keras").exists()
