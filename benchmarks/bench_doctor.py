"""The data doctor's speed: seconds per thousand images, end to end and per phase.

The images are the demo's real photo crops (:func:`tl_kit.demo.photo_patches`: eight
classes of crops from the photographs scikit-image and scikit-learn ship, written as
JPEG files of ``crop`` px into a temporary folder, one sub-folder per class). For each
feature image size, ``tl_kit.doctor`` runs on the whole folder with the pretrained
EfficientNet-Lite0 (bundled weights, converted once into Keras's cache before timing):

- load: listing, the loader's hygiene scan (every file decoded once) and the pixel cache;
- features: building the folded backbone and one batched pass (features, pixel hashes,
  perceptual hashes);
- analysis: duplicates (exact and near), 5-fold out-of-fold logistic regression and
  confident learning, statistics;
- total, and total per thousand images;
- with 10 % of the labels flipped on purpose (seeded): recall and precision of the label
  issues against the planted flips, and how often the suggested class is the true one.

Usage: ``python benchmarks/bench_doctor.py [--images 1000] [--sizes 224,128] [--crop 160]``
(the machine's load averages are recorded before and after: other processes share it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import load_snapshot  # noqa: E402


def write_crops(root: Path, images: int, crop: int, seed: int = 0,
                flip: float = 0.1) -> dict[str, str]:
    """``images`` photo crops (``crop`` px JPEGs) in ``root/<class>/``, a ``flip`` fraction
    of them in a wrong class folder (seeded); returns {relative path: true class} of those."""
    import numpy as np
    from PIL import Image

    from tl_kit.demo import PHOTO_CLASSES, photo_patches

    per_class = max(1, images // len(PHOTO_CLASSES))
    task = photo_patches(size=crop, pool=per_class, test=1, seed=seed)
    x, y = task["pool"]
    names = task["classes"]
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), int(round(flip * len(y))), replace=False)
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, len(names), len(flipped))) % len(names)
    for i, (img, k) in enumerate(zip(x, given, strict=True)):
        d = root / names[k]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(img).astype("uint8")).save(d / f"{i:05d}.jpg", quality=90)
    return {f"{names[given[i]]}/{i:05d}.jpg": names[y[i]] for i in flipped}


def bench_doctor(images: int = 1000, sizes: tuple[int, ...] = (224, 128), crop: int = 160) -> dict:
    """Seconds (and seconds per thousand images) of ``tl_kit.doctor`` at each image size."""
    import tl_kit
    from tl_kit.models.registry import build_model

    build_model("efficientnet_lite0", weights="imagenet", include_top=False)  # one-time conversion, untimed
    out: dict = {"images": None, "crop_px": crop, "load_before": load_snapshot(), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        truth = write_crops(root, images, crop)
        out["images"] = n = sum(1 for _ in root.rglob("*.jpg"))
        out["flipped"] = len(truth)
        for size in sizes:
            t0 = time.perf_counter()
            r = tl_kit.doctor(str(root), image_size=size)
            total = time.perf_counter() - t0
            out["sizes"][str(size)] = {
                "total_s": round(total, 2), "s_per_1000_images": round(1000 * total / n, 2),
                **{k: round(v, 2) for k, v in r.timings.items() if k != "total_s"},
                "duplicates": len(r.duplicates), "label_issues": len(r.label_issues),
                **_flip_scores(r.label_issues, truth),
            }
    out["load_after"] = load_snapshot()
    out["cpus"] = os.cpu_count()
    return out


def _flip_scores(issues: list[dict], truth: dict[str, str]) -> dict[str, float]:
    """Recall and precision of the flagged label issues against the planted flips."""
    hits = [r for r in issues if r["path"] in truth]
    return {"flip_recall": round(len(hits) / max(1, len(truth)), 3),
            "flip_precision": round(len(hits) / max(1, len(issues)), 3),
            "suggested_right": round(sum(truth[r["path"]] == r["suggested"] for r in hits)
                                     / max(1, len(hits)), 3)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--sizes", default="224,128")
    p.add_argument("--crop", type=int, default=160)
    a = p.parse_args(argv)
    result = bench_doctor(a.images, tuple(int(s) for s in a.sizes.split(",")), a.crop)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
