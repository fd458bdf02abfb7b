"""tf.distribute strategies by name, TF_CONFIG validation, and the global-batch rules."""
from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from kdeep import progress
from kdeep.errors import ConfigError

STRATEGIES = ("auto", "one", "mirrored", "multi-worker")
WORKER_TASK_TYPES = ("chief", "worker")  # the task types that train under MultiWorkerMirroredStrategy
TASK_TYPES = (*WORKER_TASK_TYPES, "evaluator")  # "ps" needs ParameterServerStrategy, which kdeep does not use
PEER_TIMEOUT_ENV = "KDEEP_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 300.0  # seconds a multi-worker job waits at startup for every worker of TF_CONFIG
# "mirrored" on a machine without GPUs splits its CPU into this many logical devices (`kdeep launch --one-process`).
CPU_DEVICES_ENV = "KDEEP_CPU_DEVICES"


@dataclass(frozen=True)
class ClusterSpec:
    """A validated TF_CONFIG: the cluster's addresses by task type and this process's task."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """The number of training processes (chief + workers)."""
        return sum(len(self.cluster.get(kind, [])) for kind in WORKER_TASK_TYPES)

    @property
    def is_chief(self) -> bool:
        """True for the process that writes artifacts: the chief, or worker 0 when there is no chief."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def parse_tf_config(text: str | None = None) -> ClusterSpec:
    """Parses and validates TF_CONFIG, raising one clear error for each way it can be wrong.

    Args:
        text: the TF_CONFIG JSON; the `TF_CONFIG` environment variable when None.

    Returns:
        The validated cluster and task.

    Raises:
        ConfigError: TF_CONFIG is unset, not JSON, or its cluster/task is inconsistent.
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not text:
        raise ConfigError(f"TF_CONFIG is not set: multi-worker training needs it, e.g. {example} (or use `kdeep launch`)")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}): set it to e.g. {example}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object, got {type(config).__name__}: set it to e.g. {example}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(f"TF_CONFIG has no 'cluster' mapping task types to address lists: add one, e.g. {example}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError(f"TF_CONFIG has no 'task' with 'type' and 'index': add one, e.g. {example}")
    _check_cluster(cluster)
    task_type, task_index = task["type"], task["index"]
    if task_type not in TASK_TYPES:
        raise ConfigError(f"TF_CONFIG task type {task_type!r} is unknown: use one of {', '.join(TASK_TYPES)}")
    if not isinstance(task_index, int) or isinstance(task_index, bool):
        raise ConfigError(f"TF_CONFIG task index {task_index!r} is not an integer: use 0..N-1")
    size = len(cluster.get(task_type, []))
    if task_type != "evaluator" and not 0 <= task_index < size:
        raise ConfigError(
            f"TF_CONFIG task index {task_index} is out of range for {size} {task_type!r} address(es): "
            f"use 0..{size - 1}" if size else f"TF_CONFIG task type {task_type!r} has no addresses in 'cluster': add them"
        )
    return ClusterSpec({kind: list(addresses) for kind, addresses in cluster.items()}, task_type, task_index)


def _check_cluster(cluster: Mapping[str, Any]) -> None:
    """Raises ConfigError unless every task type is known and every address is a unique host:port."""
    seen: set[str] = set()
    for kind, addresses in cluster.items():
        if kind not in TASK_TYPES:
            raise ConfigError(f"TF_CONFIG cluster task type {kind!r} is unknown: use {', '.join(WORKER_TASK_TYPES)}")
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"TF_CONFIG cluster[{kind!r}] must be a non-empty list of 'host:port' strings")
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"TF_CONFIG address {address!r} in cluster[{kind!r}] is not 'host:port': fix it")
            if address in seen:
                raise ConfigError(f"TF_CONFIG address {address!r} appears twice in the cluster: give each task its own")
            seen.add(address)
    if not any(kind in cluster for kind in WORKER_TASK_TYPES):
        raise ConfigError("TF_CONFIG cluster has no 'chief' or 'worker' addresses: add the training processes")
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError("TF_CONFIG cluster has more than one chief: keep one, make the others workers")


@functools.cache
def strategy_from_name(name: str = "auto") -> Any:
    """Creates the tf.distribute strategy for `name`; call it before any other TensorFlow work.

    One strategy per name per process (cached): two MirroredStrategy objects in one process number their
    collective ops alike and abort each other ("Shape mismatch in the collective instance"), e.g. when an
    ensemble trains several members, and MultiWorkerMirroredStrategy can be created only once.

    Args:
        name: "auto" (MirroredStrategy when more than one GPU is visible, else the default strategy),
            "one" (OneDeviceStrategy on the first GPU, else the CPU), "mirrored" (MirroredStrategy over all
            GPUs, or over all logical CPU devices when there is no GPU: $KDEEP_CPU_DEVICES of them when set), or
            "multi-worker" (MultiWorkerMirroredStrategy from the validated TF_CONFIG; it opens a port).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ConfigError: an unknown name or a bad TF_CONFIG (checked before TensorFlow starts anything), or a
            multi-worker peer that did not register within `peer_timeout()` seconds.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if name == "multi-worker":
        return _multi_worker_strategy(parse_tf_config(), peer_timeout())
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored" and not tf.config.list_physical_devices("GPU"):
        _split_cpu(cpu_devices())
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if name == "one":
        return tf.distribute.OneDeviceStrategy(devices[0].name)
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def cpu_devices() -> int | None:
    """The logical CPU devices "mirrored" splits a GPU-less machine into: $KDEEP_CPU_DEVICES, None when unset.

    Raises:
        ConfigError: KDEEP_CPU_DEVICES is not a positive integer.
    """
    text = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{CPU_DEVICES_ENV}={text!r} is not a positive number of devices: use e.g. 2")
    return int(text)


def _split_cpu(count: int | None) -> None:
    """Makes the CPU `count` logical devices (nothing when None), before TensorFlow initialises its devices."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    if count is None or len(tf.config.get_logical_device_configuration(cpus[0]) or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # the devices were initialised already
        raise ConfigError(f"{CPU_DEVICES_ENV}={count} came too late: TensorFlow's devices were set up already; "
                          f"create the strategy before any other TensorFlow work") from None


def peer_timeout() -> float:
    """Seconds a multi-worker job waits at startup for every worker in TF_CONFIG: $KDEEP_PEER_TIMEOUT, else 300.

    Raises:
        ConfigError: KDEEP_PEER_TIMEOUT is not a positive number.
    """
    text = os.environ.get(PEER_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_PEER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError(f"{PEER_TIMEOUT_ENV}={text!r} is not a positive number of seconds: use e.g. 300")
    return seconds


def _multi_worker_strategy(spec: ClusterSpec, timeout: float) -> Any:
    """MultiWorkerMirroredStrategy whose startup fails after `timeout` seconds when a peer never registers.

    TensorFlow's coordination service waits an hour by default; kdeep configures it as the strategy would,
    plus a registration barrier bounded by `timeout` (the leader then names the workers that never came).

    Raises:
        ConfigError: a peer did not register in time, or TensorFlow was initialised before the strategy.
    """
    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if spec.task_type in WORKER_TASK_TYPES:
        progress.warn(open_port_warning(spec))
    if spec.task_type in WORKER_TASK_TYPES and context.context().coordination_service is None:
        leader = "chief" if "chief" in spec.cluster else "worker"
        context.context().configure_coordination_service(
            service_type="standalone",
            service_leader=f"/job:{leader}/replica:0/task:0",
            coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=kind, num_tasks=len(spec.cluster[kind]))
                              for kind in WORKER_TASK_TYPES if kind in spec.cluster],
            cluster_register_timeout_in_ms=max(1, round(timeout * 1000)),
        )
        context.context().coordination_service.cluster_register_with_barrier = True  # bounds the leader's wait
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:  # collective ops must be configured before TensorFlow initialises
        raise ConfigError(
            f"cannot start multi-worker training ({error}): create the strategy before any other TensorFlow work"
        ) from None
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as error:
        raise ConfigError(_missing_peers(spec, timeout, str(error))) from None


def open_port_warning(spec: ClusterSpec) -> str:
    """The warning each multi-worker task prints as it starts: its port is open to the network, unauthenticated."""
    port = spec.cluster[spec.task_type][spec.task_index].rpartition(":")[2]
    return (f"{spec.task_type} {spec.task_index} listens on port {port} on every network interface (TensorFlow's "
            f"gRPC server binds [::]/0.0.0.0 whatever host TF_CONFIG names) with no authentication: train on a "
            f"trusted network only, firewall the TF_CONFIG ports, or on one machine use `kdeep launch --one-process`")


def _missing_peers(spec: ClusterSpec, timeout: float, error: str) -> str:
    """The one-line error for peers that never registered: who is missing (as far as this task can tell), the fix."""
    named = {(kind, int(index)) for kind, index in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)\n", error)}
    others = [(kind, index) for kind in WORKER_TASK_TYPES for index in range(len(spec.cluster.get(kind, [])))
              if (kind, index) != (spec.task_type, spec.task_index)]
    missing = [peer for peer in others if peer in named] or others
    listed = ", ".join(f"{kind} {index} ({spec.cluster[kind][index]})" for kind, index in missing)
    return (f"multi-worker training: {spec.task_type} {spec.task_index} waited {timeout:g} s for "
            f"{'' if missing != others or len(others) == 1 else 'one of '}{listed} from TF_CONFIG, which never "
            f"joined: start every worker listed in TF_CONFIG (e.g. with `kdeep launch`), or wait longer with "
            f"{PEER_TIMEOUT_ENV}=SECONDS")


def cluster_of(strategy: Any) -> ClusterSpec | None:
    """The cluster a multi-worker strategy runs in, or None for single-process strategies."""
    resolver = getattr(strategy, "cluster_resolver", None)
    jobs = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not jobs:
        return None
    return ClusterSpec({kind: list(addresses) for kind, addresses in jobs.items()}, resolver.task_type, resolver.task_id)


def is_chief(strategy: Any = None) -> bool:
    """True when this process writes the artifacts: always, except on non-chief multi-worker tasks."""
    cluster = cluster_of(strategy)
    return cluster is None or cluster.is_chief


def num_workers(strategy: Any = None) -> int:
    """The number of training processes: 1 unless the strategy spans a multi-worker cluster."""
    cluster = cluster_of(strategy)
    return 1 if cluster is None else cluster.num_workers


def xla_supported(strategy: Any) -> bool:
    """Whether `jit_compile=True` can run under `strategy`: one replica, or GPU replicas.

    On CPU, TF 2.21's XLA has no collectives ("Collectives are not yet implemented for CPU devices when
    compiling with XLA") and cannot reach a second logical CPU's variables, so several CPU replicas run
    without XLA. GPU replicas are untested here (no GPU was lent).
    """
    import tensorflow as tf

    return strategy.num_replicas_in_sync == 1 or bool(tf.config.list_logical_devices("GPU"))


def per_replica_batch(global_batch: int, num_replicas: int) -> int:
    """The batch each replica computes on: `--batch-size` is the global batch, split evenly.

    Args:
        global_batch: examples per training step over all replicas.
        num_replicas: `strategy.num_replicas_in_sync`.

    Raises:
        ConfigError: the global batch does not split evenly over the replicas.
    """
    if global_batch < num_replicas or global_batch % num_replicas:
        raise ConfigError(
            f"global batch {global_batch} does not split evenly over {num_replicas} replicas: "
            f"use a multiple of {num_replicas} for --batch-size"
        )
    return global_batch // num_replicas


def linear_scaled_lr(learning_rate: float, global_batch: int, reference_batch: int) -> float:
    """The linear-scaling suggestion (Goyal et al. 2017): LR grows with the global batch; kdeep never applies it itself.

    Args:
        learning_rate: the LR tuned at `reference_batch`.
        global_batch: the new global batch.
        reference_batch: the batch the LR was tuned for.

    Returns:
        `learning_rate * global_batch / reference_batch`, to pass as `--lr` explicitly.
    """
    return learning_rate * global_batch / reference_batch
