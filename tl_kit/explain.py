"""Where the model looked: Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV 2017).

For class ``c`` with pre-softmax score ``z_c`` and the feature maps ``A`` (h, w, k) of the
target layer: ``alpha_k = mean_{i,j} dz_c / dA_ijk`` and the heatmap is
``ReLU(sum_k alpha_k A_k)``, resized (bilinear) to the image and scaled to [0, 1].

Target layer: the output of the last convolutional block of the backbone, found from the
backbone's block declaration (:func:`tl_kit.backbones.assign_blocks`, the same grouping
``unfreeze the last N blocks`` uses): the last layer with a 4-D output in the last
non-empty block, moving to earlier blocks while that map is 1x1 (VGG at 32 px: a 1x1 map
holds no position). Without a declaration (a bare ``.keras`` file) the last 4-D layer of the
backbone in topological order.

The gradient model is rebuilt from the classifier's chain ``image -> preprocess -> backbone
(nested Model) -> head_pool -> head_dropout -> predictions``: the backbone becomes a two-output
model (target map, features) from its own input, the other layers are called again on the new
graph, and the logits are the ``predictions`` layer's input times its kernel plus bias. The
rebuilt model's probabilities are checked against the original model's before use; any other
architecture fails with a clear error.

```python
result = tl_kit.explain.explain(model, ["a.jpg", "b.jpg"], out="runs/pets/explain")
result["heatmaps"].shape   # (2, H, W) in [0, 1]; overlays: runs/pets/explain/*_gradcam.png
learner.explain(["a.jpg"], out="runs/pets/explain")
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = ["target_layer", "gradcam_model", "gradcam", "explain", "overlay", "learner_explain"]


def _is_map(layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return len(shape) == 4


def _spatial(layer) -> int:
    h, w = layer.output.shape[1:3]
    return (h or 2) * (w or 2)


def _nested_backbone(model):
    import keras

    subs = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(subs) > 1:
        raise UserError(
            f"Grad-CAM needs one backbone sub-model; {model.name!r} holds {len(subs)} "
            f"({', '.join(s.name for s in subs)}). Received: model={model.name!r}")
    return subs[0] if subs else None


def target_layer(backbone, blocks: Sequence[str] | None = None) -> str:
    """Name of the Grad-CAM target layer of ``backbone`` (see the module docstring)."""
    from tl_kit.backbones import assign_blocks

    if blocks:
        groups = [g for g in assign_blocks(backbone, tuple(blocks)) if g]
        last = None
        for group in reversed(groups):
            maps = [layer for layer in group if _is_map(layer)]
            if not maps:
                continue
            last = last or maps[-1]
            if _spatial(maps[-1]) > 1:
                return maps[-1].name
        if last is not None:
            return last.name
    maps = [layer for layer in backbone.layers if _is_map(layer)
            and not layer.__class__.__name__ == "InputLayer"]
    if not maps:
        raise UserError(f"Backbone {backbone.name!r} has no layer with a 4-D feature map for Grad-CAM. "
                        f"Received: backbone={backbone.name!r}")
    spread = [layer for layer in maps if _spatial(layer) > 1]
    return (spread or maps)[-1].name


def gradcam_model(model, layer: str | None = None, blocks: Sequence[str] | None = None):
    """``(grad_model, dense, layer_name)``: ``grad_model(images) -> (target maps, head
    features)``; logits = ``features @ dense.kernel + dense.bias``."""
    import keras

    from tl_kit.calibrate import prediction_layer

    dense = prediction_layer(model)
    backbone = _nested_backbone(model)
    where = backbone if backbone is not None else model
    name = layer or target_layer(where, blocks)
    try:
        target = where.get_layer(name).output
    except ValueError:
        raise UserError(f"No layer {name!r} in {where.name!r} for Grad-CAM. Received: layer={name!r}") from None
    if backbone is None:  # a flat model: cut it directly
        return keras.Model(model.input, [target, dense.input]), dense, name
    inner = keras.Model(backbone.input, [target, backbone.output], name="gradcam_backbone")
    image = keras.Input(model.input_shape[1:], name="image")
    x, maps = image, None
    for lay in model.layers:
        if isinstance(lay, keras.layers.InputLayer):
            continue
        if lay is dense:
            break
        if lay is backbone:
            maps, x = inner(x, training=False)
        else:
            x = lay(x, training=False) if _takes_training(lay) else lay(x)
    if maps is None:
        raise UserError(f"Model {model.name!r} is not a chain ending in its 'predictions' layer. "
                        f"Received: model={model.name!r}")
    return keras.Model(image, [maps, x], name="gradcam"), dense, name


def _takes_training(layer) -> bool:
    import inspect

    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def _check_rebuilt(model, grad_model, dense) -> None:
    """The rebuilt graph must reproduce the model's probabilities (else the chain guess was wrong)."""
    import keras

    from tl_kit.calibrate import _logits_from_features, softmax

    shape = [d or 32 for d in model.input_shape[1:]]
    x = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype("float32")
    want = keras.ops.convert_to_numpy(keras.ops.cast(model(x, training=False), "float32"))
    _, feats = grad_model(x, training=False)
    got = softmax(_logits_from_features(dense, keras.ops.convert_to_numpy(keras.ops.cast(feats, "float32"))))
    if not np.allclose(want, got, atol=1e-3):
        raise UserError(
            f"Could not rebuild {model.name!r} as image -> backbone -> head for Grad-CAM (the "
            f"rebuilt model's probabilities differ by {np.abs(want - got).max():.3g}). Received: "
            f"model={model.name!r}")


def gradcam(model, images: np.ndarray, *, classes: Sequence[int] | int | None = None,
            layer: str | None = None, blocks: Sequence[str] | None = None,
            batch_size: int = 32) -> dict[str, Any]:
    """Grad-CAM heatmaps of raw [0, 255] ``images`` (N, H, W, C) at the model's input size.

    ``classes``: the class explained per image (default: the predicted one).

    Returns:
        ``{"heatmaps": (N, H, W) float32 in [0, 1], "maps": (N, h, w) at the layer's
        resolution, "classes": [int], "probabilities": (N, K), "layer": name}``.
    """
    import tensorflow as tf

    grad_model, dense, name = gradcam_model(model, layer, blocks)
    _check_rebuilt(model, grad_model, dense)
    kernel = tf.cast(dense.kernel, tf.float32)
    bias = tf.cast(dense.bias, tf.float32)
    images = np.asarray(images, np.float32)
    heat, small, probs, chosen = [], [], [], []
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(x)  # records every op from the image on, frozen layers included
            maps, feats = grad_model(x, training=False)
            logits = tf.cast(feats, tf.float32) @ kernel + bias
            if classes is None:
                c = tf.argmax(logits, axis=-1, output_type=tf.int32)
            elif isinstance(classes, int):
                c = tf.fill([tf.shape(x)[0]], classes)
            else:
                c = tf.constant(np.asarray(classes)[start:start + batch_size], tf.int32)
            score = tf.reduce_sum(tf.gather(logits, c, axis=1, batch_dims=1))
        grads = tf.cast(tape.gradient(score, maps), tf.float32)
        maps = tf.cast(maps, tf.float32)
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * maps, axis=-1))  # (B, h, w)
        big = tf.image.resize(cam[..., None], images.shape[1:3], method="bilinear")[..., 0]
        small.append(cam.numpy())
        heat.append(big.numpy())
        probs.append(tf.nn.softmax(logits).numpy())
        chosen.append(c.numpy())
    heat = np.concatenate(heat)
    peak = heat.reshape(len(heat), -1).max(axis=1)
    heat = heat / np.where(peak > 0, peak, 1.0)[:, None, None]
    return {"heatmaps": heat.astype(np.float32), "maps": np.concatenate(small),
            "classes": [int(v) for v in np.concatenate(chosen)], "probabilities": np.concatenate(probs),
            "layer": name}


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` (H, W, C) in [0, 255] blended with a jet-coloured ``heatmap`` (H, W) in [0, 1];
    uint8 (H, W, 3)."""
    from matplotlib import colormaps

    pixels = np.clip(np.asarray(image, np.float32), 0, 255)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    colour = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255.0
    return np.clip((1 - alpha) * pixels[..., :3] + alpha * colour, 0, 255).astype(np.uint8)


def explain(model, images, *, class_names: Sequence[str] | None = None, out: str | os.PathLike | None = None,
            classes: Sequence[int] | int | None = None, layer: str | None = None,
            blocks: Sequence[str] | None = None) -> dict[str, Any]:
    """Grad-CAM for image paths, PIL images or raw [0, 255] arrays (resized to the model's
    input size), with one overlay PNG per image in ``out`` (``<name>_gradcam.png``).

    Returns :func:`gradcam`'s dict plus ``"paths"`` (the inputs' paths or None),
    ``"names"`` (the explained class names, with ``class_names``) and ``"files"``."""
    from PIL import Image

    from tl_kit.predict import collect_images, resize_to
    from tl_kit.tta import model_image_size

    size = model_image_size(model)
    channels = int(model.input_shape[-1])
    arrays, paths, failed = collect_images(images, channels, size)  # files: training's pixels
    if failed:
        bad = "; ".join(f"{paths[i]}: {why}" for i, why in sorted(failed.items()))
        raise UserError(f"Cannot explain images that cannot be read: {bad}")
    if not arrays:
        raise UserError(f"No images to explain. Received: images={images!r}")
    if size is None:
        size = arrays[0].shape[:2]
    batch = np.stack([resize_to(a, size) for a in arrays])
    result = gradcam(model, batch, classes=classes, layer=layer, blocks=blocks)
    result["paths"] = paths
    names = [str(class_names[c]) if class_names is not None else str(c) for c in result["classes"]]
    result["names"] = names
    result["files"] = []
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for i, (image, heat, path) in enumerate(zip(batch, result["heatmaps"], paths, strict=True)):
            stem = Path(path).stem if path else f"image_{i}"
            file = out / f"{i:03d}_{stem}_gradcam.png"
            Image.fromarray(overlay(image, heat)).save(file)
            result["files"].append(str(file))
    return result


def learner_explain(learner, images, *, out: str | os.PathLike | None = None, **kwargs: Any) -> dict[str, Any]:
    """Backs :meth:`tl_kit.train.Learner.explain` (the backbone's own block declaration)."""
    if learner.model is None:
        learner.build()
    kwargs.setdefault("blocks", learner.blocks)
    return explain(learner.model, images, class_names=learner.class_names, out=out, **kwargs)


def run_blocks(run: str | os.PathLike) -> tuple[str, ...] | None:
    """The block declaration of the backbone a run directory was trained with (config.toml)."""
    import tomllib

    from tl_kit.backbones import get_backbone

    path = Path(run) / "config.toml"
    if not path.is_file():
        return None
    try:
        return tuple(get_backbone(tomllib.loads(path.read_text())["run"]["backbone"]).blocks)
    except (KeyError, ValueError, OSError):
        return None
