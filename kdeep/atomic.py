"""Atomic file writes: a temp file in the destination's folder, fsync, then os.replace.

A process killed mid-write leaves the old file (or none), never a truncated one.
"""
import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes `data` to `path` through a temp file in the same directory and `os.replace`.

    A run killed mid-write leaves the old file (or none), never a truncated one.

    Args:
        path: destination file; its directory is created if needed.
        data: bytes, or text (written as UTF-8).

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make reports private to their writer
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
