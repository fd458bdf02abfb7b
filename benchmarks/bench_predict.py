"""`kdeep predict` end to end on a folder of PNG files against Pillow alone decoding the same files, in one run.

    python benchmarks/bench_predict.py                        # 10,000 MNIST test images, DeepConvNet int8
    python benchmarks/bench_predict.py --images 2000 --trials 5 --model runs/book/export/int8.tflite

The images are the first --images MNIST test images saved as RGB PNG files in class subfolders (as a phone app
would save them). The model is --model (a .tflite written by `kdeep export`), else a DeepConvNet exported as
`int8` (uint8 pixels in; weights untrained, as speed does not depend on their values). Each trial times, in turn:

- Pillow alone: one thread opens each file, converts it to RGB and takes its pixels as a numpy array;
- `kdeep predict MODEL FOLDER --json` in this process (imports done): listing the folder, decoding on one thread
  a batch ahead, batches through LiteRT invoking on every core (the default `--threads`), top-3 labels, JSON
  printed to /dev/null.

The table gives each trial's files per second, the ratio (the median ratio is the figure; target: >= 0.5), the
CPU time per file (all threads), which depends less on what else the machine runs than the rates do, and the
model alone on the decoded pixels (batches of 256, on one thread and on every core): the model alone on one thread
is about half of Pillow's rate, so `kdeep predict` beats half only when the model's invokes use the CPU time
decoding leaves on the other cores.
The JSON goes to OUT_DIR/bench_predict.json with the machine line (CPU model, SIMD level, cores) and the date.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import kdeep.data
from kdeep.analysis import text_table
from kdeep.cli import main as cli_main
from kdeep.io import write_json
from kdeep.report import describe_machine


def write_pngs(folder: Path, count: int) -> list[Path]:
    """The first `count` MNIST test images as RGB PNG files, FOLDER/<label>/<index>.png."""
    from PIL import Image

    _train, (x_test, y_test) = kdeep.data.load("mnist")
    files = []
    for i in range(count):
        path = folder / str(y_test[i]) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.repeat(x_test[i], 3, axis=-1)).save(path)
        files.append(path)
    return files


def int8_model(folder: Path) -> Path:
    """A DeepConvNet exported as the deployable int8 file (calibrated on 500 MNIST training images)."""
    import kdeep.models
    from quantization import export

    model = kdeep.models.build("deepconvnet")
    return export(model, folder, variants="int8", dataset="mnist", limit=500, score=False).files["int8"]


def pillow_rate(files: list[Path]) -> tuple[float, float]:
    """(files per second, CPU microseconds per file) of Pillow decoding to RGB numpy arrays on one thread."""
    from PIL import Image

    start, cpu = time.perf_counter(), time.process_time()
    for file in files:
        with Image.open(file) as image:
            np.asarray(image.convert("RGB"))
    return len(files) / (time.perf_counter() - start), 1e6 * (time.process_time() - cpu) / len(files)


def predict_rate(model: Path, folder: Path, count: int) -> tuple[float, float]:
    """(files per second, CPU microseconds per file, all threads) of `kdeep predict MODEL FOLDER --json`, run in
    this process."""
    start, cpu = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        code = cli_main(["predict", str(model), str(folder), "--json"])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"kdeep predict exited {code}")
    return count / seconds, 1e6 * (time.process_time() - cpu) / count


def litert_rate(model: Path, pixels: np.ndarray, threads: int) -> float:
    """Files per second of the model alone on decoded pixels: batches of 256 through one LiteRT runner."""
    from quantization.litert import open_model

    runner = open_model(model, num_threads=threads)
    runner.run(pixels[:256])
    start = time.perf_counter()
    for first in range(0, len(pixels), 256):
        runner.run(pixels[first:first + 256])
    return len(pixels) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="MNIST test images as PNG files (default 10000)")
    parser.add_argument("--trials", type=int, default=3, help="alternating trials of each (default 3)")
    parser.add_argument("--model", help="a deployable .tflite (default: DeepConvNet exported as int8)")
    parser.add_argument("--out-dir", default=".", help="where bench_predict.json goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdeep_bench_predict_") as scratch:
        folder = Path(scratch) / "png"
        files = write_pngs(folder, args.images)
        model = Path(args.model) if args.model else int8_model(Path(scratch) / "model")
        predict_rate(model, folder, len(files))  # warm-up: first LiteRT and Pillow calls, the page cache
        pixels = np.stack([kdeep.data.read_image(file) for file in files])
        rows = []
        for trial in range(1, args.trials + 1):
            (pillow, pillow_cpu), (predict, predict_cpu) = pillow_rate(files), predict_rate(model, folder, len(files))
            rows.append({"trial": trial, "pillow_files_per_s": pillow, "predict_files_per_s": predict,
                         "ratio": predict / pillow, "pillow_cpu_us_per_file": pillow_cpu,
                         "predict_cpu_us_per_file": predict_cpu, "litert_files_per_s": litert_rate(model, pixels, 1),
                         "litert_all_cores_files_per_s": litert_rate(model, pixels, os.cpu_count() or 1)})
            print(f"trial {trial}: Pillow {pillow:,.0f} files/s, kdeep predict {predict:,.0f} files/s", flush=True)
    ratio = statistics.median(r["ratio"] for r in rows)
    machine = describe_machine()
    print(f"\n{machine}; {args.images} PNG files (28x28 RGB), model {args.model or 'DeepConvNet int8 (uint8 in)'}\n")
    print(text_table(("trial", "Pillow files/s", "kdeep predict files/s", "predict / Pillow", "Pillow CPU us/file",
                      "predict CPU us/file", "model alone files/s (1 thread)", "model alone files/s (all cores)"),
                     [(r["trial"], f"{r['pillow_files_per_s']:,.0f}", f"{r['predict_files_per_s']:,.0f}",
                       f"{r['ratio']:.2f}", f"{r['pillow_cpu_us_per_file']:.0f}", f"{r['predict_cpu_us_per_file']:.0f}",
                       f"{r['litert_files_per_s']:,.0f}", f"{r['litert_all_cores_files_per_s']:,.0f}") for r in rows],
                     right=(1, 2, 3, 4, 5, 6, 7)))
    load = os.getloadavg()
    print(f"\nmedian ratio {ratio:.2f} (target >= 0.5); load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    out = write_json(Path(args.out_dir) / "bench_predict.json", {
        "machine": machine, "cpu_flags": _flags(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "images": args.images, "model": args.model or "deepconvnet int8 (kdeep export)", "rows": rows,
        "median_ratio": ratio, "load_average": load})
    print(f"wrote {out}")


def _flags() -> str:
    """The CPU's flags line (/proc/cpuinfo), empty elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].strip()
    return ""


if __name__ == "__main__":
    main()
