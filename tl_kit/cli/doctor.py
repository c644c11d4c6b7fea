"""``tl-kit doctor``: duplicates, leaks, label errors and outliers in a folder (tl_kit.data_doctor)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, existing_dir, image_size, print_json


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR",
                   help="a folder with one sub-folder per class, or train/val/test folders of them")
    p.add_argument("--backbone", default="efficientnet_lite0",
                   help="backbone with ImageNet weights for the features (default efficientnet_lite0)")
    p.add_argument("--image-size", default=None, metavar="N",
                   help="feature image size (default: the backbone's, 224 for Lite0; smaller is faster)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where doctor.json, doctor.md and suspects.png go (default runs/doctor-<data>)")
    p.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold (default 5)")
    p.add_argument("--json", action="store_true", help="print doctor.json to stdout")


def _run(args: argparse.Namespace) -> int:
    from tl_kit.data_doctor import doctor

    data = Path(existing_dir(args.data, "data"))
    out = args.out or str(Path("runs") / f"doctor-{data.resolve().name}")
    # With --json, stdout holds the JSON only: progress lines (a first weights conversion) go to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = doctor(data, backbone=args.backbone, image_size=image_size(args.image_size),
                        out=out, folds=args.folds)
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    echo(str(result))
    for title, rows in (
        ("cross-split duplicates", [f"{d['kind']:<5} {d['similarity']:.3f}  {d['a']}  {d['b']}"
                                    for d in result.duplicates if d["cross_split"]]),
        ("likely label errors", [f"{r['path']}: {r['given']} -> {r['suggested']} ({r['confidence']:.2f})"
                                 for r in result.label_issues]),
    ):
        if rows:
            echo(f"{title} (first {min(len(rows), 10)} of {len(rows)}):")
            for row in rows[:10]:
                echo(f"  {row}")
    return EXIT_OK


COMMAND = Subcommand(
    name="doctor",
    help="find duplicates, leaks across splits, likely label errors and outliers in a folder",
    description="Examine an image folder (or train/val/test folders) with pretrained features: "
    "exact and near duplicates within and across splits, likely label errors (confident "
    "learning on out-of-fold probabilities), class balance, size/aspect outliers and "
    "unreadable files. Writes doctor.json, doctor.md and suspects.png; never changes the data.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit doctor --data photos\n"
    "  tl-kit doctor --data photos --image-size 128 --out runs/doctor --json",
)
