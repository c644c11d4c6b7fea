"""Augmentation policies for training pipelines, with a TensorFlow and an albumentations backend.

A policy is ``"none"``, ``"light"``, ``"standard"``, ``"strong"`` or an explicit list of
operations, each a name (``"flip"``) or a dict (``{"name": "color_shift", "offsets": [20,
-20, 20]}``). :func:`build_augmenter` turns it into a function ``(images, labels) ->
(images, labels)`` on BATCHES (float32 raw pixels in [0, 255], one-hot labels), used as
``dataset.batch(...).map(fn, num_parallel_calls=AUTOTUNE)`` on training data only
(``tl_kit.data.Data.dataset(training=True, augment=...)`` does that).

Operations (defaults in :data:`OPS`):

========================  ===========================================================
``flip``                  horizontal mirroring (an exact left-right flip), ``p``
``random_crop``           crop a ``scale`` fraction of each side at a random place, resize back
``random_resized_crop``   Inception-style crop of random area ``scale`` and aspect ``ratio``
``color_shift``           per-channel offsets: ``offsets=(20, -20, 20)`` exactly, or each
                          drawn in ``[-max_offset, max_offset]``
``pca_color``             AlexNet's PCA lighting noise: ``eigvecs @ (alpha * eigvals)``,
                          ``alpha ~ N(0, std)``; ImageNet's published eigen-pairs by default,
                          or :func:`pca_eigen` of your training images
``rotation``              random rotation within ``+-degrees`` (reflect fill)
``brightness``            add ``delta * 255``, ``delta`` in ``[-max_delta, max_delta]``
``contrast``              scale around the per-image channel mean by ``[lower, upper]``
``coarse_dropout``        cutout: one ``size``-fraction square set to 0
``clahe``                 contrast-limited adaptive histogram equalisation (albumentations only)
``grid_distortion``       grid warping (albumentations only)
``mixup``                 batch-level: ``lam x + (1 - lam) x'``, labels likewise, ``lam ~ Beta``
``cutmix``                batch-level: a box from the partner image, labels by area
========================  ===========================================================

Batch-level ops (mixup, cutmix) always run after the per-image ops, and pair each image with
the batch reversed. Pixel results are clipped to [0, 255].

Backends:
    * ``"tf"`` (default): TF image ops, vectorised over the batch, inside the tf.data graph
      (parallel, no Python); random numbers derive from one seed per batch
      (``Data.dataset`` draws it from the pipeline: :func:`~tl_kit.augment.build.batch_seeds`),
      so a seeded run augments the same way every time, augmentations differ every epoch,
      and each image draws its own parameters. Full-size work
      is deferred and merged (:mod:`~tl_kit.augment.tf_pending`): flips and a crop run as
      one ``crop_and_resize``; colour offsets, brightness, contrast and the clipping as one
      scale, shift and clamp; rotation uses ``ImageProjectiveTransformV3``.
    * ``"albumentations"``: per-image ops run with albumentations (OpenCV) on uint8 images
      through ``tf.numpy_function`` -- on the CPU, with several batches in flight thanks
      to ``num_parallel_calls`` (OpenCV releases the GIL). It adds ``clahe`` and
      ``grid_distortion``, which TF lacks; the ``"strong"`` policy uses them there.
      ``pca_color``, ``contrast`` and exact colour offsets run in NumPy; mixup/cutmix run in TF after it, as in the tf backend.

Example:
```python
fn = build_augmenter("standard", image_size=(128, 128))
train = train.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
save_augmentation_preview(tl_kit.load_data("data/flowers"), "runs/flowers/plots/augment.png")
```

Modules: :mod:`~tl_kit.augment.ops` (the ops and their defaults), :mod:`~tl_kit.augment.policies`
(named policies, :func:`policy_ops`), :mod:`~tl_kit.augment.tf_ops` (the TF backend, one
function per op), :mod:`~tl_kit.augment.albu` (the albumentations backend),
:mod:`~tl_kit.augment.build` (:func:`build_augmenter`) and :mod:`~tl_kit.augment.preview`
(preview grids).
"""

from __future__ import annotations

from tl_kit.augment.build import build_augmenter
from tl_kit.augment.ops import IMAGENET_EIGVALS, IMAGENET_EIGVECS, OPS, pca_eigen
from tl_kit.augment.policies import BACKENDS, POLICIES, policy_ops
from tl_kit.augment.preview import save_augmentation_grid, save_augmentation_preview

__all__ = [
    "BACKENDS",
    "IMAGENET_EIGVALS",
    "IMAGENET_EIGVECS",
    "OPS",
    "POLICIES",
    "build_augmenter",
    "pca_eigen",
    "policy_ops",
    "save_augmentation_grid",
    "save_augmentation_preview",
]
