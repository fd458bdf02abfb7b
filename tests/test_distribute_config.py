"""TF_CONFIG validation, strategy names and the global-batch rules: clear one-line errors before any training."""
import json
import subprocess
import sys

import pytest

from kdeep.distribute import linear_scaled_lr, parse_tf_config, per_replica_batch, strategy_from_name
from kdeep.errors import ConfigError

CLUSTER = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


def config(cluster=CLUSTER, task_type="worker", index=0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("text, message", [
    (None, "TF_CONFIG is not set"),
    ('{"cluster": {"worker": ["127.0.0.1:2222"]}, ', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster'"),
    (json.dumps({"cluster": CLUSTER}), "no 'task'"),
    (config(task_type="ps"), "task type 'ps' is unknown"),
    (config(index=2), "index 2 is out of range for 2 'worker'"),
    (config(index=-1), "index -1 is out of range"),
    (config(index="0"), "is not an integer"),
    (config(cluster={"worker": ["127.0.0.1"]}), "is not 'host:port'"),
    (config(cluster={"worker": ["127.0.0.1:99999"]}), "is not 'host:port'"),
    (config(cluster={"worker": ["127.0.0.1:2222", "127.0.0.1:2222"]}), "appears twice"),
    (config(cluster={"chief": ["127.0.0.1:2222"]}, task_type="worker"), "has no addresses"),
    (config(cluster={"evaluator": ["127.0.0.1:2222"]}, task_type="evaluator"), "no 'chief' or 'worker'"),
], ids=["unset", "malformed", "not-object", "no-cluster", "no-task", "unknown-type", "index-high", "index-negative",
        "index-string", "no-port", "bad-port", "duplicate", "type-missing", "no-workers"])
def test_bad_tf_config_is_one_clear_error(monkeypatch, text, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=message) as error:
        parse_tf_config(text)
    assert "\n" not in str(error.value)


def test_good_tf_config_gives_chief_and_workers():
    assert parse_tf_config(config(index=0)).is_chief and not parse_tf_config(config(index=1)).is_chief
    with_chief = {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}
    spec = parse_tf_config(config(with_chief, "worker", 0))
    assert (spec.num_workers, spec.is_chief) == (3, False)
    assert parse_tf_config(config(with_chief, "chief", 0)).is_chief


def test_multi_worker_strategy_with_bad_tf_config_fails_before_tensorflow_starts():
    code = ("import sys; from kdeep.distribute import strategy_from_name\n"
            "try:\n    strategy_from_name('multi-worker')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e, 'tensorflow' in sys.modules)")
    env = {"TF_CONFIG": config(index=5), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("ConfigError TF_CONFIG task index 5 is out of range")
    assert result.stdout.strip().endswith("False")  # rejected before TensorFlow was imported


def test_unknown_strategy_name():
    with pytest.raises(ConfigError, match="unknown strategy 'tpu'"):
        strategy_from_name("tpu")


def test_global_batch_splits_evenly_and_lr_is_never_rescaled_silently():
    assert per_replica_batch(256, 4) == 64
    with pytest.raises(ConfigError, match="does not split evenly over 3 replicas"):
        per_replica_batch(100, 3)
    assert linear_scaled_lr(1e-3, 400, 100) == pytest.approx(4e-3)
