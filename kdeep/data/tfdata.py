"""The tf.data input pipeline: shuffle, batch, then scale and augment whole batches in parallel, prefetched."""
from __future__ import annotations

import random

import numpy as np
import tensorflow as tf

from kdeep.data.augment import Augment, resolve
from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.errors import DataError


def _check_arrays(x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Validates and normalises the inputs: NHWC images, 1-D labels of the same length."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"pipeline needs images (N, H, W, C) and labels (N,), got {x.shape} and {y.shape}")
    if len(x) == 0:
        raise DataError("pipeline got no examples (empty x)")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    return x, y


def pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, *, augment: str | Augment | None = None,
             shuffle: bool = True, seed: int | None = None, repeat: bool = False, cache: bool = True,
             drop_remainder: bool = False, input_range: tuple[float, float] = UNIT_RANGE) -> tf.data.Dataset:
    """Builds a tf.data input pipeline over in-memory arrays.

    Order: examples -> cache -> shuffle (whole set) -> batch -> repeat -> scale to [0, 1], augment the
    batch and map it to the model's input range (parallel map) -> prefetch(AUTOTUNE). Auto-sharding is by data, so a tf.distribute strategy
    splits batches between workers. The same seed gives the same batches (shuffle order and augmentation);
    with repeat, every epoch draws new ones, and each run of ceil(N / batch_size) batches (N / batch_size
    with drop_remainder) is exactly one epoch: a batch never spans two.

    Args:
        x: images (N, H, W, C) or (N, H, W); uint8 (scaled by 1/255) or float already in [0, 1].
        y: integer labels (N,).
        batch_size: examples per batch.
        augment: None, a preset name ("digits", "cifar", "none") or a kdeep.data.Augment.
        shuffle: reshuffle the whole set every epoch.
        seed: makes shuffling and augmentation reproducible; None draws a fresh seed.
        repeat: repeat forever (then pass steps_per_epoch to fit: one iterator then serves every epoch, which
            spares fit the iterator it makes per epoch and the stall that can cost).
        cache: keep the examples in memory after the first pass.
        drop_remainder: drop the last, smaller batch.
        input_range: the (low, high) pixel range the model takes (its contract's); augmentation works in [0, 1].

    Returns:
        A tf.data.Dataset of (float32 images (B, H, W, C) in `input_range`, int32 labels (B,)).
    """
    x, y = _check_arrays(x, y, batch_size)
    policy = resolve(augment)
    seed = random.getrandbits(31) if seed is None else int(seed)
    dataset = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        dataset = dataset.repeat()
    if policy is None:
        dataset = dataset.map(lambda images, labels: (scale_pixels(images, input_range), labels),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: (scale_pixels(policy(scale_pixels(batch[0]), pair), input_range), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

