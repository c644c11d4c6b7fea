"""``tl-kit explain``: Grad-CAM overlays (tl_kit.explain)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, existing_path, print_json
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or .keras model file (with class_names.json)")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument(
        "--out", metavar="DIR", default=None, help="where the overlays go (default RUN/explain)"
    )
    p.add_argument(
        "--class", dest="class_name", default=None,
        help="explain this class for every image (default: each image's predicted class)",
    )
    p.add_argument(
        "--layer", default=None,
        help="target layer of the backbone (default: the last convolutional block's output)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run(args: argparse.Namespace) -> int:
    from tl_kit.explain import explain, run_blocks
    from tl_kit.predict import load_for_inference

    run = Path(args.run)
    model, names = load_for_inference(run)
    if not hasattr(model, "get_layer"):
        raise UserError(
            f"Grad-CAM needs the Keras model (model.keras in a run directory), not an export. "
            f"Received: run={args.run!r}"
        )
    classes = None
    if args.class_name is not None:
        if args.class_name not in names:
            raise UserError(
                f"Unknown class {args.class_name!r}; the model's classes: {', '.join(names)}. "
                f"Received: class={args.class_name!r}"
            )
        classes = names.index(args.class_name)
    paths = _image_paths(args.images)
    out = args.out or str((run if run.is_dir() else run.parent) / "explain")
    result = explain(model, paths, class_names=names, out=out, classes=classes, layer=args.layer,
                     blocks=run_blocks(run if run.is_dir() else run.parent))
    rows = [{"path": p, "class": n, "probability": float(result["probabilities"][i][c]),
             "overlay": f}
            for i, (p, n, c, f) in enumerate(zip(result["paths"], result["names"], result["classes"],
                                                  result["files"], strict=True))]
    if args.json:
        print_json({"layer": result["layer"], "out": out, "images": rows})
        return EXIT_OK
    echo(f"Grad-CAM on layer {result['layer']!r}")
    for row in rows:
        echo(f"{row['path']}: {row['class']} (p={row['probability']:.3f}) -> {row['overlay']}")
    return EXIT_OK


def _image_paths(images: list[str]) -> list[str]:
    """The image files named, folders replaced by the image files under them (sorted)."""
    from tl_kit.predict import IMAGE_EXTENSIONS

    paths = []
    for item in images:
        item_path = Path(item)
        if item_path.is_dir():
            paths += sorted(str(f) for f in item_path.rglob("*")
                            if f.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            paths.append(existing_path(item, "image"))
    if not paths:
        raise UserError(f"No images found. Received: images={images}")
    return paths


COMMAND = Subcommand(
    name="explain",
    help="Grad-CAM heatmap overlays: where the model looked",
    description="Write one PNG per image with the Grad-CAM heatmap of the predicted class "
    "(or --class) over it, computed on the output of the backbone's last convolutional "
    "block (from its block declaration).",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit explain runs/photos a.jpg b.jpg\n"
    "  tl-kit explain runs/photos photos/ --out runs/photos/cam --class cat --json",
)
