"""``tl-kit evaluate``: evaluate a trained run (tl_kit.evaluate.evaluate_run)."""

from __future__ import annotations

import argparse

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import (
    echo,
    existing_dir,
    existing_path,
    fmt,
    print_json,
    rich_table,
    spinner,
)


def _print_report(report: dict, title: str) -> None:
    """Evaluation report as rich tables: totals, per class, most confused pairs, files."""
    k = report.get("top_k")
    totals = [
        ("samples", report.get("num_samples")),
        ("loss", report.get("loss")),
        ("accuracy", report.get("accuracy")),
    ]
    if k:
        totals.append((f"top-{k} accuracy", report.get("top_k_accuracy")))
    if report.get("tta"):
        totals.append(("tta", report["tta"]))
    rich_table(title, ("metric", "value"), [(m, fmt(v)) for m, v in totals], right=(1,))
    per_class = report.get("per_class") or {}
    if per_class:
        rows = [
            (
                name,
                fmt(c.get("precision"), 3),
                fmt(c.get("recall"), 3),
                fmt(c.get("f1-score", c.get("f1")), 3),
                c.get("support", "-"),
            )
            for name, c in per_class.items()
        ]
        rich_table(
            "per class", ("class", "precision", "recall", "f1", "support"), rows, right=(1, 2, 3, 4)
        )
    confused = report.get("most_confused") or []
    if confused:
        rows = []
        for item in confused[:10]:
            if isinstance(item, dict):
                rows.append((item.get("true"), item.get("predicted"), item.get("count")))
            else:
                rows.append(tuple(item)[:3])
        rich_table("most confused", ("true", "predicted", "count"), rows, right=(2,))
    files = report.get("files") or {}
    if files:
        items = files.items() if isinstance(files, dict) else enumerate(files)
        rich_table("files written", ("what", "path"), [(k, v) for k, v in items])


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory, .keras model file or export folder")
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="image folder (one sub-folder per class, or train/ val/ test/ folders of them) "
        "or tfds:NAME; all of it is evaluated unless it is split or is the run's own "
        "training data (default: the run's training data)",
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=None,
        help="which split: a train/val/test sub-folder of --data, or, for the run's own "
        "training data, that split of the run's manifest (default: test, else val)",
    )
    p.add_argument(
        "--tta",
        choices=("none", "flip", "multicrop"),
        default="none",
        help="test-time augmentation: mirror, or 10 crops (corners+centre, mirrored)",
    )
    p.add_argument("--top-k", type=int, default=5, help="k of the top-k accuracy (default 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="folder under which the report folder <data>-<split>-<n>/ (metrics.json, "
        "confusion matrix, plots, hygiene of the evaluated data) is made "
        "(default: RUN/evaluations); the run's own files are never changed",
    )
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")


def _run(args: argparse.Namespace) -> int:
    existing_path(args.run, "run")
    data = existing_dir(args.data, "data") if args.data is not None else None
    from tl_kit.evaluate import evaluate_run

    with spinner(f"evaluating {args.run} on {data or 'its training data'}", quiet=args.json):
        report = evaluate_run(
            args.run,
            data,
            split=args.split,
            out_dir=args.out,
            tta=None if args.tta == "none" else args.tta,
            top_k=args.top_k,
            batch_size=args.batch_size,
        )
    if args.json:
        print_json(report)
    else:
        _print_report(report, f"evaluation of {args.run}")
        echo(f"evaluated: {report['evaluated']['how']}")
        echo(f"report: {report['files']['report_dir']}")
    return EXIT_OK


COMMAND = Subcommand(
    name="evaluate",
    help="evaluate a trained run: accuracy, top-k, per-class report, confusion matrix",
    description="Evaluate the model of a run directory (or a .keras file or an export) on "
    "an image folder. A folder is loaded with the run's class names and split manifest, so "
    "the test split is the one training held out. Writes metrics.json, "
    "confusion_matrix.csv and plots/ (confusion matrix, worst predictions) into the run.",
    add_arguments=_args,
    run=_run,
    arguments={"out_dir": "out", "source": "data"},
    epilog="examples:\n"
    "  tl-kit evaluate runs/photos --data data/my_photos\n"
    "  tl-kit evaluate runs/photos --data data/my_photos --tta multicrop --split val\n"
    "  tl-kit evaluate runs/photos --data data/other_photos --json > metrics.json",
)
