"""``tl-kit export``: SavedModel, TFLite and ONNX exports of a run (tl_kit.export.export_run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import existing_dir, existing_path, fmt, print_json, rich_table, spinner
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or .keras model file (with class_names.json)")
    p.add_argument(
        "--format",
        nargs="+",
        default=["saved_model"],
        dest="formats",
        choices=("saved_model", "tflite", "onnx"),
        metavar="FORMAT",
        help="one or more of saved_model, tflite, onnx (default saved_model)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="base folder; versions go in DIR/1, DIR/2, ... (default RUN/export)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="training images: calibrate int8 TFLite and check accuracy (needed for tflite)",
    )
    p.add_argument(
        "--version",
        type=int,
        default=None,
        help="version folder number (default: the next free one)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the existing version (--version N, else the newest)",
    )
    p.add_argument("--json", action="store_true", help="print the export report as JSON")


def _run(args: argparse.Namespace) -> int:
    existing_path(args.run, "run")
    data = existing_dir(args.data, "data") if args.data else None
    if "tflite" in args.formats and data is None:
        raise UserError(
            "TFLite export calibrates the int8 model on training images: pass --data DIR. "
            f"Received: formats={args.formats}"
        )
    from tl_kit.export import export_run, resolve_version

    out = args.out if args.out is not None else str(Path(args.run) / "export")
    version = resolve_version(out, args.version, args.overwrite)  # --overwrite alone: the newest
    with spinner(f"exporting {args.run} as {', '.join(args.formats)}", quiet=args.json):
        report = export_run(
            args.run,
            out,
            formats=tuple(args.formats),
            data=data,
            version=version,
            overwrite=args.overwrite,
        )
    if args.json:
        print_json(report)
        return EXIT_OK
    _print_checks(report, args.formats)
    return EXIT_OK


def _print_checks(report: dict, formats: list[str]) -> None:
    """One row per written format (per TFLite mode): its check against the Keras model."""
    rows = []
    for form in formats:
        info = report.get(form) or {}
        checks = info.items() if form == "tflite" else [("", info)]
        for mode, r in checks:
            r = r if isinstance(r, dict) else {}
            rows.append(
                (
                    f"{form}/{mode}" if mode else form,
                    fmt(r.get("max_abs_diff"), 6),
                    fmt(r.get("top1_agreement"), 3),
                    fmt(r.get("accuracy"), 3),
                    fmt(r.get("accuracy_drop"), 3),
                    f"{r['size_bytes']:,}" if isinstance(r.get("size_bytes"), int) else "-",
                )
            )
    rich_table(
        f"export written to {report.get('path')}",
        ("format", "max |diff| vs Keras", "top-1 agreement", "accuracy", "accuracy drop", "bytes"),
        rows,
        right=(1, 2, 3, 4, 5),
    )


COMMAND = Subcommand(
    name="export",
    help="export a run as SavedModel (TF Serving), TFLite and/or ONNX",
    description="Write a numbered version folder (DIR/1, DIR/2, ...) with the SavedModel "
    "(serving signature on encoded image bytes, preprocessing and class names inside), "
    "labels.txt, and optionally TFLite (float32, dynamic range, int8) and ONNX files, each "
    "checked against the Keras model. An existing version is never replaced without "
    "--overwrite, and a failed export leaves nothing behind.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit export runs/photos\n"
    "  tl-kit export runs/photos --format saved_model tflite onnx --data data/my_photos\n"
    "  tl-kit export runs/photos --out exports/photos --overwrite --json",
)
