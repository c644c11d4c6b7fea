""":func:`build_augmenter`: a policy as a batched ``(images, labels) -> (images, labels)`` function."""

from __future__ import annotations

from collections.abc import Callable

from tl_kit.augment.ops import BATCH_OPS
from tl_kit.augment.policies import policy_ops

__all__ = ["build_augmenter"]


def build_augmenter(policy: str | list | None, *, image_size, backend: str = "tf",
                    seed: int | None = None) -> Callable:
    """A batched ``(images, labels) -> (images, labels)`` function for ``dataset.map``.

    Args:
        policy: ``"none" | "light" | "standard" | "strong"``, a list of ops, or None.
        image_size: ``(height, width)`` of the batches (crops resize back to it).
        backend: ``"tf"`` (TF ops in the graph) or ``"albumentations"`` (CPU, via
            ``tf.numpy_function``).
        seed: makes the augmentation sequence reproducible (it still differs per epoch).

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

    def augment(images, labels):
        x = tf.cast(images, tf.float32)
        if not ops:
            return x, labels
        keys = tf_ops.Keys(gen.make_seeds(1)[:, 0])
        if albu is not None:
            shape = x.shape
            x = tf.numpy_function(albu, [x], tf.float32, stateful=True)
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
