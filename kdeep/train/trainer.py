"""The trainer: model and optimizer built in the strategy scope, Keras's own fit as the step, a crash-safe run dir."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import keras
import numpy as np

from kdeep import io
from kdeep import scoring
from kdeep.contract import attach, contract_of
from kdeep.data.datasets import class_names
from kdeep.data.splits import num_classes as classes_of
from kdeep.data.splits import run_splits
from kdeep.errors import ArtifactError, ConfigError, TrainingError
from kdeep.models import presets
from kdeep.shapes import takes_images
from kdeep.train import distill
from kdeep.train import run_dir as rd
from kdeep.train import schedules
from kdeep.train.config import TrainConfig

Arrays = tuple[np.ndarray, np.ndarray]
# fit warns that shuffle=True is ignored for a tf.data.Dataset: kdeep's pipeline already shuffles.
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


@dataclass
class Run:
    """A finished training run.

    Attributes:
        dir: the run directory.
        model: the selected model (what model.keras holds).
        metrics: what metrics.json holds (test_accuracy, test_loss, params, epochs_completed, ...).
        history: one dict per finished epoch (what history.csv holds).
    """

    dir: Path
    model: keras.Model
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def fit(model_or_name: str | keras.Model, dataset: str | tuple[Arrays, Arrays], *, config: TrainConfig | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (), verbose: int | str = "auto") -> Run:
    """Trains a model into a run directory, resuming it when the directory holds an unfinished run.

    Args:
        model_or_name: a registered model name (built for the dataset's image shape and classes, under the
            config's mixed-precision policy) or a Keras model (float32 only).
        dataset: a dataset name (kdeep.data) or ((x_train, y_train), (x_test, y_test)) arrays.
        config: the TrainConfig (defaults: the book's settings). `config.out` is the run directory (a new
            temporary directory when None).
        callbacks: extra Keras callbacks (after kdeep's own).
        verbose: Keras fit verbosity (1 = progress bars).

    Returns:
        The Run (directory, selected model, metrics, history).

    Raises:
        ConfigError: bad configuration, or a different config already in the run directory.
        TrainingError: the loss became NaN/inf (the last good epoch stays in last.keras).
    """
    config = with_names(config or TrainConfig(), model_or_name, dataset)
    splits = run_splits(dataset, val_split=config.val_split, limit=config.limit)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits.train, splits.validation, splits.test
    out = rd.check(rd.out_dir(config.out, "kdeep-run-"), config)
    strategy = make_strategy(config.strategy)  # before any other TensorFlow work (multi-worker needs that)
    from kdeep.distribute import is_chief, worker_dir, xla_supported  # XLA has no CPU collectives: off for CPU replicas

    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    num_classes = classes_of(dataset)
    teacher = (distill.teacher_model(config.teachers, x_train.shape[1:], num_classes,
                                     class_names(dataset) if isinstance(dataset, str) else None)
               if config.teacher else None)
    with strategy.scope():  # the model is built (and refused) before anything is written
        model = _build(model_or_name, config, x_train.shape[1:], num_classes, strategy)
        if config.init and not (out / rd.LAST).exists():  # a resumed run continues from last.keras instead
            _warm_start(model, config.init)
        if isinstance(dataset, str):  # the class names travel with the model (its labels file when exported)
            attach(model, dataclasses.replace(contract_of(model), labels=class_names(dataset)))
        _compile(model, config, steps_per_epoch, jit_compile=config.jit_compile and xla_supported(strategy))
    run_dir = rd.prepare(out, config, write=is_chief(strategy))  # only the chief writes the run directory
    write_dir = worker_dir(run_dir, strategy)  # run_dir on the chief; other multi-worker tasks write a temp dir
    with strategy.scope():
        initial_epoch = _restore(model, run_dir, steps_per_epoch)
    state = _resume_state(run_dir, initial_epoch)
    if verbose and is_chief(strategy):
        _announce(config, splits, run_dir, strategy.num_replicas_in_sync, initial_epoch)

    input_range = contract_of(model).input_range
    train = _dataset(x_train, y_train, config, num_classes, input_range, shuffle=True,
                     seed=config.seed * 1000 + initial_epoch, teacher=teacher)
    has_val = len(x_val) > 0
    val = _dataset(x_val, y_val, config, num_classes, input_range, shuffle=False, teacher=teacher) if has_val else None
    keeper = _RunKeeper(write_dir, state, config.select == "best", early_stopping=config.early_stopping)
    validate_average = [keras.callbacks.SwapEMAWeights()] if config.ema and has_val else []  # val_ scores it
    all_callbacks = [*validate_average, keeper, *schedules.callbacks(config, has_val, state["history"]),
                     _TensorBoardScalars(write_dir / rd.LOGS), *callbacks]
    if initial_epoch < config.epochs and not stops_early(state["history"], config.early_stopping):
        train_call(model, config.strategy)(train, validation_data=val, epochs=config.epochs,
                                           steps_per_epoch=steps_per_epoch, initial_epoch=initial_epoch,
                                           callbacks=all_callbacks, verbose=verbose)
    if keeper.failure:
        raise TrainingError(f"{keeper.failure}; {run_dir / rd.LAST} holds the last good epoch "
                            f"({state.get('epochs_completed', 0)}): lower --lr or use float32, then rerun")
    done = len(state["history"])
    if verbose and done < config.epochs and stops_early(state["history"], config.early_stopping):
        print(f"kdeep: stopped early after epoch {done}/{config.epochs}: no better validation accuracy than "
              f"epoch {best_row(state['history'])['epoch']} for {config.early_stopping} epochs")

    if config.ema:  # the averaged weights into the model (fit does it too; a finished run resumed skips fit)
        model.optimizer.finalize_variable_values(model.trainable_variables)
    selected = io.load_model(write_dir / rd.BEST) if config.select == "best" else model
    io.save_model(selected, write_dir / rd.MODEL)
    if verbose and is_chief(strategy):
        print(f"kdeep: evaluating the {config.select} model on {len(x_test):,} test images", flush=True)
    metrics = _metrics(selected, config, state, (x_train, x_val, x_test), scoring.score(selected, (x_test, y_test)))
    io.write_json(write_dir / rd.METRICS, metrics)
    return Run(run_dir, selected, metrics, state["history"])


def _announce(config: TrainConfig, splits: Any, run_dir: Path, replicas: int, initial_epoch: int) -> None:
    """The opening line of a run: what trains on which images, how, and where it goes (and where it resumes)."""
    counts = (len(splits.train[0]), len(splits.validation[0]), len(splits.test[0]))
    recipe = f" (recipe {config.recipe})" if config.recipe else ""
    print(f"kdeep: training {config.model} on {config.dataset}: {counts[0]:,} training images, {counts[1]:,} "
          f"validation, {counts[2]:,} test; {config.epochs} epochs of batch {config.batch_size}{recipe} on "
          f"{replicas} replica{'s' if replicas > 1 else ''}; run dir {run_dir}", flush=True)
    if initial_epoch:
        print(f"kdeep: resuming {run_dir} after epoch {initial_epoch}/{config.epochs}", flush=True)


def best_row(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch row with the best validation accuracy (the first of equals), or None without validation."""
    scored = [row for row in history if "val_accuracy" in row]
    return max(scored, key=lambda row: row["val_accuracy"]) if scored else None


def epochs_since_best(history: Sequence[dict[str, Any]]) -> int:
    """Finished epochs after the one with the best validation accuracy (the first of equals; 0 without validation).

    Args:
        history: the run's epoch rows (history.csv), oldest first.

    Returns:
        How many epochs came after the best one.
    """
    best = best_row(history)
    return history[-1]["epoch"] - best["epoch"] if best else 0


def stops_early(history: Sequence[dict[str, Any]], patience: int) -> bool:
    """True when early stopping ends the run here: `patience` (> 0) epochs without a better validation accuracy."""
    return patience > 0 and epochs_since_best(history) >= patience


def make_strategy(name: str) -> Any:
    """The ONE place the trainer creates its tf.distribute strategy ("auto", "one", "mirrored", "multi-worker")."""
    from kdeep.distribute.strategy import strategy_from_name

    return strategy_from_name(name)


def train_call(model: keras.Model, strategy_name: str) -> Callable[..., Any]:
    """The ONE training call: Keras's `model.fit`, or under "multi-worker" kdeep.distribute's loop, which runs
    the same `model.train_step` inside `strategy.run` (Keras 3 fit fails under MultiWorkerMirroredStrategy)."""
    if strategy_name == "multi-worker":
        from kdeep.distribute.loop import fit as multi_worker_fit

        return functools.partial(multi_worker_fit, model)
    return model.fit


def with_names(config: TrainConfig, model_or_name: str | keras.Model, dataset: Any) -> TrainConfig:
    """The config with its model and dataset fields naming what fit is given ("arrays" for arrays)."""
    model = model_or_name if isinstance(model_or_name, str) else model_or_name.name
    return dataclasses.replace(config, model=model, dataset=dataset if isinstance(dataset, str) else "arrays")


def _build(model_or_name: str | keras.Model, config: TrainConfig, input_shape: tuple[int, ...], num_classes: int,
           strategy: Any) -> keras.Model:
    """Builds a named model under the mixed-precision policy, or moves a given model into the strategy."""
    import tensorflow as tf

    if isinstance(model_or_name, str):
        import kdeep.models

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(config.mixed_precision)
        try:
            return kdeep.models.build(model_or_name, input_shape=tuple(input_shape), num_classes=num_classes,
                                      width=config.width)
        finally:
            keras.config.set_dtype_policy(previous)
    takes = tuple(model_or_name.inputs[0].shape[1:])
    if not takes_images(takes, input_shape):
        raise ConfigError(f"model {model_or_name.name!r} takes inputs of shape {takes} and the dataset's images are "
                          f"{tuple(input_shape)}: build the model for that shape, or fine-tune it with kdeep "
                          f"finetune (kdeep.train.transfer), which resizes the images and repeats grey to RGB")
    if config.mixed_precision != "float32":
        raise ConfigError(f"mixed_precision={config.mixed_precision!r} needs the model by name (it sets the policy "
                          f"before building): pass a registered name, or build the model under the policy yourself")
    if not tf.distribute.has_strategy():
        return model_or_name
    clone = keras.models.clone_model(model_or_name)  # variables must be created inside the strategy's scope
    clone.set_weights(model_or_name.get_weights())
    return attach(clone, contract_of(model_or_name))  # a clone is a new object: it gets the contract again


def _warm_start(model: keras.Model, source: str) -> None:
    """Sets `model`'s weights from `source` (a preset name, run directory or .keras file: `TrainConfig.init`);
    ConfigError when they do not fit (another model, width or input shape)."""
    trained = presets.as_model(source)
    shapes = [tuple(weight.shape) for weight in model.weights]
    if [tuple(weight.shape) for weight in trained.weights] != shapes:
        raise ConfigError(f"init={source!r} holds {trained.name!r} ({trained.count_params():,} parameters), which "
                          f"does not fit {model.name!r} ({model.count_params():,}): start from weights of the same "
                          f"model, width and input shape")
    model.set_weights(trained.get_weights())


def _compile(model: keras.Model, config: TrainConfig, steps_per_epoch: int, *, jit_compile: bool) -> None:
    """Compiles with the config's optimizer, LR schedule, loss (label smoothing or distillation) and XLA on or off."""
    lr = schedules.learning_rate(config, steps_per_epoch)
    decay = config.weight_decay or None
    ema = dict(use_ema=True, ema_momentum=config.ema) if config.ema else {}
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(lr, weight_decay=decay, **ema),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **ema),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=config.nesterov,
                                            weight_decay=decay, **ema),
    }[config.optimizer]()
    output = contract_of(model).output
    metrics: list[Any] = ["accuracy"]
    if config.teacher:
        num_classes = int(model.outputs[0].shape[-1])
        loss = distill.loss(config.distill_alpha, config.distill_temperature, num_classes, output)
        metrics = [distill.accuracy(num_classes)]
    elif config.label_smoothing or config.mixup:
        loss = keras.losses.CategoricalCrossentropy(from_logits=output == "logits",
                                                    label_smoothing=config.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=output == "logits")
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)


def _restore(model: keras.Model, run_dir: Path, steps_per_epoch: int) -> int:
    """Loads last.keras (weights and optimizer state) when present; returns the epochs it has finished."""
    last = run_dir / rd.LAST
    if not last.exists():
        return 0
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(last)
    except Exception as error:  # ValueError, OSError, zipfile.BadZipFile (a truncated file), ...
        raise ArtifactError(f"cannot resume from {last} ({type(error).__name__}: {str(error).strip()[:160]}): delete "
                            f"it and {run_dir / rd.STATE} to restart the run") from None
    return int(model.optimizer.iterations.numpy()) // steps_per_epoch


def _resume_state(run_dir: Path, epochs_done: int) -> dict[str, Any]:
    """state.json cut back to the epochs last.keras holds (rows of a newer, unsaved epoch are redone)."""
    state = rd.read_state(run_dir)
    history = state.get("history", [])[:epochs_done]
    state.update(history=history, epochs_completed=epochs_done,
                 train_seconds=sum(row["seconds"] for row in history))
    for key in ("best_val_accuracy", "best_epoch"):
        state.pop(key, None)
    best = best_row(history)
    if best:
        state.update(best_val_accuracy=best["val_accuracy"], best_epoch=best["epoch"])
    return state


def _dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig, num_classes: int, input_range: tuple[float, float],
             *, shuffle: bool, seed: int | None = None, teacher: keras.Model | None = None) -> Any:
    """The kdeep.data pipeline with the GLOBAL batch size; one-hot labels when label smoothing or mixup is on
    (training batches mixed, `kdeep.data.mixup`), the labels and the teacher's softened outputs
    (`distill.soft_targets`) when distilling.

    Training data (shuffled) repeats, so one iterator serves every epoch: fit given a finite dataset makes a
    new iterator each epoch (and discards the one it prepared at the end of the last), which stalled epochs of
    60,000 MNIST images here by up to a minute before their first step (docs/BENCHMARKS.md).
    """
    import tensorflow as tf

    import kdeep.data
    from kdeep.data.mixup import mixup

    augment = config.augment if shuffle else None
    dataset = kdeep.data.pipeline(x, y, config.batch_size, augment=augment, shuffle=shuffle, seed=seed, repeat=shuffle,
                                  input_range=input_range)
    if config.mixup and shuffle:
        dataset = mixup(dataset, config.mixup, num_classes, seed=seed)
    elif config.label_smoothing or config.mixup:  # categorical targets, validation batches too
        dataset = dataset.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))
    if teacher is not None:
        return distill.soft_targets(dataset, teacher, num_classes, config.distill_temperature)
    return dataset


@contextlib.contextmanager
def averaged_weights(model: keras.Model) -> Iterator[keras.Model]:
    """Within the block, `model` holds its optimizer's moving average of the weights (`--ema`); the raw weights
    come back after it. A model whose optimizer keeps no average is left as it is.

    Args:
        model: a compiled model, during or after training.

    Yields:
        The same model.
    """
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # under a LossScaleOptimizer
    if not getattr(optimizer, "use_ema", False):
        yield model
        return
    variables = model.trainable_variables
    raw = [keras.ops.convert_to_numpy(variable) for variable in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield model
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)


class _RunKeeper(keras.callbacks.Callback):
    """Times each epoch, stops on a NaN/inf loss, and after each good epoch writes (in this order) best.keras,
    state.json, last.keras and history.csv, each atomically, then stops the run when early stopping says so
    (`early_stopping` > 0). With weight averaging (`--ema`), best.keras holds the averaged weights (those
    validation scored) and last.keras the raw ones.

    Async-safe: Keras may run the per-batch NaN check on its callback thread (so fit need not wait for each
    batch's loss); it flushes those calls before on_epoch_end, which therefore always sees a failure.
    """

    async_safe = True

    def __init__(self, run_dir: Path, state: dict[str, Any], keep_best: bool, early_stopping: int = 0):
        super().__init__()
        self.run_dir, self.state, self.keep_best = run_dir, state, keep_best
        self.early_stopping = early_stopping
        self.failure: str | None = None
        self._epoch, self._start = 0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._start = epoch, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"the loss became {float(loss)} in epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        values = {key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0}
        if self.failure or not all(math.isfinite(v) for v in values.values()):
            self.failure = self.failure or f"a metric became NaN/inf in epoch {epoch + 1} ({values})"
            self.model.stop_training = True
            return
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, **{k: v for k, v in values.items() if k != "learning_rate"}, "lr": lr,
               "seconds": round(seconds, 3)}
        state = self.state
        state["history"].append(row)
        state["epochs_completed"] = epoch + 1
        state["train_seconds"] = sum(r["seconds"] for r in state["history"])
        if self.keep_best and row.get("val_accuracy", -1.0) > state.get("best_val_accuracy", -1.0):
            self._save_best()
            state["best_val_accuracy"], state["best_epoch"] = row["val_accuracy"], epoch + 1
        io.write_json(self.run_dir / rd.STATE, state)
        io.save_model(self.model, self.run_dir / rd.LAST)
        rd.write_history(self.run_dir / rd.HISTORY, state["history"])
        if stops_early(state["history"], self.early_stopping):
            self.model.stop_training = True

    def _save_best(self) -> None:
        """best.keras: the model, with the optimizer's averaged weights in it when averaging."""
        with averaged_weights(self.model):
            io.save_model(self.model, self.run_dir / rd.BEST)


class _TensorBoardScalars(keras.callbacks.Callback):
    """Per-epoch scalars as TensorBoard event files in logs/train and logs/validation (`tensorboard --logdir`), one
    writer per split opened at the first epoch, flushed after each and closed when training ends."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = log_dir
        self.writers: dict[str, Any] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf

        logs = dict(logs or {}, learning_rate=keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        for split, prefix in (("train", ""), ("validation", "val_")):
            values = {k[len(prefix):]: v for k, v in logs.items() if k.startswith(prefix) and
                      (prefix or not k.startswith("val_"))}
            if not values:
                continue
            if split not in self.writers:
                self.writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
            with self.writers[split].as_default():
                for name, value in values.items():
                    tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)
            self.writers[split].flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _metrics(model: keras.Model, config: TrainConfig, state: dict[str, Any], splits: tuple[np.ndarray, ...],
             test: scoring.Score) -> dict[str, Any]:
    """metrics.json: test numbers of the selected model, size, and training speed."""
    import tensorflow as tf

    x_train, x_val, x_test = splits
    history = state["history"]
    selected_epoch = state.get("best_epoch") if config.select == "best" else len(history)
    train_seconds = float(state.get("train_seconds", 0.0))
    return {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "params": int(model.count_params()),
        "epochs_completed": len(history),
        "stopped_early": len(history) < config.epochs,
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(len(x_train) * len(history) / train_seconds, 1) if train_seconds else None,
        "select": config.select,
        "selected_epoch": selected_epoch,
        "val_accuracy": history[selected_epoch - 1].get("val_accuracy") if selected_epoch else None,
        "train_images": len(x_train),
        "val_images": len(x_val),
        "test_images": len(x_test),
        "model": config.model,
        "dataset": config.dataset,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
