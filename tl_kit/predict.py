"""Predict class names for images, from a model in memory, a run directory or an export.

Example:
```python
model, class_names = load_for_inference("runs/pets")          # or "exports/pets" (SavedModel)
preds = predict_images(model, ["a.jpg", "b.png"], class_names, top_k=3, tta="flip")
print(format_predictions(preds))                               # table; as_json=True for JSON
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tl_kit.errors import UserError
from tl_kit.tta import DEFAULT_CROP_FRACTION, model_image_size, predict_tta

__all__ = [
    "predict_images",
    "format_predictions",
    "load_for_inference",
    "save_for_inference",
    "predict_run",
    "expand_inputs",
    "ExportedModel",
    "load_image",
    "collect_images",
    "resize_to",
]

MODEL_FILE = "model.keras"
CLASS_NAMES_FILE = "class_names.json"
LABELS_FILE = "labels.txt"


# === Images ===


def resize_to(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``array`` (H, W, C) or (N, H, W, C) as float32 at ``size``: uint8 pixels with
    training's resize (rounded, :func:`tl_kit.decode.resize_array`), others with the same
    resize unrounded (:func:`tl_kit.decode.resize_float`); unchanged (but float32) when
    already that size."""
    if tuple(array.shape[-3:-1]) == tuple(size):
        return array.astype(np.float32)
    if array.dtype == np.uint8:  # decoded file: training's resize (tl_kit.decode), rounded
        from tl_kit.decode import resize_array

        return resize_array(array, size).astype(np.float32)
    from tl_kit.decode import resize_float

    return resize_float(array, size).numpy().astype(np.float32)


def _from_pil(image, channels: int) -> np.ndarray:
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    image = image.convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32)
    return array[..., None] if array.ndim == 2 else array


def load_image(path: str | os.PathLike, channels: int = 3, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as uint8 (H, W, channels) with training's decoder: at its own size
    (:func:`tl_kit.decode.read_image`), or decoded and resized to ``size`` as training and
    the SavedModel's ``serving_default`` do (:func:`tl_kit.decode.decode_file`: a large
    JPEG decodes at a DCT scale, so only this gives training's pixels for it)."""
    from PIL import UnidentifiedImageError

    from tl_kit.decode import decode_file, read_image

    try:
        return read_image(path, channels) if size is None else decode_file(path, size, channels)[0]
    except FileNotFoundError as error:
        raise UserError(f"Image file not found. Received: path={str(path)!r}") from error
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(
            f"Cannot read the image {str(path)!r} ({error}). Received: path={str(path)!r}"
        ) from error


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def expand_inputs(inputs) -> list:
    """``inputs`` with every folder replaced by its image files (recursively, sorted; the
    extensions of :data:`IMAGE_EXTENSIONS`, any case). Files, arrays and PIL images are
    kept as they are, in order.

    Example:
    ```python
    expand_inputs(["photos/test", "extra.png"])  # ['photos/test/cat/1.jpg', ..., 'extra.png']
    ```
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    elif not isinstance(inputs, list | tuple):
        return inputs
    out: list = []
    for item in inputs:
        if isinstance(item, str | os.PathLike) and Path(item).is_dir():
            found = sorted(p for p in Path(item).rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise UserError(
                    f"The folder {str(item)!r} holds no image files "
                    f"({', '.join(IMAGE_EXTENSIONS)}). Received: inputs={str(item)!r}")
            out.extend(str(p) for p in found)
        else:
            out.append(item)
    return out


def _read_failure(error: UserError) -> str:
    """Why one file could not be read, in a few words (for its row of the results)."""
    cause = error.__cause__
    if isinstance(cause, FileNotFoundError):
        return "file not found"
    if isinstance(cause, IsADirectoryError | PermissionError):
        return cause.strerror or type(cause).__name__
    text = str(cause) if cause is not None else str(error)
    return " ".join(text.split()) or type(cause or error).__name__


def collect_images(inputs, channels: int, size: tuple[int, int] | None = None
                   ) -> tuple[list[np.ndarray | None], list[str | None], dict[int, str]]:
    """Turn paths / arrays / PIL images into (H, W, C) arrays and their paths; a file that
    cannot be read gets ``None`` and its reason (in the returned dict, by position). With a
    ``size``, files are decoded and resized to it as training does (:func:`load_image`)."""
    failed: dict[int, str] = {}
    inputs = expand_inputs(inputs)
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "numpy"):
        array = np.asarray(inputs, np.float32)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise UserError(
                "Arrays must have shape (N, H, W, C) or (H, W, C). "
                f"Received: inputs.shape={array.shape}"
            )
        return list(array), [None] * len(array), failed
    elif not isinstance(inputs, list | tuple):
        inputs = [inputs]
    images, paths = [], []
    for item in inputs:
        if isinstance(item, str | os.PathLike):
            try:
                images.append(load_image(item, channels, size))
            except UserError as error:  # one bad file: reported in its row, the rest go on
                images.append(None)
                failed[len(paths)] = _read_failure(error)
            paths.append(str(item))
        elif hasattr(item, "convert") and hasattr(item, "size"):  # PIL image
            images.append(_from_pil(item, channels))
            paths.append(getattr(item, "filename", None) or None)
        else:
            array = np.asarray(item, np.float32)
            if array.ndim == 2:
                array = array[..., None]
            if array.ndim != 3:
                raise UserError(
                    "Each image must be a path, a PIL image or an (H, W, C) array. "
                    f"Received: shape={array.shape}"
                )
            images.append(array)
            paths.append(None)
    return images, paths, failed


# === Prediction ===


def predict_images(
    model,
    inputs,
    class_names: Sequence[str],
    top_k: int = 3,
    tta: str | None = None,
    *,
    batch_size: int = 32,
) -> list[dict]:
    """Predict classes for image files, PIL images or raw [0, 255] arrays.

    Images are resized to the model's input size with training's resize (files are decoded
    and resized as training does them, :func:`load_image`); with ``tta="multicrop"`` they
    are resized to ``size / 0.875`` and the 10 crops are taken at the model's size.

    Folders among ``inputs`` are expanded (:func:`expand_inputs`). A file that cannot be
    read does not stop the others: its entry is ``{"path": ..., "top": [], "probs": {},
    "error": "why"}``. When no image at all can be read, a UserError says why.

    Returns:
        One dict per image, in input order: ``{"path": str | None, "top": [(name, prob),
        ...], "probs": {name: prob, ...}}`` (``top`` is sorted, best first), or the
        ``"error"`` entry above.

    Example:
    ```python
    predict_images(model, ["cat.jpg"], ["cat", "dog"], top_k=1)
    # [{'path': 'cat.jpg', 'top': [('cat', 0.97)], 'probs': {'cat': 0.97, 'dog': 0.03}}]
    ```
    """
    class_names = [str(name) for name in class_names]
    channels = int(model.input_shape[-1])
    fixed = model_image_size(model)
    images, paths, failed = collect_images(inputs, channels, None if fixed is None else _load_size(fixed, tta))
    read = _readable(images, paths, failed, inputs)
    images = [images[i] for i in read]
    for image in images:
        if image.shape[-1] != channels:
            raise UserError(
                f"The model takes {channels}-channel images. Received: shape={image.shape}"
            )
    load_size = _load_size(_input_size(model, images), tta)
    batch = np.stack([resize_to(image, load_size) for image in images])
    probs = predict_tta(model, batch, tta, batch_size=batch_size)
    if probs.shape[-1] != len(class_names):
        raise UserError(
            f"The model predicts {probs.shape[-1]} classes but {len(class_names)} class names "
            f"were given. Received: class_names={class_names}"
        )
    k = max(1, min(int(top_k), len(class_names)))
    results: list[dict] = [{"path": path, "top": [], "probs": {}, "error": failed.get(i)}
                           for i, path in enumerate(paths)]  # kept for the unreadable ones
    for index, row in zip(read, probs, strict=True):
        order = np.argsort(-row, kind="stable")[:k]
        results[index] = {
            "path": paths[index],
            "top": [(class_names[i], float(row[i])) for i in order],
            "probs": {name: float(p) for name, p in zip(class_names, row, strict=True)},
        }
    return results


def _readable(images: list, paths: list, failed: dict[int, str], inputs) -> list[int]:
    """Positions of the images that could be read; a UserError when there are none."""
    if not images:
        raise UserError(f"No images to predict. Received: inputs={inputs!r}")
    if len(failed) == len(images):
        first = next(iter(failed))
        raise UserError(
            f"None of the {len(images)} image(s) could be read ({paths[first]}: "
            f"{failed[first]}). Received: inputs={paths[:3]!r}"
            + (f" and {len(paths) - 3} more" if len(paths) > 3 else ""))
    return [i for i, image in enumerate(images) if image is not None]


def _load_size(size: tuple[int, int], tta: str | None) -> tuple[int, int]:
    """The size images are loaded at for ``size`` and ``tta``: larger for the 10 crops."""
    if tta == "multicrop":
        return tuple(round(side / DEFAULT_CROP_FRACTION) for side in size)
    return tuple(size)


def _input_size(model, images: list[np.ndarray]) -> tuple[int, int]:
    """The model's input size, or the images' one size for a model without a fixed size."""
    size = model_image_size(model)
    if size is not None:
        return size
    shapes = {image.shape[:2] for image in images}
    if len(shapes) > 1:
        raise UserError(
            "The model has no fixed input size and the images differ in size. "
            f"Received: sizes={sorted(shapes)}"
        )
    return next(iter(shapes))


def format_predictions(predictions: Sequence[dict], as_json: bool = False) -> str:
    """Render :func:`predict_images` results as an aligned text table or as JSON."""
    if as_json:
        payload = [
            {
                "path": item["path"],
                "top": [{"class": name, "probability": prob} for name, prob in item["top"]],
                "probs": item["probs"],
                **({"error": item["error"]} if item.get("error") else {}),
            }
            for item in predictions
        ]
        return json.dumps(payload, indent=2)
    labels = [item["path"] or f"image[{i}]" for i, item in enumerate(predictions)]
    width = max([len(label) for label in labels] + [5])
    k = max((len(item["top"]) for item in predictions), default=0)
    header = f"{'image':<{width}}  " + "  ".join(f"top{i + 1:<17}" for i in range(k))
    lines = [header.rstrip()]
    for label, item in zip(labels, predictions, strict=True):
        cells = "  ".join(f"{name[:12]:<12} {prob:.3f}" for name, prob in item["top"])
        if item.get("error"):
            cells = f"error: {item['error']}"
        lines.append(f"{label:<{width}}  {cells}")
    return "\n".join(lines)


# === Saving and loading ===


def save_for_inference(model, class_names: Sequence[str], run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/model.keras`` and ``run_dir/class_names.json`` (atomically).

    This is the layout :func:`load_for_inference` reads back from a run directory.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    names = [str(name) for name in class_names]
    units = model.output_shape[-1]
    if units != len(names):
        raise UserError(
            f"The model predicts {units} classes but {len(names)} class names were given. "
            f"Received: class_names={names}"
        )
    tmp_model = run / ".model-tmp.keras"
    model.save(tmp_model)
    os.replace(tmp_model, run / MODEL_FILE)
    tmp_names = run / (CLASS_NAMES_FILE + ".tmp")
    tmp_names.write_text(json.dumps(names, indent=2) + "\n")
    os.replace(tmp_names, run / CLASS_NAMES_FILE)
    return run / MODEL_FILE


class ExportedModel:
    """A tl_kit SavedModel export used like a keras.Model for prediction.

    Wraps the ``serving_float32`` signature (raw [0, 255] float images, any size) and
    exposes ``input_shape``, ``output_shape``, ``predict`` and ``__call__``.
    """

    def __init__(self, path: str | os.PathLike):
        import tensorflow as tf

        self.path = str(path)
        self._loaded = tf.saved_model.load(self.path)
        signatures = self._loaded.signatures
        if "serving_float32" not in signatures or "metadata" not in signatures:
            raise UserError(
                f"{self.path} is a SavedModel but not a tl_kit export (no serving_float32 / "
                f"metadata signature). Received: signatures={sorted(signatures)}"
            )
        self._fn = signatures["serving_float32"]
        meta = signatures["metadata"]()
        self.class_names = [name.decode() for name in meta["class_names"].numpy()]
        height, width, channels = (int(v) for v in meta["input_shape"].numpy())
        self.input_shape = (None, height, width, channels)
        self.output_shape = (None, len(self.class_names))
        self.name = Path(self.path).name

    def predict(self, images, batch_size: int = 32, verbose=0) -> np.ndarray:
        import tensorflow as tf

        images = np.asarray(images, np.float32)
        parts = [
            self._fn(images=tf.constant(images[i : i + batch_size]))["probabilities"].numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.class_names)), "float32")

    def __call__(self, images, training: bool = False):
        return self.predict(images)


def _saved_model_dir(path: Path) -> Path | None:
    """``path`` itself if it holds saved_model.pb, else its highest numbered version."""
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_dir():
        versions = [
            child for child in path.iterdir()
            if child.is_dir() and child.name.isdigit() and (child / "saved_model.pb").is_file()
        ]
        if versions:
            return max(versions, key=lambda child: int(child.name))
    return None


def _find_class_names(path: Path) -> list[str] | None:
    for folder in (path, path.parent):
        names_file = folder / CLASS_NAMES_FILE
        if names_file.is_file():
            data = json.loads(names_file.read_text())
            return list(data["class_names"] if isinstance(data, dict) else data)
        labels = folder / LABELS_FILE
        if labels.is_file():
            return [line for line in labels.read_text().splitlines() if line]
        for name in ("metrics.json", "manifest.json"):
            file = folder / name
            if file.is_file():
                try:
                    data = json.loads(file.read_text())
                except json.JSONDecodeError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("class_names"), list):
                    return [str(v) for v in data["class_names"]]
        config = folder / "config.toml"
        if config.is_file():
            import tomllib

            found = _search_key(tomllib.loads(config.read_text()), "class_names")
            if found:
                return [str(v) for v in found]
    return None


def _search_key(tree, key: str):
    if isinstance(tree, dict):
        if isinstance(tree.get(key), list) and tree[key]:
            return tree[key]
        for value in tree.values():
            found = _search_key(value, key)
            if found:
                return found
    return None


def _load_keras(file: Path):
    import keras

    try:  # registers tl_kit's custom layers (tl_kit>Preprocess) before deserialising
        import tl_kit.layers  # noqa: F401
    except ImportError:  # pragma: no cover - layers module missing in a partial checkout
        pass
    return keras.saving.load_model(file, compile=False)


def _newest_checkpoint(run: Path) -> Path | None:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return None
    files = sorted(folder.rglob("*.keras"), key=lambda f: (f.stat().st_mtime, f.name))
    return files[-1] if files else None


def load_for_inference(path: str | os.PathLike):
    """Load a model and its class names from a run directory, a model file or an export.

    Looks, in order, for: a ``.keras`` file given directly; a SavedModel (``path`` holds
    ``saved_model.pb``, or numbered version folders: the highest is used); a run directory
    with ``model.keras`` (else the newest ``checkpoints/**/*.keras``, else ``export/``).
    Class names come from the export itself, or ``class_names.json``, ``labels.txt``,
    ``metrics.json``, ``manifest.json`` or ``config.toml`` beside the model.

    Returns:
        ``(model, class_names)``: a keras.Model, or an :class:`ExportedModel` for exports.

    Example:
    ```python
    model, names = load_for_inference("runs/pets")
    ```
    """
    target = Path(path)
    if not target.exists():
        raise UserError(f"No run directory, model file or export at this path. Received: path={str(path)!r}")
    if target.is_file():
        if target.suffix not in (".keras", ".h5"):
            raise UserError(
                f"A model file must be a .keras file. Received: path={str(path)!r}"
            )
        model = _load_keras(target)
        names = _find_class_names(target.parent)
    else:
        saved = _saved_model_dir(target)
        if saved is None and not (target / MODEL_FILE).is_file() and _newest_checkpoint(target) is None:
            saved = _saved_model_dir(target / "export")
        if saved is not None:
            model = ExportedModel(saved)
            return model, model.class_names
        file = target / MODEL_FILE
        if not file.is_file():
            file = _newest_checkpoint(target)
        if file is None:
            raise UserError(
                f"Found no model in {str(path)!r}: expected model.keras, checkpoints/*.keras, "
                f"a SavedModel (saved_model.pb) or numbered export versions. Received: path={str(path)!r}"
            )
        model = _load_keras(file)
        names = _find_class_names(target)
    if names is None:
        raise UserError(
            f"Found a model but no class names near {str(path)!r}: write class_names.json "
            f"(tl_kit.predict.save_for_inference does). Received: path={str(path)!r}"
        )
    if len(names) != model.output_shape[-1]:
        raise UserError(
            f"The model predicts {model.output_shape[-1]} classes but the class names list has "
            f"{len(names)}. Received: class_names={names}"
        )
    return model, names


def predict_run(
    path: str | os.PathLike, inputs, *, top_k: int = 3, tta: str | None = None,
    batch_size: int = 32,
) -> list[dict]:
    """Load a run directory / export and predict ``inputs``; backs ``tl-kit predict``."""
    model, names = load_for_inference(path)
    return predict_images(model, inputs, names, top_k=top_k, tta=tta, batch_size=batch_size)
