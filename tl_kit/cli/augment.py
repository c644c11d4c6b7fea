"""``tl-kit augment-preview``: a grid of augmented images (tl_kit.augment)."""

from __future__ import annotations

import argparse

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, existing_dir, image_size, spinner
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="image folder (one sub-folder per class) or tfds:NAME",
    )
    p.add_argument(
        "--policy", default="standard", help="none, light, standard or strong (default standard)"
    )
    p.add_argument(
        "--out",
        metavar="PNG",
        default="augmentation_preview.png",
        help="where to write the grid (default augmentation_preview.png)",
    )
    p.add_argument("-n", "--num-images", type=int, default=16, help="images in the grid")
    p.add_argument("--image-size", default="128", help="size to load images at (default 128)")
    p.add_argument(
        "--backend",
        choices=("tf", "albumentations"),
        default="tf",
        help="in-graph Keras/TF ops or albumentations (CPU)",
    )
    p.add_argument("--seed", type=int, default=0)


def _run(args: argparse.Namespace) -> int:
    data = existing_dir(args.data, "data")
    size = image_size(args.image_size)
    from tl_kit.augment import POLICIES, save_augmentation_preview
    from tl_kit.data import load_data

    if args.policy not in POLICIES:
        raise UserError(
            f"Unknown augmentation policy {args.policy!r}; choose one of {', '.join(POLICIES)}. "
            f"Received: policy={args.policy!r}"
        )
    with spinner(f"scanning {data} and augmenting {args.num_images} images"):
        path = save_augmentation_preview(
            data,
            args.out,
            policy=args.policy,
            n=args.num_images,
            backend=args.backend,
            image_size=size,
            seed=args.seed,
            load=load_data,  # the CLI loads; augment itself never imports the data layer
        )
    echo(str(path))
    return EXIT_OK


COMMAND = Subcommand(
    name="augment-preview",
    help="save a grid PNG of augmented training images for a policy",
    description="Load an image folder and save a grid of randomly augmented images, to "
    "see what a recipe's augmentation policy does to your data before training.",
    add_arguments=_args,
    run=_run,
    arguments={"source": "data", "n": "num_images"},
    epilog="examples:\n"
    "  tl-kit augment-preview --data data/textures\n"
    "  tl-kit augment-preview --data data/my_photos --policy strong --out strong.png\n"
    "  tl-kit augment-preview --data data/my_photos --backend albumentations -n 25",
)
