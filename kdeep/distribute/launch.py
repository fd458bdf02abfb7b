"""Local launcher: N multi-worker processes on one machine, each with its TF_CONFIG, output prefixed by worker; or
one process training on N logical CPU devices (MirroredStrategy), which opens no port."""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import BinaryIO, Sequence, TextIO

from kdeep.distribute.strategy import CPU_DEVICES_ENV
from kdeep.errors import ConfigError

HOST = "127.0.0.1"
GRACE_SECONDS = 3.0  # how long terminated workers get before SIGKILL (TF catches SIGTERM)


def free_ports(count: int) -> list[int]:
    """Returns `count` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def tf_configs(num_workers: int, port_base: int | None = None) -> list[str]:
    """The TF_CONFIG JSON of each local worker: worker i listens on 127.0.0.1:(port_base + i).

    Args:
        num_workers: how many worker processes.
        port_base: the first port; free ports are picked when None.
    """
    if num_workers < 1:
        raise ConfigError(f"--workers {num_workers} is not a positive number of workers: use 1 or more")
    if port_base is not None and not 0 < port_base <= 65536 - num_workers:
        raise ConfigError(f"--port-base {port_base} leaves no room for {num_workers} ports: use 1024..{65536 - num_workers}")
    ports = free_ports(num_workers) if port_base is None else range(port_base, port_base + num_workers)
    cluster = {"worker": [f"{HOST}:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(num_workers)]


def worker_command(args: Sequence[str], strategy: str = "multi-worker") -> list[str]:
    """The command a launched process runs: `python -m kdeep <args>`; `train` is assumed when `args` starts with an
    option, and `--strategy STRATEGY` is added to `train` unless a strategy is given."""
    args = list(args[1:]) if args[:1] == ["--"] else list(args)
    if not args or args[0].startswith("-"):
        args = ["train", *args]
    if args[0] == "train" and not any(a == "--strategy" or a.startswith("--strategy=") for a in args):
        args += ["--strategy", strategy]
    return [sys.executable, "-m", "kdeep", *args]


def launch_kdeep(num_workers: int, args: Sequence[str], *, port_base: int | None = None, one_process: bool = False,
                 output: TextIO | None = None) -> int:
    """`kdeep launch`: runs the kdeep command `args` as `num_workers` local multi-worker processes, or with
    `one_process` as one process whose MirroredStrategy splits the CPU into `num_workers` logical devices (the same
    synchronous data-parallel training, with no TF_CONFIG and no port opened).

    Returns:
        The exit code, as `launch` gives it.

    Raises:
        ConfigError: a bad worker count or port base, or a port base with `one_process` (it opens no port).
    """
    if not one_process:
        return launch(num_workers, worker_command(args), port_base=port_base, output=output)
    if port_base is not None:
        raise ConfigError("--port-base names ports and --one-process opens none: drop one of them")
    if num_workers < 1:
        raise ConfigError(f"--workers {num_workers} is not a positive number of devices: use 1 or more")
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update({CPU_DEVICES_ENV: str(num_workers), "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(worker_command(args, "mirrored"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    reader = threading.Thread(target=_stream, args=(process.stdout, "", output or sys.stdout, threading.Lock()))
    reader.start()
    try:
        code = process.wait()
    finally:
        _terminate([process])
        reader.join()
    return code if code >= 0 else 128 - code


def launch(
    num_workers: int,
    command: Sequence[str],
    *,
    port_base: int | None = None,
    output: TextIO | None = None,
) -> int:
    """Runs `command` as `num_workers` local workers of one cluster and waits for all of them.

    Each worker gets its own TF_CONFIG; their stdout and stderr are streamed line by line as
    `[worker i] ...`. When a worker fails, the others are terminated. Ctrl-C terminates every worker.

    Args:
        num_workers: how many worker processes.
        command: the program and arguments every worker runs.
        port_base: the first port (worker i uses port_base + i); free ports when None.
        output: where prefixed lines go (sys.stdout when None).

    Returns:
        0 when every worker succeeded, else the exit code of the first worker that failed (128 + N for signal N).
    """
    output = output or sys.stdout
    lock = threading.Lock()
    workers, readers = [], []
    try:
        for index, tf_config in enumerate(tf_configs(num_workers, port_base)):
            env = {**os.environ, "TF_CONFIG": tf_config, "PYTHONUNBUFFERED": "1"}
            worker = subprocess.Popen(list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            workers.append(worker)
            reader = threading.Thread(target=_stream, args=(worker.stdout, f"[worker {index}] ", output, lock))
            reader.start()
            readers.append(reader)
        failed = _wait(workers)
    finally:
        _terminate(workers)
        for reader in readers:
            reader.join()
    return 0 if failed is None else failed if failed > 0 else 128 - failed


def _stream(pipe: BinaryIO, prefix: str, output: TextIO, lock: threading.Lock) -> None:
    """Copies each line of `pipe` to `output` with `prefix`, until the pipe closes.

    A progress bar redraws itself with carriage returns; only its final state on each line is kept.
    """
    for line in io.TextIOWrapper(pipe, encoding="utf-8", errors="replace", newline="\n"):
        text = line.rstrip("\n").rstrip("\r").rsplit("\r", 1)[-1].replace("\b", "")
        with lock:
            output.write(f"{prefix}{text}\n")
            output.flush()
    pipe.close()


def _wait(workers: list[subprocess.Popen]) -> int | None:
    """Waits until all workers exit (None) or one fails (its exit code, negative for a signal)."""
    while True:
        codes = [worker.poll() for worker in workers]
        failed = [code for code in codes if code not in (None, 0)]
        if failed:
            return failed[0]
        if all(code == 0 for code in codes):
            return None
        time.sleep(0.1)


def _terminate(workers: list[subprocess.Popen]) -> None:
    """Stops the workers still running: SIGTERM, then SIGKILL after GRACE_SECONDS."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for worker in workers:
        try:
            worker.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
