"""The machine and the moment a report or benchmark was made: CPU model, SIMD level, cores; a UTC timestamp."""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
from pathlib import Path


def describe_machine() -> str:
    """CPU model, its widest SIMD level that LiteRT and oneDNN kernels use, and core count, e.g. "Intel(R) Xeon(R)
    ... x86_64, avx512_vnni, 2 cores" (Linux reads /proc/cpuinfo; elsewhere the architecture name)."""
    name, flags = platform.machine(), set()
    with contextlib.suppress(OSError):
        info = {key.strip(): value.strip() for key, value in
                (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)}
        name, flags = info.get("model name", name), set(info.get("flags", "").split())
    simd = next((f for f in ("avx512_vnni", "avx512f", "avx2") if f in flags), "")
    return f"{name} {platform.machine()}, {simd or 'no AVX2'}, {os.cpu_count()} cores"


def timestamp() -> str:
    """Now, to the minute, in UTC ("2025-01-31 14:05 UTC")."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
