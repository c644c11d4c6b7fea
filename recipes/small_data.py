"""Run the "small" recipe (recipes/small_data.toml) on your images.

The same engine as ``tl-kit train recipes/small_data.toml``: every option of that command
works here too (``--backbone``, ``--out``, ``--weights``, ``--image-size``,
``--epochs-scale`` / ``--quick``, ``--json``; see ``--help``).

Usage::

    python recipes/small_data.py --data data/my_photos --backbone resnet50 --out runs/photos
    python recipes/small_data.py --data data/textures --backbone mobilenet_v2 --weights none \\
        --image-size 64 --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

from tl_kit.cli import main

RECIPE = Path(__file__).resolve().with_name("small_data.toml")

if __name__ == "__main__":
    sys.exit(main(["train", str(RECIPE), *sys.argv[1:]]))
