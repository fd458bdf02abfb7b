"""Distributed training on tf.distribute: strategies by name, a multi-worker loop, and a local launcher.

`strategy_from_name("auto" | "one" | "mirrored" | "multi-worker")`, `parse_tf_config()`, `launch(n, command)`
need no TensorFlow import; `fit`, `evaluate` and `worker_dir` (kdeep.distribute.loop) load it on first use.
"""
from kdeep.lazy import lazy_getattr
from kdeep.distribute.launch import launch, tf_configs
from kdeep.distribute.strategy import (
    STRATEGIES,
    ClusterSpec,
    cluster_of,
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
    "STRATEGIES", "ClusterSpec", "cluster_of", "is_chief", "launch", "linear_scaled_lr", "num_workers",
    "parse_tf_config", "peer_timeout", "per_replica_batch", "strategy_from_name", "tf_configs", "xla_supported",
    *_LOOP,
]

__getattr__ = lazy_getattr(globals(), _LOOP)
