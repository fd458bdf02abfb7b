"""Mixup (Zhang et al. 2018): each training batch blended with itself in another order, labels likewise."""
from __future__ import annotations

import tensorflow as tf

MIXUP_STREAM = 7001  # folded into each batch's seed pair: draws apart from the augmentation's


def mixup(dataset: tf.data.Dataset, alpha: float, num_classes: int, seed: int) -> tf.data.Dataset:
    """`dataset` of (images, integer labels) batches as (lam * images + (1 - lam) * images[perm], the one-hot
    labels mixed with the same lam), one lam ~ Beta(alpha, alpha) and one permutation per batch.

    Args:
        dataset: batches of (float images (B, H, W, C), integer labels (B,)), e.g. `kdeep.data.pipeline`'s.
        alpha: the Beta distribution's parameter (> 0): 0.2 keeps most lam near 0 or 1, 1.0 draws it uniformly.
        num_classes: width of the one-hot labels.
        seed: the same seed gives the same draws; every pass over a repeated dataset draws new ones.

    Returns:
        The dataset of (mixed images, float32 label distributions (B, num_classes)).
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def blend(batch: tuple[tf.Tensor, tf.Tensor], pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = batch
        # the pipeline's augmentation draws from the same seed: mixup folds in constants of its own
        first, second, order = (tf.random.experimental.stateless_fold_in(tf.cast(pair, tf.int32), MIXUP_STREAM + i)
                                for i in range(3))
        a = tf.random.stateless_gamma([], first, alpha)
        lam = a / (a + tf.random.stateless_gamma([], second, alpha))  # Beta(alpha, alpha) from two Gammas
        perm = tf.argsort(tf.random.stateless_uniform(tf.shape(labels)[:1], order))
        one_hot = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes)
        mixed = lam * images + (1.0 - lam) * tf.gather(images, perm)
        return mixed, lam * one_hot + (1.0 - lam) * tf.gather(one_hot, perm)

    return tf.data.Dataset.zip(dataset, seeds).map(blend, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
