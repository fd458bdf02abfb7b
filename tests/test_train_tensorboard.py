"""TensorBoard out of the box: a run's logs/train and logs/validation read back with TensorBoard's own reader."""
import csv

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

import kdeep.train
from kdeep.train import TrainConfig
from kdeep.train import run_dir as rd

EPOCHS = 2


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series TensorBoard finds under `log_dir`: tag -> [(step, value), ...]."""
    reader = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    reader.Reload()
    series = {tag: [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
                    for event in reader.Tensors(tag)] for tag in reader.Tags()["tensors"]}
    series.update({tag: [(event.step, event.value) for event in reader.Scalars(tag)]
                   for tag in reader.Tags()["scalars"]})
    return series


@pytest.mark.slow
def test_event_files_hold_the_history_of_every_epoch(tmp_path):
    config = TrainConfig(epochs=EPOCHS, limit=500, val_split=100, batch_size=50, out=str(tmp_path))
    run = kdeep.train.fit("deepconvnet", "mnist", config=config, verbose=0)
    with open(run.dir / rd.HISTORY, newline="") as handle:
        history = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in history] == list(range(1, EPOCHS + 1))

    train, validation = scalars(run.dir / rd.LOGS / "train"), scalars(run.dir / rd.LOGS / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(train)
    assert {"epoch_loss", "epoch_accuracy"} <= set(validation)
    steps = list(range(EPOCHS))  # TensorBoard's step is the 0-based epoch
    for tag, column in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy"), ("epoch_learning_rate", "lr")):
        assert [step for step, _ in train[tag]] == steps
        assert [value for _, value in train[tag]] == pytest.approx([float(row[column]) for row in history], rel=1e-6)
    for tag, column in (("epoch_loss", "val_loss"), ("epoch_accuracy", "val_accuracy")):
        assert [step for step, _ in validation[tag]] == steps
        assert [value for _, value in validation[tag]] == pytest.approx([float(row[column]) for row in history],
                                                                        rel=1e-6)
    assert train["epoch_loss"][-1][1] < train["epoch_loss"][0][1]  # real training, not constants
