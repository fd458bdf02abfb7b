"""The local launcher: one TF_CONFIG per worker, prefixed output, failure propagation, and the CLI wiring."""
import io
import json
import sys
import time

from kdeep.distribute.launch import worker_command
from kdeep.distribute import launch, parse_tf_config, tf_configs

PRINT_TASK = "import json, os; print(json.loads(os.environ['TF_CONFIG'])['task']['index']); print('bye')"


def test_each_worker_gets_its_tf_config_and_a_prefixed_output():
    output = io.StringIO()
    assert launch(3, [sys.executable, "-c", PRINT_TASK], port_base=23456, output=output) == 0
    lines = output.getvalue().splitlines()
    for index in range(3):
        assert f"[worker {index}] {index}" in lines and f"[worker {index}] bye" in lines
    specs = [parse_tf_config(text) for text in tf_configs(3, port_base=23456)]
    assert specs[0].cluster["worker"] == ["127.0.0.1:23456", "127.0.0.1:23457", "127.0.0.1:23458"]
    assert [spec.is_chief for spec in specs] == [True, False, False]
    ports = json.loads(tf_configs(2)[0])["cluster"]["worker"]
    assert len(set(ports)) == 2  # free ports, distinct


def test_a_failing_worker_fails_the_job_and_stops_the_others():
    script = ("import json, os, sys, time; index = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
              "sys.exit(3) if index == 1 else time.sleep(120)")
    start = time.monotonic()
    assert launch(2, [sys.executable, "-c", script], output=io.StringIO()) == 3
    assert time.monotonic() - start < 60  # worker 0 was terminated, not waited for


def test_cli_runs_kdeep_train_under_multi_worker_strategy_by_default():
    assert worker_command(["--", "train", "--epochs", "1"])[1:] == [
        "-m", "kdeep", "train", "--epochs", "1", "--strategy", "multi-worker"]
    assert worker_command(["--", "--epochs", "1"])[3:] == ["train", "--epochs", "1", "--strategy", "multi-worker"]
    assert worker_command(["--", "train", "--strategy=one"])[3:] == ["train", "--strategy=one"]


def test_progress_bar_redraws_collapse_to_their_final_state():
    script = r"import sys; sys.stdout.write('1/3 .\r2/3 ..\b\r3/3 ...\nnext line\nno newline')"
    output = io.StringIO()
    assert launch(1, [sys.executable, "-c", script], output=output) == 0
    assert output.getvalue() == "[worker 0] 3/3 ...\n[worker 0] next line\n[worker 0] no newline\n"
