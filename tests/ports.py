"""Which TCP ports a process tree listens on, read from /proc (Linux): for the tests of what training opens."""
import os
import socket
import subprocess
import time
from pathlib import Path


def _process_tree(root: int) -> set[int]:
    """`root` and every process below it (from /proc/<pid>/stat's parent ids)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | below, bool(below)
    return tree


def listening(root: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes of `root`'s tree listen on, from /proc/net/tcp{,6}
    (addresses as "127.0.0.1", "0.0.0.0" or "::": every interface)."""
    inodes = set()
    for pid in _process_tree(root):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].rsplit(":", 1)
                ports.add((_address(address), int(port, 16)))
    return ports


def _address(hex_address: str) -> str:
    """/proc/net/tcp's little-endian hex address as text."""
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def watch(process: subprocess.Popen, timeout: float) -> set[tuple[str, int]]:
    """Every (address, port) the process tree listened on, polled every 0.25 s until it exits (or `timeout`)."""
    seen, deadline = set(), time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        seen |= listening(process.pid)
        time.sleep(0.25)  # a TF server listens for its whole run; each poll reads every /proc/<pid>/stat
    return seen
