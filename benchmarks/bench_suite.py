"""Where the test suite's time goes: each test module's wall and CPU seconds, summed over its tests.

    python benchmarks/bench_suite.py                      # the suite as pytest.ini runs it (-n auto)
    python benchmarks/bench_suite.py -- -n 3 tests/test_presets.py
    python benchmarks/bench_suite.py --out-dir docs/img -- -n 2

Runs pytest (arguments after `--` pass through) with this file as a plugin: every worker appends one JSON line per
test (its wall seconds, and its CPU seconds: the test process's own plus its waited-for subprocesses', from
`getrusage`). The table gives the slowest modules by CPU, the suite's wall time and the summed CPU: with W workers
on C cores the suite cannot take less than CPU / min(W, C). The JSON goes to OUT_DIR/bench_suite.json with the
machine line, the date and every test's figures.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RECORD = "KDEEP_BENCH_SUITE_RECORD"  # the JSON-lines file the workers append to


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Plugin side: records the test's wall and CPU seconds (setup, call and teardown) when RECORD is set."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    yield
    if os.environ.get(RECORD):
        row = {"test": item.nodeid, "wall_s": time.perf_counter() - wall, "cpu_s": _cpu_seconds() - cpu}
        with open(os.environ[RECORD], "a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=".", help="where bench_suite.json goes (default: here)")
    parser.add_argument("--top", type=int, default=15, help="modules in the table (default 15)")
    args, pytest_args = parser.parse_known_args()
    pytest_args = [a for a in pytest_args if a != "--"]
    from kdeep.analysis import text_table
    from kdeep.io import write_json
    from kdeep.report import describe_machine

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "tests.jsonl"
        env = {**os.environ, RECORD: str(record),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "benchmarks"), os.environ.get("PYTHONPATH")]))}
        start = time.perf_counter()
        status = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "bench_suite", *pytest_args],
                                cwd=root, env=env).returncode
        wall = time.perf_counter() - start
        tests = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    modules: dict[str, dict[str, float]] = {}
    for test in tests:
        module = modules.setdefault(test["test"].split("::")[0], {"tests": 0, "wall_s": 0.0, "cpu_s": 0.0})
        module["tests"] += 1
        module["wall_s"] += test["wall_s"]
        module["cpu_s"] += test["cpu_s"]
    ranked = sorted(modules.items(), key=lambda item: -item[1]["cpu_s"])
    rows = [[name, str(m["tests"]), f"{m['wall_s']:.1f}", f"{m['cpu_s']:.1f}"] for name, m in ranked[:args.top]]
    cpu = sum(test["cpu_s"] for test in tests)
    summed_wall = sum(test["wall_s"] for test in tests)
    rows.append([f"all {len(modules)} modules", str(len(tests)), f"{summed_wall:.1f}", f"{cpu:.1f}"])
    machine = describe_machine()
    print(machine)
    print(text_table(["module", "tests", "wall s (summed)", "CPU s"], rows))
    print(f"pytest exit {status}; suite {wall:.1f} s wall; {cpu:.1f} CPU s over its tests")
    write_json(Path(args.out_dir) / "bench_suite.json",
               {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": machine, "pytest_args": pytest_args, "exit": status, "wall_s": wall, "cpu_s": cpu,
                "modules": dict(ranked), "tests": tests})
    return status


if __name__ == "__main__":
    sys.exit(main())
