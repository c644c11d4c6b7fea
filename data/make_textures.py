"""Build the sample dataset ``data/textures/`` from photographs scikit-image ships.

Three classes of real texture photographs (brick, grass, gravel; scikit-image's
``brick.png``, ``grass.png`` and ``gravel.png``, 512x512 grey). Each image in the
dataset is a crop at a random position and scale, resized to 96x96 and saved as
JPEG. The left 3/4 of each photograph feeds the first 30 crops per class and the
right 1/4 the last 10, so that a split by file name index keeps train and held-out
pixels apart (the toolkit's own random split does not rely on this).

Run ``python data/make_textures.py`` to rebuild it; the output is deterministic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

CLASSES = ("brick", "grass", "gravel")


def make(out: Path, per_class: int = 40, size: int = 96, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        img = getattr(skdata, cls)()
        h, w = img.shape[:2]
        folder = out / cls
        folder.mkdir(parents=True, exist_ok=True)
        held_out = per_class // 4
        for i in range(per_class):
            crop = int(rng.integers(96, 200))
            if i < per_class - held_out:
                x0, x1 = 0, (3 * w) // 4 - crop
            else:
                x0, x1 = (3 * w) // 4, w - crop
            x = int(rng.integers(x0, max(x0 + 1, x1)))
            y = int(rng.integers(0, h - crop))
            patch = Image.fromarray(img[y : y + crop, x : x + crop]).resize((size, size), Image.BILINEAR)
            patch.convert("RGB").save(folder / f"{cls}_{i:03d}.jpg", quality=90)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "textures")
    parser.add_argument("--per-class", type=int, default=40)
    args = parser.parse_args()
    make(args.out, per_class=args.per_class)
    print(f"wrote {args.out}")
