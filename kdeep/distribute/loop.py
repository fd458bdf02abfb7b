"""Multi-worker training loop: Keras's own `train_step`/`test_step` inside `strategy.run`, with per-epoch backups.

Keras 3.15 `model.fit` fails under MultiWorkerMirroredStrategy in TF 2.21 ("Attempt to convert a value
(PerReplica...)", then "Invalid reduction dimension 0" from `strategy.reduce("MEAN", v, axis=0)` on scalar
logs). This loop is fit's epoch loop without those reductions: each step is
`strategy.run(model.train_step, args=(batch,))`, Keras's own step, so the forward pass, loss scaling, gradient
all-reduce and metric updates are exactly what `fit` runs. Logs are read from the model's metrics, which are
sync-on-read variables summed over every replica of every worker.
"""
from __future__ import annotations

import atexit
import hashlib
import itertools
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import keras
import tensorflow as tf

from kdeep.distribute.strategy import cluster_of, is_chief, xla_supported

BACKUP_PREFIX = "backup"
_STEP_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {step name: tf.function}


def fit(
    model: keras.Model,
    x: tf.data.Dataset,
    *,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    validation_data: tf.data.Dataset | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
    initial_epoch: int = 0,
    backup_dir: str | os.PathLike | None = None,
) -> keras.callbacks.History:
    """Trains like `model.fit(x, ...)` under the model's strategy (any strategy, multi-worker included).

    A `keras.callbacks.BackupAndRestore` among `callbacks` is replaced by this loop's strategy-aware
    equivalent in its `backup_dir`: after every epoch the model, optimizer and epoch number are checkpointed
    (the chief into `backup_dir`, other workers into a temp dir they delete), a restarted job resumes after the
    last backed-up epoch, and the backup is deleted when training completes.

    Args:
        model: a compiled Keras model, built and compiled inside `strategy.scope()`.
        x: the training dataset of (inputs, labels) with the GLOBAL batch size; it is sharded by data.
        epochs: the epoch to stop after (as in `fit`).
        steps_per_epoch: batches per epoch, taken from one iterator that lives across epochs (needed for a
            repeating dataset); None: one full pass over `x` per epoch.
        validation_data: an optional dataset evaluated after each epoch (logs prefixed with `val_`).
        callbacks: Keras callbacks; they run on every worker with identical, globally reduced logs.
        verbose: 0 silent, 1 progress bar ("auto": 1); only the chief shows it.
        initial_epoch: the epoch to start from when there is no backup.
        backup_dir: where backups live (a directory all workers reach); overrides a BackupAndRestore's.

    Returns:
        The `History` of the epochs run by this call.
    """
    strategy = model.distribute_strategy
    callbacks = list(callbacks or [])
    for callback in [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]:
        backup_dir = backup_dir or callback.backup_dir
        callbacks.remove(callback)
    x = _shard_by_data(x)
    with strategy.scope():
        model._symbolic_build(data_batch=x.element_spec)  # what fit does first: build metrics, loss, optimizer
    backup = _Backup(model, backup_dir) if backup_dir else None
    if backup:
        initial_epoch = backup.restore() or initial_epoch
    if not is_chief(strategy) or verbose == "auto":  # one progress bar per job: the chief's
        verbose = int(is_chief(strategy))
    steps = steps_per_epoch or _cardinality(x)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs, steps=steps, model=model
    )
    train_data = strategy.experimental_distribute_dataset(x)
    persistent = iter(train_data) if steps_per_epoch else None
    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs, interrupted = _run_epochs(model, callback_list, range(initial_epoch, epochs),
                                          lambda: persistent or iter(train_data), steps, validation_data, backup)
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    if backup and not interrupted:
        backup.delete()
    return model.history


def _run_epochs(model: keras.Model, callback_list: keras.callbacks.CallbackList, epochs: range,
                batches: Callable[[], Any], steps: int | None, validation_data: tf.data.Dataset | None,
                backup: _Backup | None) -> tuple[dict[str, float], bool]:
    """fit's epoch loop: train each epoch on `batches()` (a distributed iterator), validate, run the callbacks and
    back up; returns the last epoch's logs and whether a callback stopped an epoch mid-way (`interrupted`: that
    epoch is not backed up)."""
    train_step = _distributed_step(model, model.train_step)
    epoch_logs: dict[str, float] = {}
    for epoch in epochs:
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        interrupted = False
        for step, logs in _steps(train_step, batches(), steps, callback_list.on_train_batch_begin):
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                interrupted = True
                break
        epoch_logs = _metric_logs(model)
        if validation_data is not None:  # inside on_test_begin/end, as in fit (SwapEMAWeights hooks there)
            callback_list.on_test_begin()
            epoch_logs.update({f"val_{name}": value for name, value in evaluate(model, validation_data).items()})
            callback_list.on_test_end()
        callback_list.on_epoch_end(epoch, epoch_logs)
        if interrupted:
            return epoch_logs, True
        if backup:
            backup.save(epoch)
        if model.stop_training:
            break
    return epoch_logs, False


def evaluate(model: keras.Model, x: tf.data.Dataset) -> dict[str, float]:
    """Evaluates like `model.evaluate(x, return_dict=True)` under the model's strategy (multi-worker included).

    Args:
        model: a compiled Keras model, built inside its strategy's scope.
        x: a dataset of (inputs, labels) with the global batch size.

    Returns:
        The model's metrics over the whole dataset (every worker gets the same values).
    """
    x = _shard_by_data(x)
    strategy = model.distribute_strategy
    with strategy.scope():
        model._symbolic_build(data_batch=x.element_spec)
    test_step = _distributed_step(model, model.test_step)
    model.reset_metrics()
    for _ in _steps(test_step, iter(strategy.experimental_distribute_dataset(x)), _cardinality(x)):
        pass
    return _metric_logs(model)


def worker_dir(run_dir: str | os.PathLike, strategy: Any) -> Path:
    """Where this process writes artifacts: `run_dir` on the chief; elsewhere a temp dir removed at exit.

    The temp dir's name is fixed per run directory and task, so a worker restarted after a crash (when exit
    handlers never ran) starts by clearing what its previous life left there.

    Args:
        run_dir: the run directory the user asked for (created on the chief).
        strategy: the training strategy (its cluster decides who is chief).
    """
    if is_chief(strategy):
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return Path(run_dir)
    run_key = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]
    temp = Path(tempfile.gettempdir()) / f"kdeep-worker{cluster_of(strategy).task_index}-{run_key}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    atexit.register(shutil.rmtree, temp, ignore_errors=True)
    return temp


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset with AutoShardPolicy.DATA: every replica sees distinct examples of each global batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _cardinality(dataset: tf.data.Dataset) -> int | None:
    """The number of batches in one pass, or None when tf.data cannot tell."""
    count = int(dataset.cardinality())
    return count if count >= 0 else None


def _steps(step: Callable[[Any], dict], iterator: Any, steps: int | None,
           on_begin: Callable[[int], None] = lambda index: None) -> Iterator[tuple[int, dict]]:
    """Runs `step` on `steps` batches of a distributed iterator (all it has when None); yields (index, logs).

    Batches are taken inside the tf.function (as fit does), so no per-replica values cross into Python.
    With a known number of steps every worker stops together without probing for the end of the data.
    `on_begin(index)` runs before each step (the callbacks' on_train_batch_begin).
    """
    for index in itertools.count() if steps is None else range(steps):
        on_begin(index)
        try:
            logs = step(iterator)
        except tf.errors.OutOfRangeError:
            return
        yield index, logs


def _distributed_step(model: keras.Model, step: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """Wraps a Keras step (`model.train_step`/`model.test_step`) in `strategy.run` with mean-reduced logs.

    The tf.function takes the next batch from a distributed iterator; it is made once per model and step, so
    evaluating after every epoch traces only once.
    """
    functions = _STEP_FUNCTIONS.setdefault(model, {})
    if step.__name__ not in functions:
        strategy = model.distribute_strategy

        def on_batch(batch: Any) -> dict:
            logs = strategy.run(step, args=(batch,))
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), logs)

        if model.jit_compile and xla_supported(strategy):  # XLA compiles the step, not the iterator
            on_batch = tf.function(on_batch, jit_compile=True)
        functions[step.__name__] = tf.function(lambda iterator: on_batch(next(iterator)))
    return functions[step.__name__]


def _metric_logs(model: keras.Model) -> dict[str, float]:
    """The model's metric results as floats, summed over all replicas and workers (sync-on-read variables)."""
    return {name: float(value) for name, value in model.get_metrics_result().items()}


def _barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every replica of every worker has called it (an all-reduce of a constant)."""
    tf.function(lambda: strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None))()


class _Backup:
    """Per-epoch checkpoints of model, optimizer and epoch that every worker writes and restores together."""

    def __init__(self, model: keras.Model, backup_dir: str | os.PathLike):
        strategy = self.strategy = model.distribute_strategy
        self.directory = os.fspath(backup_dir)
        self.epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=self.epoch)
        self.chief = is_chief(strategy)
        cluster = cluster_of(strategy)
        write_dir = self.directory if self.chief else os.path.join(self.directory, f"worker{cluster.task_index}.tmp")
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir, max_to_keep=1, checkpoint_name=BACKUP_PREFIX)

    def restore(self) -> int:
        """Loads the chief's latest backup, if any; returns the epoch to continue from (0 when none)."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epoch.numpy()) + 1

    def save(self, epoch: int) -> None:
        """Backs up the state after `epoch`; every worker must call it (saving may run collectives)."""
        self.epoch.assign(epoch)
        self.manager.save()
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)

    def delete(self) -> None:
        """Removes the backup once training has completed (as BackupAndRestore does).

        Every worker calls it; the chief deletes only after all workers have reached it (a barrier), so a
        slower worker still writing its last backup under the folder never has it removed mid-save.
        """
        _barrier(self.strategy)
        if self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
