"""MultiWorkerMirroredStrategy with 2 local worker processes: same weights everywhere, chief-only artifacts, resume."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from kdeep.distribute import launch

EPOCHS = 3
KILL_ENV = "KDEEP_TEST_KILL_AT_EPOCH"  # worker 1 SIGKILLs itself when this epoch begins (first attempt only)


def worker(out: Path) -> None:
    """One worker: trains a small convnet on 1,024 MNIST images through kdeep.distribute.fit."""
    import keras

    import kdeep.data
    from kdeep.distribute import cluster_of, evaluate, fit, strategy_from_name, worker_dir

    strategy = strategy_from_name("multi-worker")
    task = cluster_of(strategy).task_index
    (x, y), (x_test, y_test) = kdeep.data.load("mnist")
    train = kdeep.data.pipeline(x[:1024], y[:1024], 64, seed=0)
    test = kdeep.data.pipeline(x_test[:256], y_test[:256], 128, shuffle=False)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(4),
            keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    class KillWorker1(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marker = out / "killed"
            if task == 1 and epoch == int(os.environ.get(KILL_ENV, -1)) and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), 9)

    run_dir = worker_dir(out / "run", strategy)
    print(f"artifacts in {run_dir}", flush=True)
    callbacks = [
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        KillWorker1(),
    ]
    history = fit(model, train, epochs=EPOCHS, validation_data=test, callbacks=callbacks, verbose=0)
    print(f"epochs run {history.epoch}", flush=True)
    metrics = {"task": task, **evaluate(model, test)}
    model.save(os.path.join(run_dir, "model.keras"))
    Path(run_dir, "metrics.json").write_text(json.dumps(metrics))
    np.savez(out / f"weights{task}.npz", *[w.numpy() for w in model.weights])


def run_workers(out: Path, capsys) -> tuple[int, str]:
    """Launches 2 workers of this file's `worker` and returns (exit code, their prefixed output)."""
    code = launch(2, [sys.executable, __file__, str(out)])
    return code, capsys.readouterr().out


def read_history(run_dir: Path) -> list[dict]:
    """The rows of the CSVLogger history as dicts of floats."""
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")))) for line in lines[1:] if line != lines[0]]


@pytest.mark.slow
def test_two_workers_resume_after_sigkill_and_finish_identical_with_chief_only_artifacts(tmp_path, capsys,
                                                                                       monkeypatch):
    out, run_dir = tmp_path, tmp_path / "run"
    monkeypatch.setenv(KILL_ENV, "2")
    code, output = run_workers(out, capsys)
    assert code == 128 + 9, output  # worker 1 died of SIGKILL as epoch 2 began; the launcher stopped worker 0
    assert (out / "backup").is_dir() and [row["epoch"] for row in read_history(run_dir)] == [0, 1]

    monkeypatch.delenv(KILL_ENV)
    code, output = run_workers(out, capsys)  # restart the job: it resumes after the backed-up epoch 1
    assert code == 0, output
    assert "[worker 0] epochs run [2]" in output and "[worker 1] epochs run [2]" in output
    first, second = np.load(out / "weights0.npz"), np.load(out / "weights1.npz")
    for name in first:  # gradients were all-reduced: both workers hold the same model
        np.testing.assert_array_equal(first[name], second[name])
    assert sorted(p.name for p in run_dir.iterdir()) == ["history.csv", "metrics.json", "model.keras"]
    assert json.loads((run_dir / "metrics.json").read_text())["task"] == 0  # written by the chief
    worker1_dir = output.split("[worker 1] artifacts in ")[1].splitlines()[0]
    assert worker1_dir != str(run_dir) and not Path(worker1_dir).exists()  # worker 1's temp dir, removed
    assert not (out / "backup").exists()  # deleted once training completed
    history = read_history(run_dir)
    assert [row["epoch"] for row in history] == list(range(EPOCHS))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_accuracy"] > 0.5  # 10 classes: chance is 0.1
    import keras

    reloaded = keras.models.load_model(run_dir / "model.keras")
    np.testing.assert_allclose(reloaded.get_weights()[0], first["arr_0"])



def test_loop_validates_between_the_test_hooks_so_swap_ema_weights_scores_the_average(mnist):
    import keras

    import kdeep.data
    from kdeep.distribute import evaluate, fit

    (x, y), _ = mnist
    train = kdeep.data.pipeline(x[:256], y[:256], 64, seed=0)
    val = kdeep.data.pipeline(x[256:512], y[256:512], 128, shuffle=False)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(3e-3, use_ema=True, ema_momentum=0.5), "sparse_categorical_crossentropy")
    raw = []

    class KeepRawWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raw.extend(w.numpy().copy() for w in self.model.trainable_weights)

    history = fit(model, train, epochs=1, validation_data=val, callbacks=[keras.callbacks.SwapEMAWeights(),
                                                                          KeepRawWeights()], verbose=0)
    averaged_loss = evaluate(model, val)["loss"]  # the loop finalizes: the model now holds the average
    for variable, value in zip(model.trainable_weights, raw):
        variable.assign(value)
    assert history.history["val_loss"][0] == pytest.approx(averaged_loss, rel=1e-4)
    assert averaged_loss != pytest.approx(evaluate(model, val)["loss"], rel=1e-3)


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
