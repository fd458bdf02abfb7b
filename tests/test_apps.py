"""The runnable apps refuse bad arguments with a one-line error and exit code 2, before any training starts."""
import subprocess
import sys
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.mark.parametrize("app, argv, named", [
    ("quantization_report.py", ["--jobs", "deepconvnet_mnist,nope"], "nope"),
    ("quantization_report.py", ["--jobs", "deepconvnet_mnist", "--max-drop", "100"], "--max-drop"),
    pytest.param("mnist_deepconvnet.py", ["--only", "book,nope"], "nope", marks=pytest.mark.slow),  # imports TF
    pytest.param("edge_clients.py", ["{tmp}/nothing.keras"], "nothing.keras", marks=pytest.mark.slow),  # imports TF
    ("edge_clients.py", ["{tmp}", "--variants", "int3"], "int3"),
])
def test_unknown_job_is_refused(app, argv, named, tmp_path):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    done = subprocess.run([sys.executable, str(APPS / app), "--out", str(tmp_path / "out"), *argv],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert named in error and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_every_quantization_report_job_names_a_registered_model_and_a_known_dataset():
    import kdeep.data
    import kdeep.models
    from kdeep import analysis
    from kdeep.train.config import TrainConfig

    sys.path.insert(0, str(APPS))
    try:
        import quantization_report
    finally:
        sys.path.remove(str(APPS))
    jobs = quantization_report.JOBS
    assert len({job.name for job in jobs}) == len(jobs) >= 3
    for job in jobs:  # every job trains on this CPU, with validation images held out for the --max-drop search
        assert job.model in kdeep.models.list_models() and job.dataset in kdeep.data.list_datasets(), job
        val_split = TrainConfig.from_recipe(job.recipe, **job.overrides).val_split
        assert kdeep.data.validation_count(val_split, 60000) > 0, job
        model = kdeep.models.build(job.model, input_shape=kdeep.data.get_spec(job.dataset).image_shape, **job.build)
        assert analysis.summarize(model).macs < 100e6, job  # not a full-width VGG (467 M MACs)
