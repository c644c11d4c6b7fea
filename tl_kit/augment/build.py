""":func:`build_augmenter`: a policy as a batched ``(images, labels) -> (images, labels)`` function."""

from __future__ import annotations

from collections.abc import Callable

from tl_kit.augment.ops import BATCH_OPS
from tl_kit.augment.policies import policy_ops

__all__ = ["batch_seeds", "build_augmenter", "with_batch_seeds"]


def build_augmenter(policy: str | list | None, *, image_size, backend: str = "tf",
                    seed: int | None = None) -> Callable:
    """A batched ``(images, labels) -> (images, labels)`` function for ``dataset.map``.

    Args:
        policy: ``"none" | "light" | "standard" | "strong"``, a list of ops, or None.
        image_size: ``(height, width)`` of the batches (crops resize back to it).
        backend: ``"tf"`` (TF ops in the graph) or ``"albumentations"`` (CPU, via
            ``tf.numpy_function``).
        seed: makes the augmentation sequence reproducible (it still differs per epoch).

    The function takes an optional third argument, ``seed``: a ``[2]`` int64 tensor from
    which every random draw of that call derives. Without it each call takes the next seed
    of a ``tf.random.Generator`` (seeded by ``seed`` above), which reproduces a sequence of
    calls made one after another. In a parallel ``dataset.map`` the calls race for that
    generator, so :meth:`tl_kit.data.Data.dataset` gives every batch its own seed
    (:func:`batch_seeds`): a seeded pipeline then augments the same way on every run and
    on either pipeline (in memory or streamed).

    Example:
    ```python
    aug = build_augmenter(["flip", {"name": "color_shift", "offsets": [20, -20, 20]}],
                          image_size=(64, 64))
    images, labels = aug(images, one_hot_labels)
    ```
    """
    import tensorflow as tf

    from tl_kit.augment import tf_ops

    ops = policy_ops(policy, backend)
    size = (int(image_size[0]), int(image_size[1]))
    per_image = [op for op in ops if op["name"] not in BATCH_OPS]
    batch_ops = [op for op in ops if op["name"] in BATCH_OPS]
    with tf.init_scope():
        gen = (tf.random.Generator.from_seed(seed) if seed is not None
               else tf.random.Generator.from_non_deterministic_state())
    albu = None
    if backend == "albumentations" and per_image:
        from tl_kit.augment.albu import albu_batch_fn

        albu = albu_batch_fn(per_image, size, seed)

    def augment(images, labels, seed=None):
        x = tf.cast(images, tf.float32)
        if not ops:
            return x, labels
        call_seed = gen.make_seeds(1)[:, 0] if seed is None else tf.cast(seed, tf.int64)
        keys = tf_ops.Keys(call_seed)
        if albu is not None:
            shape = x.shape
            x = tf.numpy_function(albu, [x, call_seed], tf.float32, stateful=True)
            x.set_shape(shape)
        elif per_image:
            st, g = tf_ops.Pending(x), tf_ops.geom(x)
            for op in per_image:
                tf_ops.apply_image_op(op, st, g, keys)
            x = st.images()
        for op in batch_ops:
            x, labels = tf_ops.apply_batch_op(op, x, labels, keys)
        return x, labels

    augment.ops = ops  # type: ignore[attr-defined]
    augment.backend = backend  # type: ignore[attr-defined]
    return augment


def batch_seeds(seed: int | None):
    """A ``tf.data.Dataset`` of ``[2]`` int64 seeds, one per batch: the same sequence for the
    same ``seed`` on every run, a new one each epoch (``rerandomize_each_iteration``, as
    the shuffle does)."""
    import tensorflow as tf

    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)


def with_batch_seeds(ds, fn: Callable, seed: int | None, deterministic: bool = True):
    """``ds`` (batches of ``(images, labels)``) mapped in parallel by the augmenter ``fn``,
    each batch with its own seed from :func:`batch_seeds`: the result depends on the batch's
    position and the epoch, never on which parallel call ran first."""
    import tensorflow as tf

    return tf.data.Dataset.zip(ds, batch_seeds(seed)).map(
        lambda xy, s: fn(xy[0], xy[1], s), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic)
