"""How long a `kdeep` command takes from a fresh process to its exit, against Python itself and `import tensorflow`.

    python benchmarks/bench_cli_start.py                 # 5 trials of each command
    python benchmarks/bench_cli_start.py --trials 9 --out-dir docs/img

Each trial starts every command once, in turn, as a new process (what a user waits for at the prompt): Python
alone (`python -c pass`), `import tensorflow`, `kdeep --help`, `kdeep presets`, `kdeep presets show`, and `kdeep
predict` of one PNG file with a deployable `.tflite` file (the `deepconvnet.mnist_book` preset exported as int8)
and with the preset itself (the Keras path). The table gives each command's median and fastest seconds and the
median over `import tensorflow`'s: commands that need no Keras (the preset cards, a `.tflite` prediction) should
take a fraction of it. The JSON goes to OUT_DIR/bench_cli_start.json with the machine line and the date.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kdeep.data
from kdeep.analysis import text_table
from kdeep.io import write_json
from kdeep.report import describe_machine

PRESET = "deepconvnet.mnist_book"


def commands(tflite: Path, png: Path) -> dict[str, list[str]]:
    """{label: argv} of the processes timed, the two baselines first."""
    kdeep = [sys.executable, "-m", "kdeep"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import tensorflow": [sys.executable, "-c", "import tensorflow"],
        "kdeep --help": [*kdeep, "--help"],
        "kdeep presets": [*kdeep, "presets"],
        "kdeep presets show": [*kdeep, "presets", "show", PRESET],
        "kdeep predict x.tflite": [*kdeep, "predict", str(tflite), str(png)],
        "kdeep predict PRESET (Keras)": [*kdeep, "predict", PRESET, str(png)],
    }


def seconds(argv: list[str]) -> float:
    """Wall seconds of one run of `argv` (its output discarded); SystemExit when it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="runs of each command, in turn (default 5)")
    parser.add_argument("--out-dir", default=".", help="where bench_cli_start.json goes")
    args = parser.parse_args()
    from PIL import Image

    from quantization import export

    with tempfile.TemporaryDirectory(prefix="kdeep_bench_cli_") as scratch:
        _train, (x_test, _y) = kdeep.data.load("mnist")
        png = Path(scratch) / "digit.png"
        Image.fromarray(x_test[0, :, :, 0]).save(png)
        tflite = export(PRESET, Path(scratch) / "export", variants="int8", dataset="mnist", limit=500,
                        score=False).files["int8"]
        runs = commands(tflite, png)
        times: dict[str, list[float]] = {label: [] for label in runs}
        for trial in range(1, args.trials + 1):
            for label, argv in runs.items():
                times[label].append(seconds(argv))
            print(f"trial {trial}: " + ", ".join(f"{label} {times[label][-1]:.2f} s" for label in runs), flush=True)
    tensorflow = statistics.median(times["import tensorflow"])
    rows = [{"command": label, "median_s": statistics.median(values), "min_s": min(values),
             "over_import_tensorflow": statistics.median(values) / tensorflow, "seconds": values}
            for label, values in times.items()]
    machine = describe_machine()
    print(f"\n{machine}; {args.trials} trials, each command a fresh process\n")
    print(text_table(("command", "median s", "fastest s", "median / import tensorflow"),
                     [(r["command"], f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['over_import_tensorflow']:.2f}")
                      for r in rows], right=(1, 2, 3)))
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    out = write_json(Path(args.out_dir) / "bench_cli_start.json", {
        "machine": machine, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "trials": args.trials,
        "rows": rows, "load_average": load})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
