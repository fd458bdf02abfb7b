"""Distributed training on tf.distribute: strategies by name, a multi-worker loop, and a local launcher.

`strategy_from_name("auto" | "one" | "mirrored" | "multi-worker")`, `parse_tf_config()`, `launch(n, command)`,
`launch_kdeep(n, args, one_process=...)` need no TensorFlow import; `fit`, `evaluate` and `worker_dir`
(kdeep.distribute.loop) load it on first use.
"""
from kdeep.lazy import lazy_getattr
from kdeep.distribute.launch import launch, launch_kdeep, tf_configs, worker_command
from kdeep.distribute.strategy import (
    CPU_DEVICES_ENV,
    STRATEGIES,
    ClusterSpec,
    cluster_of,
    cpu_devices,
    is_chief,
    linear_scaled_lr,
    num_workers,
    parse_tf_config,
    peer_timeout,
    per_replica_batch,
    strategy_from_name,
    xla_supported,
)

_LOOP = {name: "kdeep.distribute.loop" for name in ("fit", "evaluate", "worker_dir")}
__all__ = [
    "CPU_DEVICES_ENV", "STRATEGIES", "ClusterSpec", "cluster_of", "cpu_devices", "is_chief", "launch", "launch_kdeep",
    "linear_scaled_lr", "num_workers", "parse_tf_config", "peer_timeout", "per_replica_batch", "strategy_from_name",
    "tf_configs", "worker_command", "xla_supported",
    *_LOOP,
]

__getattr__ = lazy_getattr(globals(), _LOOP)
