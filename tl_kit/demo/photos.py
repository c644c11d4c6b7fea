"""The photo task of ``tl-kit demo``: square crops of eight photographs the installed
packages ship (scikit-image and scikit-learn), no download."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PHOTO_CLASSES", "PHOTO_SIZE", "PHOTO_POOL", "PHOTO_TEST", "photo_patches"]

# class name: (module, function) of a photograph an installed package ships.
PHOTO_CLASSES: dict[str, tuple[str, str]] = {
    "brick": ("skimage.data", "brick"),
    "grass": ("skimage.data", "grass"),
    "gravel": ("skimage.data", "gravel"),
    "cat": ("skimage.data", "chelsea"),
    "coffee": ("skimage.data", "coffee"),
    "astronaut": ("skimage.data", "astronaut"),
    "rocket": ("skimage.data", "rocket"),
    "temple": ("sklearn.datasets", "china"),
}
PHOTO_SIZE = 64
PHOTO_POOL = 48  # crops per class from the left 2/3 of a photo: training + validation labels
PHOTO_TEST = 16  # crops per class from the right 1/3: the test set (pixels never trained on)


def _photo(module: str, name: str) -> np.ndarray:
    import importlib

    if module == "sklearn.datasets":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    else:
        img = getattr(importlib.import_module(module), name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img[..., :3].astype("float32")


def photo_patches(size: int = PHOTO_SIZE, pool: int = PHOTO_POOL, test: int = PHOTO_TEST,
                  seed: int = 0) -> dict[str, Any]:
    """The demo's photo task: square crops of eight photographs the installed packages ship.

    Classes (:data:`PHOTO_CLASSES`): scikit-image's brick, grass and gravel texture photos
    (the sources of ``data/textures``), its ``chelsea`` (cat), ``coffee``, ``astronaut`` and
    ``rocket`` photos, and scikit-learn's ``china.jpg`` (a temple). Each image is a crop at a
    random position and size (between a sixth and a third of the photo's width, at most its
    height), resized to ``size``. ``pool`` crops per class come from the left two thirds of
    the photo (labelled training and validation images are drawn from them), ``test`` crops
    from the right third: test pixels are never seen in training. Returns
    ``{"pool": (x, y), "test": (x, y), "classes": [...]}``, x float32 RGB in [0, 255].
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {"pool": ([], []), "test": ([], [])}
    for label, (module, name) in enumerate(PHOTO_CLASSES.values()):
        img = _photo(module, name)
        h, w = img.shape[:2]
        split = (2 * w) // 3
        hi = min(h, w // 3)
        for part, count, (x0, x1) in (("pool", pool, (0, split)), ("test", test, (split, w))):
            for _ in range(count):
                c = int(rng.integers(max(hi // 2, 16), hi + 1))
                x = int(rng.integers(x0, x1 - c + 1))
                y = int(rng.integers(0, h - c + 1))
                crop = Image.fromarray(img[y:y + c, x:x + c].astype("uint8"))
                out[part][0].append(np.asarray(crop.resize((size, size), Image.BILINEAR), "float32"))
                out[part][1].append(label)
    return {"pool": (np.stack(out["pool"][0]), np.array(out["pool"][1], "int64")),
            "test": (np.stack(out["test"][0]), np.array(out["test"][1], "int64")),
            "classes": list(PHOTO_CLASSES)}
