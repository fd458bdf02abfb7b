"""Knowledge distillation (Hinton et al. 2015): one model trained on the softened outputs of trained teachers.

`kdeep train --teacher A[,B,...]` runs the teachers (their softmax averaged, as `build_ensemble` does) on every
training batch, after augmentation, and trains the student on

    loss = alpha * CE(label, student) + (1 - alpha) * T^2 * CE(softmax(teacher_logits / T), softmax(student_logits / T))

where a model that ends in a softmax has log-probabilities as its logits (softmax(log p / T) = softmax(z / T)).
The targets travel as one tensor per batch, the one-hot label then the teacher's softened distribution, so the
student stays a plain Keras model (its model.keras holds no teacher).
"""
from __future__ import annotations

from typing import Any

import keras

from kdeep.contract import contract_of
from kdeep.errors import ConfigError
from kdeep.models import presets
from kdeep.shapes import takes_images


def teacher_model(names: list[str], image_shape: tuple[int, ...], num_classes: int,
                  labels: tuple[str, ...] | None = None) -> keras.Model:
    """The teacher: the model, or the average of the models, named in `names` (preset names, run directories or
    .keras files: `TrainConfig.teachers`), frozen; each must take images of `image_shape` and give `num_classes` scores,
    for the class names `labels` when both it and the dataset name them.

    Raises:
        ConfigError: a teacher that does not read the student's images or predict its classes.
    """
    from kdeep.train.ensemble import build_ensemble  # it imports the trainer, which imports this module

    members = [presets.as_model(name) for name in names]
    for name, member in zip(names, members):
        takes, gives = tuple(member.inputs[0].shape[1:]), tuple(member.outputs[0].shape[1:])
        if not takes_images(takes, image_shape) or gives != (num_classes,):
            raise ConfigError(f"teacher {name!r} maps {takes} to {gives}, and the dataset has images of "
                              f"{tuple(image_shape)} in {num_classes} classes: distil from models trained on it")
        named = contract_of(member).labels
        if labels and named and tuple(named) != tuple(labels):
            raise ConfigError(f"teacher {name!r} predicts {', '.join(named[:3])}, ... and the dataset's classes are "
                              f"{', '.join(labels[:3])}, ...: distil from models trained on this dataset")
        if contract_of(member).output == "features":
            raise ConfigError(f"teacher {name!r} has no classifier: give a model that outputs class scores")
    teacher = build_ensemble(members, name="teacher") if len(members) > 1 else members[0]
    teacher.trainable = False
    return teacher


def soft_targets(dataset: Any, teacher: keras.Model, num_classes: int, temperature: float) -> Any:
    """`dataset` of (images, labels) batches as (images, [one-hot label | the teacher's softmax at T]); labels that
    are already distributions (mixup's) stay as they are."""
    import tensorflow as tf

    logits = _logits(contract_of(teacher).output)

    def targets(images: Any, labels: Any) -> tuple[Any, Any]:
        soft = tf.nn.softmax(logits(teacher(images, training=False)) / temperature)
        hard = (tf.cast(labels, tf.float32) if labels.shape.rank == 2  # already distributions (mixup)
                else tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes))
        return images, tf.concat([hard, tf.cast(soft, hard.dtype)], axis=-1)

    return dataset.map(targets, num_parallel_calls=tf.data.AUTOTUNE)


def loss(alpha: float, temperature: float, num_classes: int, output: str) -> Any:
    """The distillation loss on packed targets (`soft_targets`) for a student whose contract output is `output`."""
    import tensorflow as tf

    logits = _logits(output)

    def distillation(targets: Any, outputs: Any) -> Any:
        hard, soft = targets[:, :num_classes], targets[:, num_classes:]
        z = logits(tf.cast(outputs, tf.float32))
        hard_term = -tf.reduce_sum(hard * tf.nn.log_softmax(z), axis=-1)
        soft_term = -tf.reduce_sum(soft * tf.nn.log_softmax(z / temperature), axis=-1)
        return alpha * hard_term + (1.0 - alpha) * temperature ** 2 * soft_term

    return distillation


def accuracy(num_classes: int) -> Any:
    """Top-1 accuracy against the label part of packed targets, logged as `accuracy` like the plain runs'."""
    import tensorflow as tf

    def accuracy(targets: Any, outputs: Any) -> Any:
        return tf.cast(tf.equal(tf.argmax(targets[:, :num_classes], -1), tf.argmax(outputs, -1)), tf.float32)

    return accuracy


def _logits(output: str) -> Any:
    """Outputs to logits: as they are, or log-probabilities (clipped away from 0) for a softmax output."""
    import tensorflow as tf

    if output == "logits":
        return lambda outputs: outputs
    return lambda outputs: tf.math.log(tf.clip_by_value(tf.cast(outputs, tf.float32), 1e-12, 1.0))
