"""The runnable apps refuse bad arguments with a one-line error and exit code 2, before any training starts."""
import subprocess
import sys
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.mark.parametrize("app, argv, named", [
    ("quantization_report.py", ["--jobs", "deepconvnet_mnist,nope"], "nope"),
    ("quantization_report.py", ["--jobs", "deepconvnet_mnist", "--max-drop", "100"], "--max-drop"),
    ("mnist_deepconvnet.py", ["--only", "book,nope"], "nope"),
])
def test_unknown_job_is_refused(app, argv, named, tmp_path):
    done = subprocess.run([sys.executable, str(APPS / app), "--out", str(tmp_path / "out"), *argv],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert named in error and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_quantization_report_lists_its_three_jobs():
    sys.path.insert(0, str(APPS))
    try:
        import quantization_report
    finally:
        sys.path.remove(str(APPS))
    jobs = {job.name: job for job in quantization_report.JOBS}
    assert set(jobs) == {"deepconvnet_mnist", "resnet20_fashion_mnist", "vgg11_bn_mnist"}
    assert jobs["resnet20_fashion_mnist"].recipe == "sgd_cosine"  # so /work/runs/r20fm-style runs can be reused
    assert jobs["vgg11_bn_mnist"].build == {"width": 0.25}  # ~30 MMACs, not the full-width 467
