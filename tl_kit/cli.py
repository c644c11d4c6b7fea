"""The ``tl-kit`` command line: thin subcommands over the tl_kit library.

Each subcommand is one entry of :data:`SUBCOMMANDS`: a name, a one-line help, an
epilog with examples, a function that adds its arguments to its parser and a
function that runs it (calling library code only). To add a subcommand, write those
two functions and append a :class:`Subcommand` to the table.

Errors that are the user's to fix (:class:`tl_kit.errors.UserError`, ``ValueError``
raised for bad input, ``FileNotFoundError``) print ``tl-kit: error: ...`` on one line
to stderr and exit with status 2; ``--traceback`` shows the full traceback instead.
Argparse usage errors also exit with 2. TensorFlow and Keras are imported inside the
run functions only, so ``tl-kit --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tl_kit import __version__
from tl_kit.errors import UserError

__all__ = ["Subcommand", "SUBCOMMANDS", "build_parser", "main", "EXIT_USER_ERROR"]

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

PROG = "tl-kit"


@dataclass(frozen=True)
class Subcommand:
    """One ``tl-kit`` subcommand.

    Attributes:
        name: the word on the command line (``"summary"``).
        help: one line shown in ``tl-kit --help``.
        add_arguments: adds the subcommand's arguments to its parser.
        run: runs it; returns the exit status (None means 0).
        description: longer text at the top of ``tl-kit NAME --help`` (defaults to help).
        epilog: examples shown at the end of ``tl-kit NAME --help``.
        arguments: library argument names the run function passes a flag's value to under
            another name (``{"run_dir": "out"}``: ``Learner(run_dir=args.out)``), so that
            error messages naming ``run_dir`` show ``--out``; same-named ones need no entry.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""
    epilog: str = ""
    arguments: Mapping[str, str] = field(default_factory=dict)


def _print(text: str = "") -> None:
    print(text, file=sys.stdout)


def _format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """Plain aligned columns (pipe-friendly); columns listed in ``right`` are right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# === models ===


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*' (default: all)"
    )
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")


def _models_run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import model_catalog

    entries = model_catalog(args.pattern)
    if not entries:
        from tl_kit.models.registry import list_models

        raise UserError(
            f"No model matches {args.pattern!r}. Known models: {', '.join(list_models())}. "
            f"Received: pattern={args.pattern!r}"
        )
    if args.json:
        _print(json.dumps(entries, indent=2))
        return EXIT_OK
    rows = []
    for e in entries:
        params = "?" if e["params"] is None else f"{e['params']:,}"
        if e["params_trainable_only"]:
            params += " (trainable)"
        rows.append(
            (
                e["name"],
                "x".join(str(d) for d in e["default_size"]),
                params,
                str(len(e["blocks"])),
                e["paper"],
            )
        )
    _print(_format_table(("name", "default size", "params", "blocks", "paper"), rows, right=(2, 3)))
    return EXIT_OK


# === summary ===


def _summary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered model or backbone name, or a saved .keras model file")
    p.add_argument(
        "--input-shape",
        metavar="H,W,C",
        help="input size, as H,W,C or HxWxC (H,W keeps the model's channels); default: the model's",
    )
    top = p.add_mutually_exclusive_group()
    top.add_argument(
        "--include-top",
        dest="include_top",
        action="store_const",
        const=True,
        default=None,
        help="build with the classifier (the builder's default)",
    )
    top.add_argument(
        "--no-top",
        dest="include_top",
        action="store_const",
        const=False,
        help="build the feature extractor only (any input size from the model's minimum)",
    )
    p.add_argument("--classes", type=int, default=None, help="number of classes of the classifier")
    p.add_argument("--json", action="store_true", help="print the table and totals as JSON")


def _summary_run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import summary

    kwargs = {}
    if args.include_top is not None:
        kwargs["include_top"] = args.include_top
    if args.classes is not None:
        kwargs["classes"] = args.classes
    result = summary(args.name, input_shape=args.input_shape, **kwargs)
    if args.json:
        _print(result.to_json())
    else:
        result.print(file=sys.stdout)
    return EXIT_OK


# === Shared helpers for the workflow commands ===


def _console(stderr: bool = False):
    """A rich Console on the current stdout/stderr (wide when not a terminal, so pipes keep
    whole rows)."""
    from rich.console import Console

    file = sys.stderr if stderr else sys.stdout
    return Console(file=file, width=None if file.isatty() else 200, highlight=False)


def _rich_table(title: str | None, header: Sequence[str], rows: Sequence[Sequence], right=()):
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(header):
        table.add_column(str(name), justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    _console().print(table)


@contextlib.contextmanager
def _spinner(message: str, quiet: bool = False):
    """A rich spinner on stderr while a long step runs (nothing when ``quiet``)."""
    if quiet:
        yield
        return
    console = _console(stderr=True)
    with console.status(message, spinner="dots"):
        yield
    console.print(f"[green]done[/green] {message}")


def _existing_dir(path: str, arg: str) -> str:
    """``path`` if it is a folder (or a ``tfds:NAME`` source); otherwise a one-line UserError."""
    if str(path).startswith("tfds:"):
        return path
    if "://" in str(path):  # a tf.io.gfile URI (gs://, ram://, ...): read in place
        import tensorflow as tf

        if not tf.io.gfile.isdir(str(path)):
            raise UserError(f"Folder not found: {path}. Received: {arg}={path!r}")
        return path
    p = Path(path)
    if not p.exists():
        raise UserError(f"Folder not found: {path}. Received: {arg}={path!r}")
    if not p.is_dir():
        raise UserError(f"Expected a folder, got a file: {path}. Received: {arg}={path!r}")
    return path


def _existing_path(path: str, arg: str) -> str:
    if not Path(path).exists():
        raise UserError(f"Not found: {path}. Received: {arg}={path!r}")
    return path


def _image_size(value: str | None) -> tuple[int, int] | None:
    """``"64"`` -> (64, 64); ``"64,96"`` / ``"64x96"`` -> (64, 96)."""
    if value is None:
        return None
    parts = [p for p in str(value).replace("x", ",").split(",") if p.strip()]
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise UserError(
            f"--image-size takes one or two positive integers (64 or 64,96). "
            f"Received: image_size={value!r}"
        )
    return size


def _jsonable(obj):
    """Numpy scalars/arrays, tuples and paths into plain JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _print_json(obj) -> None:
    _print(json.dumps(_jsonable(obj), indent=2))


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


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
    _rich_table(title, ("metric", "value"), [(m, _fmt(v)) for m, v in totals], right=(1,))
    per_class = report.get("per_class") or {}
    if per_class:
        rows = [
            (
                name,
                _fmt(c.get("precision"), 3),
                _fmt(c.get("recall"), 3),
                _fmt(c.get("f1-score", c.get("f1")), 3),
                c.get("support", "-"),
            )
            for name, c in per_class.items()
        ]
        _rich_table(
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
        _rich_table("most confused", ("true", "predicted", "count"), rows, right=(2,))
    files = report.get("files") or {}
    if files:
        items = files.items() if isinstance(files, dict) else enumerate(files)
        _rich_table("files written", ("what", "path"), [(k, v) for k, v in items])


# === evaluate ===


def _evaluate_args(p: argparse.ArgumentParser) -> None:
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


def _evaluate_run(args: argparse.Namespace) -> int:
    _existing_path(args.run, "run")
    data = _existing_dir(args.data, "data") if args.data is not None else None
    from tl_kit.evaluate import evaluate_run

    with _spinner(f"evaluating {args.run} on {data or 'its training data'}", quiet=args.json):
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
        _print_json(report)
    else:
        _print_report(report, f"evaluation of {args.run}")
        _print(f"evaluated: {report['evaluated']['how']}")
        _print(f"report: {report['files']['report_dir']}")
    return EXIT_OK


# === predict ===


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory, .keras model file or export folder")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF) or folders")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "multicrop"),
        default="none",
        help="test-time augmentation (default none)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def _predict_run(args: argparse.Namespace) -> int:
    _existing_path(args.model, "model")  # the images are checked one by one, in the library
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1. Received: top_k={args.top_k}")
    from tl_kit.predict import format_predictions, predict_run

    with _spinner(f"predicting {len(args.images)} file(s) or folder(s)", quiet=args.json):
        preds = predict_run(
            args.model,
            list(args.images),
            top_k=args.top_k,
            tta=None if args.tta == "none" else args.tta,
            batch_size=args.batch_size,
        )
    if args.json:
        _print(format_predictions(preds, as_json=True))
        _warn_unread(preds)
        return EXIT_OK
    k = max(len(p["top"]) for p in preds)
    header = ["image"] + [f"top {i + 1}" for i in range(k)]
    rows = [
        [p["path"] or f"image[{i}]"]
        + ([f"{name} {prob:.3f}" for name, prob in p["top"]] if not p.get("error")
           else [f"not read: {p['error']}"] + [""] * (k - 1))
        for i, p in enumerate(preds)
    ]
    _rich_table(None, header, rows)
    _warn_unread(preds)
    return EXIT_OK


def _warn_unread(preds: Sequence[dict]) -> None:
    """One stderr line when some images could not be read (their rows say why)."""
    bad = sum(1 for p in preds if p.get("error"))
    if bad:
        print(f"{PROG}: warning: {bad} of {len(preds)} image(s) could not be read (see their "
              "rows); the others were predicted", file=sys.stderr)


# === export ===


def _export_args(p: argparse.ArgumentParser) -> None:
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


def _export_run(args: argparse.Namespace) -> int:
    _existing_path(args.run, "run")
    data = _existing_dir(args.data, "data") if args.data else None
    if "tflite" in args.formats and data is None:
        raise UserError(
            "TFLite export calibrates the int8 model on training images: pass --data DIR. "
            f"Received: formats={args.formats}"
        )
    from tl_kit.export import export_run, next_version

    out = args.out if args.out is not None else str(Path(args.run) / "export")
    version = args.version
    if args.overwrite and version is None:
        newest = next_version(out) - 1 if Path(out).is_dir() else 0
        version = newest if newest >= 1 else None
    with _spinner(f"exporting {args.run} as {', '.join(args.formats)}", quiet=args.json):
        report = export_run(
            args.run,
            out,
            formats=tuple(args.formats),
            data=data,
            version=version,
            overwrite=args.overwrite,
        )
    if args.json:
        _print_json(report)
        return EXIT_OK
    rows = []
    for fmt in args.formats:
        info = report.get(fmt) or {}
        checks = info.items() if fmt == "tflite" else [("", info)]
        for mode, r in checks:
            r = r if isinstance(r, dict) else {}
            rows.append(
                (
                    f"{fmt}/{mode}" if mode else fmt,
                    _fmt(r.get("max_abs_diff"), 6),
                    _fmt(r.get("top1_agreement"), 3),
                    _fmt(r.get("accuracy"), 3),
                    _fmt(r.get("accuracy_drop"), 3),
                    f"{r['size_bytes']:,}" if isinstance(r.get("size_bytes"), int) else "-",
                )
            )
    _rich_table(
        f"export written to {report.get('path')}",
        ("format", "max |diff| vs Keras", "top-1 agreement", "accuracy", "accuracy drop", "bytes"),
        rows,
        right=(1, 2, 3, 4, 5),
    )
    return EXIT_OK


# === augment-preview ===


def _augment_args(p: argparse.ArgumentParser) -> None:
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


def _augment_run(args: argparse.Namespace) -> int:
    data = _existing_dir(args.data, "data")
    size = _image_size(args.image_size)
    from tl_kit.augment import POLICIES, save_augmentation_preview

    if args.policy not in POLICIES:
        raise UserError(
            f"Unknown augmentation policy {args.policy!r}; choose one of {', '.join(POLICIES)}. "
            f"Received: policy={args.policy!r}"
        )
    with _spinner(f"scanning {data} and augmenting {args.num_images} images"):
        path = save_augmentation_preview(
            data,
            args.out,
            policy=args.policy,
            n=args.num_images,
            backend=args.backend,
            image_size=size,
            seed=args.seed,
        )
    _print(str(path))
    return EXIT_OK


# === weights ===




def _weights_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=("fetch", "list"),
        help="fetch: download into the Keras cache; list: show what is cached",
    )
    p.add_argument(
        "names",
        nargs="*",
        help="backbone names (fetch), or shell-style patterns (list; default: all)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _weights_run(args: argparse.Namespace) -> int:
    from tl_kit.backbones import get_backbone, list_backbones
    from tl_kit.weights import keras_cache_dir

    if args.action == "fetch":
        if not args.names:
            raise UserError("weights fetch needs at least one backbone name. Received: names=[]")
        specs = [get_backbone(n) for n in args.names]  # unknown names fail before any download
        from tl_kit.weights import fetch_weights

        with _spinner(
            f"fetching ImageNet weights for {', '.join(s.name for s in specs)}", quiet=args.json
        ):
            result = fetch_weights([s.name for s in specs], verbose=False)
        if args.json:
            _print_json(result)
        else:
            rows = [(name, path) for name, paths in result.items() for path in paths]
            _rich_table(
                f"Keras cache: {Path(keras_cache_dir()) / 'models'}", ("backbone", "file"), rows
            )
        return EXIT_OK

    from tl_kit.weights import weights_status

    patterns = args.names or ["*"]
    names = sorted({n for pat in patterns for n in list_backbones(pat)})
    if not names:
        raise UserError(f"No backbone matches {patterns}. Received: names={patterns}")
    specs = [get_backbone(n) for n in names]
    entries = []
    from rich.progress import Progress

    with Progress(console=_console(stderr=True), transient=True, disable=args.json) as progress:
        task = progress.add_task("checking the weights cache", total=len(specs))
        for spec in specs:
            entries.append(weights_status(spec))
            progress.advance(task)
    if args.json:
        _print_json({"cache_dir": str(Path(keras_cache_dir()) / "models"), "backbones": entries})
        return EXIT_OK
    rows = [
        (
            e["backbone"],
            "no ImageNet weights"
            if not e["imagenet"]
            else ("cached" if e["cached"] else "missing"),
            e["file"] or "",
        )
        for e in entries
    ]
    _rich_table(
        f"Keras cache: {Path(keras_cache_dir()) / 'models'}", ("backbone", "imagenet", "file"), rows
    )
    return EXIT_OK


# === train ===


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe",
        help="recipe TOML file (recipes/*.toml), a built-in (small, medium, large), scratch "
        "(random weights, every layer), or auto (chosen from images per class)",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="image folder (one sub-folder per class, nested ok) or tfds:NAME",
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="backbone name (tl-kit models; keras:* names); default: the recipe's",
    )
    p.add_argument(
        "--out",
        metavar="RUN_DIR",
        default=None,
        help="run directory (default runs/<backbone>-<time>)",
    )
    p.add_argument(
        "--weights",
        default="auto",
        help="auto (ImageNet where published), imagenet, none, a weights file, "
        "a .keras model or a run directory",
    )
    p.add_argument(
        "--image-size",
        default=None,
        metavar="S",
        help="input size, S or H,W (default: the recipe's, else the backbone's)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs-scale",
        type=float,
        default=None,
        metavar="F",
        help="multiply every stage's epochs by F (at least 1 epoch per stage)",
    )
    budget.add_argument(
        "--epochs", type=int, default=None, metavar="N", help="N epochs for every stage"
    )
    budget.add_argument(
        "--quick",
        action="store_true",
        help="1 epoch per stage, no augmented feature copies (a smoke run)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="global batch size, every stage")
    p.add_argument(
        "--unfreeze",
        type=int,
        default=None,
        help="blocks the medium recipe unfreezes (default: the backbone's)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker"),
        default="auto",
        help="auto: multi-worker when TF_CONFIG describes a cluster, mirrored with several "
        "GPUs, else default (one device)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        default="auto",
        help="auto: mixed precision on GPUs that support it; float32 turns it off",
    )
    p.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA for the training step (auto: on GPU where the model allows it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a complete run (or one with other settings) in --out; without it a "
        "rerun of an unfinished run resumes it",
    )
    p.add_argument(
        "--json", action="store_true", help="no progress output; print the run summary as JSON"
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="do not fit a temperature on the validation split after training "
        "(default: calibrated probabilities, see README 'Calibrated probabilities')",
    )


def _scaled_recipe(recipe, args: argparse.Namespace):
    """The recipe with the command line's epoch and batch overrides applied."""
    import dataclasses

    stages = []
    for stage in recipe.stages:
        changes: dict = {}
        if args.quick:
            changes.update(epochs=min(stage.epochs, 1), cache_copies=0)
        elif args.epochs is not None:
            changes["epochs"] = args.epochs
        elif args.epochs_scale is not None:
            changes["epochs"] = max(1, round(stage.epochs * args.epochs_scale))
        if args.batch_size is not None:
            changes["batch_size"] = args.batch_size
        stages.append(dataclasses.replace(stage, **changes))
    return recipe.replace(stages=stages)


def _train_run(args: argparse.Namespace) -> int:
    data = _existing_dir(args.data, "data")
    if args.epochs is not None and args.epochs < 1:  # 0 would save an untrained run
        raise UserError(f"--epochs must be at least 1. Received: --epochs {args.epochs}")
    if args.epochs_scale is not None and args.epochs_scale <= 0:
        raise UserError(
            f"--epochs-scale must be positive. Received: epochs_scale={args.epochs_scale}"
        )
    size = _image_size(args.image_size)
    from tl_kit.backbones import get_backbone
    from tl_kit.recipes import load_recipe
    from tl_kit.train import scratch_recipe

    overrides = args.quick or args.epochs is not None or args.epochs_scale is not None
    if args.recipe == "auto":
        if overrides:
            raise UserError(
                "--quick, --epochs and --epochs-scale need a named recipe (small, medium, large, "
                "scratch or a TOML file), not 'auto'. Received: recipe='auto'"
            )
        recipe = None
    elif args.recipe == "scratch":
        recipe = scratch_recipe()
    else:
        recipe = load_recipe(args.recipe)
    backbone = args.backbone or (recipe.backbone if recipe is not None else None)
    if not backbone:
        raise UserError(
            f"Which backbone? The recipe names none: pass --backbone NAME (see tl-kit models, "
            f"tl_kit.list_backbones()). Received: backbone=None, recipe={args.recipe!r}"
        )
    spec = get_backbone(backbone)  # unknown name: one-line error before anything loads
    side = size or ((recipe.image_size,) * 2 if recipe is not None and recipe.image_size else None)
    if side is not None and min(side) < spec.min_size:
        raise UserError(
            f"Backbone {spec.name!r} needs inputs of at least {spec.min_size}x{spec.min_size} "
            f"pixels. Received: image_size={side[0]}x{side[1]}"
        )
    weights = None if str(args.weights).lower() == "none" else args.weights
    if weights not in (None, "auto", "imagenet"):
        _existing_path(weights, "weights")

    from tl_kit.train import Learner

    learner = Learner(
        spec.name,
        recipe=_scaled_recipe(recipe, args) if recipe is not None else None,
        regime="auto",
        weights=weights,
        image_size=size,
        run_dir=args.out,
        seed=args.seed,
        verbose=0 if args.json else 2,
        unfreeze=args.unfreeze,
        strategy=args.strategy,
        precision=args.precision,
        jit_compile={"on": True, "off": False}.get(args.jit_compile, "auto"),
        overwrite=args.overwrite,
        # TensorBoard logs only where the tensorboard package is installed (not a dependency).
        tensorboard=importlib.util.find_spec("tensorboard") is not None,
    )
    if args.no_calibrate:
        learner.calibrate = False
    learner.fit(data)
    summary = {
        "run_dir": str(learner.run_dir),
        "backbone": learner.spec.name,
        "weights": None if learner.weights is None else str(learner.weights),
        "recipe": learner.resolved_recipe.name,
        "regime_reason": learner.regime_reason,
        "image_size": list(learner.image_size),
        "class_names": list(learner.class_names),
        "metrics": learner.metrics,
        "history": learner.history,
    }
    if args.json:
        _print_json(summary)
        return EXIT_OK
    rows = [
        ("run directory", summary["run_dir"]),
        ("backbone", f"{summary['backbone']} (weights={summary['weights']})"),
        ("recipe", f"{summary['recipe']}: {summary['regime_reason']}"),
        ("classes", ", ".join(summary["class_names"])),
    ]
    for split, values in learner.metrics.items():
        if isinstance(values, dict):
            rows.append((split, ", ".join(f"{k} {_fmt(v)}" for k, v in values.items())))
        else:
            rows.append((split, _fmt(values)))
    _rich_table("training finished", ("", ""), rows)
    _print(f"next: tl-kit evaluate {summary['run_dir']} --data {data}")
    return EXIT_OK


# === demo ===


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="small budget (one seed, fewer epochs): a first look in about a minute",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="runs/demo",
        help="run directory for the table, plot and pretraining run (default runs/demo)",
    )
    p.add_argument(
        "--task",
        choices=("photos", "digits"),
        default="photos",
        help="photos (default): ImageNet EfficientNet-Lite0 transferred to 8 photo classes; "
        "digits: LeNet-5 pretrained on digits 0-4, transferred to 5-9",
    )
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")


def _demo_run(args: argparse.Namespace) -> int:
    from tl_kit.demo import run_demo

    kwargs: dict = {"out_dir": args.out, "quick": args.quick, "verbose": 0 if args.json else 1,
                    "task": args.task}
    if args.quick:
        kwargs.update(seeds=(0,))
    result = run_demo(**kwargs)
    if args.json:
        _print_json({k: v for k, v in result.items() if k != "table"})
        return EXIT_OK
    # run_demo (verbose=1) has already printed each cell, the table and what helped.
    _print(f"results: {args.out}")
    return EXIT_OK


# === The table of subcommands ===

SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        name="models",
        help="list the classic models tl_kit can build",
        description="List the registered classic models with their default input size, the "
        "paper's parameter count, the number of blocks (used by freezing) and the paper.",
        add_arguments=_models_args,
        run=_models_run,
        epilog="examples:\n  tl-kit models\n  tl-kit models 'resnet*'\n  tl-kit models vgg16 --json",
    ),
    Subcommand(
        name="summary",
        help="layer table: output shapes, parameters, multiply-adds, receptive field",
        description="Build a model (weights=None, nothing is downloaded) and print one row per "
        "layer (nested models included) and the totals. MACs count the multiply-adds of "
        "convolution and dense layers only, as the papers do; FLOPs ~ 2 x MACs.",
        add_arguments=_summary_args,
        run=_summary_run,
        epilog="examples:\n"
        "  tl-kit summary vgg16\n"
        "  tl-kit summary resnet50 --no-top --input-shape 160,160,3\n"
        "  tl-kit summary lenet5 --json > lenet5.json\n"
        "  tl-kit summary runs/photos/model.keras",
    ),
    Subcommand(
        name="train",
        help="fine-tune a backbone on an image folder following a recipe",
        description="Train backbone + new softmax head on DIR following RECIPE's stages (which "
        "blocks are trainable, epochs, learning rates, augmentation). Writes a run directory: "
        "config.toml, history.csv, metrics.json, checkpoints/, model.keras, logs/. Recipes: "
        "small (frozen backbone, head only), medium (head warm-up, then the last blocks), "
        "large (head warm-up, then everything); RECIPE auto picks one from images per class.",
        add_arguments=_train_args,
        run=_train_run,
        arguments={"run_dir": "out", "source": "data"},
        epilog="examples:\n"
        "  tl-kit train recipes/medium_data.toml --data data/my_photos --backbone resnet50 "
        "--out runs/photos\n"
        "  tl-kit train small --data data/textures --backbone mobilenet_v2 --weights none "
        "--image-size 64 --quick\n"
        "  tl-kit train recipes/small_data.toml --data tfds:beans --backbone keras:efficientnetb0 "
        "--epochs-scale 0.5 --json",
    ),
    Subcommand(
        name="demo",
        help="offline end-to-end transfer demo: ImageNet EfficientNet-Lite0 on photos (or --task digits)",
        description="Pretrain LeNet-5 on digits 0-4, transfer to digits 5-9 with 1, 5 and 20 "
        "labels per class under each regime and from scratch, and print test accuracy (mean "
        "and spread over seeds) and time per cell. No network needed.",
        add_arguments=_demo_args,
        run=_demo_run,
        epilog="examples:\n  tl-kit demo\n  tl-kit demo --quick --out runs/demo_quick\n"
        "  tl-kit demo --task digits\n  tl-kit demo --json > demo.json",
    ),
    Subcommand(
        name="evaluate",
        help="evaluate a trained run: accuracy, top-k, per-class report, confusion matrix",
        description="Evaluate the model of a run directory (or a .keras file or an export) on "
        "an image folder. A folder is loaded with the run's class names and split manifest, so "
        "the test split is the one training held out. Writes metrics.json, "
        "confusion_matrix.csv and plots/ (confusion matrix, worst predictions) into the run.",
        add_arguments=_evaluate_args,
        run=_evaluate_run,
        arguments={"out_dir": "out", "source": "data"},
        epilog="examples:\n"
        "  tl-kit evaluate runs/photos --data data/my_photos\n"
        "  tl-kit evaluate runs/photos --data data/my_photos --tta multicrop --split val\n"
        "  tl-kit evaluate runs/photos --data data/other_photos --json > metrics.json",
    ),
    Subcommand(
        name="predict",
        help="classify image files with a run directory, a .keras model or an export",
        description="Print the top-k classes and probabilities for each image (JPEG, PNG, BMP, "
        "GIF; folders are expanded). Works on a run directory, a .keras file with "
        "class_names.json beside it, or a SavedModel export.",
        add_arguments=_predict_args,
        run=_predict_run,
        epilog="examples:\n"
        "  tl-kit predict runs/photos a.jpg b.png\n"
        "  tl-kit predict runs/photos/export photos/ --top-k 1 --json\n"
        "  tl-kit predict runs/photos a.jpg --tta multicrop",
    ),
    Subcommand(
        name="export",
        help="export a run as SavedModel (TF Serving), TFLite and/or ONNX",
        description="Write a numbered version folder (DIR/1, DIR/2, ...) with the SavedModel "
        "(serving signature on encoded image bytes, preprocessing and class names inside), "
        "labels.txt, and optionally TFLite (float32, dynamic range, int8) and ONNX files, each "
        "checked against the Keras model. An existing version is never replaced without "
        "--overwrite, and a failed export leaves nothing behind.",
        add_arguments=_export_args,
        run=_export_run,
        epilog="examples:\n"
        "  tl-kit export runs/photos\n"
        "  tl-kit export runs/photos --format saved_model tflite onnx --data data/my_photos\n"
        "  tl-kit export runs/photos --out exports/photos --overwrite --json",
    ),
    Subcommand(
        name="weights",
        help="pre-download ImageNet weights (fetch) or show the cache (list)",
        description="'fetch' downloads the ImageNet weights (no top) of the named backbones "
        "into the Keras cache ($KERAS_HOME/models, ~/.keras/models by default): run it where "
        "there is a network, then copy that folder to offline machines. 'list' shows, for each "
        "backbone, whether its file is cached (nothing is downloaded).",
        add_arguments=_weights_args,
        run=_weights_run,
        epilog="examples:\n"
        "  tl-kit weights fetch keras:resnet50 mobilenetv2\n"
        "  tl-kit weights list\n"
        "  tl-kit weights list 'keras:efficientnet*' --json",
    ),
    Subcommand(
        name="augment-preview",
        help="save a grid PNG of augmented training images for a policy",
        description="Load an image folder and save a grid of randomly augmented images, to "
        "see what a recipe's augmentation policy does to your data before training.",
        add_arguments=_augment_args,
        run=_augment_run,
        arguments={"source": "data", "n": "num_images"},
        epilog="examples:\n"
        "  tl-kit augment-preview --data data/textures\n"
        "  tl-kit augment-preview --data data/my_photos --policy strong --out strong.png\n"
        "  tl-kit augment-preview --data data/my_photos --backend albumentations -n 25",
    ),
]


# === lr-find (tl_kit.lr_find) ===


def _lr_find_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="image folder or tfds:NAME")
    p.add_argument("--backbone", default=None, help="backbone name; default: the recipe's")
    p.add_argument(
        "--recipe",
        default="small",
        help="recipe whose stage is swept: small, medium, large, scratch or a TOML file "
        "(default small)",
    )
    p.add_argument(
        "--stage", default=None, help="stage name or index (default: the first with epochs)"
    )
    p.add_argument("--weights", default="auto", help="as for tl-kit train")
    p.add_argument("--image-size", default=None, metavar="S", help="input size, S or H,W")
    p.add_argument("--steps", type=int, default=100, help="sweep steps (default 100)")
    p.add_argument("--min-lr", type=float, default=1e-7)
    p.add_argument("--max-lr", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=None, help="default: the stage's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", metavar="DIR", default=None,
        help="where lr_find.png and lr_find.json go (default runs/lr-find-<backbone>-<time>)",
    )
    p.add_argument(
        "--write-recipe", metavar="TOML", default=None,
        help="write the recipe with the stage's learning_rate set to the suggestion "
        "(then: tl-kit train TOML --data DIR)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _lr_find_run(args: argparse.Namespace) -> int:
    import time

    data = _existing_dir(args.data, "data")
    size = _image_size(args.image_size)
    from tl_kit.backbones import get_backbone
    from tl_kit.lr_find import stage_index
    from tl_kit.recipes import load_recipe
    from tl_kit.train import Learner, scratch_recipe

    recipe = scratch_recipe() if args.recipe == "scratch" else load_recipe(args.recipe)
    stage_index(recipe, args.stage)  # unknown stage: one line before anything loads
    backbone = args.backbone or recipe.backbone
    if not backbone:
        raise UserError(
            f"Which backbone? The recipe names none: pass --backbone NAME. "
            f"Received: backbone=None, recipe={args.recipe!r}"
        )
    spec = get_backbone(backbone)
    if args.write_recipe and Path(args.write_recipe).exists():
        raise UserError(
            f"{args.write_recipe!r} exists already; choose another --write-recipe path. "
            f"Received: write_recipe={args.write_recipe!r}"
        )
    weights = None if str(args.weights).lower() == "none" else args.weights
    out = args.out or str(
        Path("runs", f"lr-find-{spec.name.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    learner = Learner(spec.name, recipe=recipe, weights=weights, image_size=size, run_dir=out,
                      seed=args.seed, verbose=0, tensorboard=False)
    result = learner.lr_find(data, stage=args.stage, out=out, num_steps=args.steps,
                             min_lr=args.min_lr, max_lr=args.max_lr, batch_size=args.batch_size)
    if args.write_recipe:
        result.apply(recipe, args.stage).save(args.write_recipe)
        result.files["recipe_toml"] = args.write_recipe
    if args.json:
        _print_json(result.to_dict())
        return EXIT_OK
    _print(f"stage {result.stage!r}: {len(result.learning_rates)} steps ({result.stopped})")
    _print(f"suggested learning rate: {result.suggested:.3g}  ({result.rule})")
    _print(f"min loss at {result.min_loss_lr:.3g}; min / 10 = {result.min_div_10:.3g}")
    _print(f"plot: {result.files['plot_png']}")
    if args.write_recipe:
        _print(f"next: tl-kit train {args.write_recipe} --data {data} --backbone {spec.name}")
    return EXIT_OK


SUBCOMMANDS.append(
    Subcommand(
        name="lr-find",
        help="learning-rate finder: exponential sweep, loss curve, a suggested rate",
        description="Sweep the learning rate exponentially (1e-7 to 10) over one recipe "
        "stage's trainable layers, one batch per rate, until the smoothed loss exceeds 4x its "
        "minimum; the weights are restored afterwards. Suggests the rate where the smoothed loss "
        "falls fastest (before its minimum) and writes lr_find.png and lr_find.json.",
        add_arguments=_lr_find_args,
        run=_lr_find_run,
        epilog="examples:\n"
        "  tl-kit lr-find --data data/my_photos --backbone mobilenet_v2\n"
        "  tl-kit lr-find --data data/my_photos --backbone resnet50 --recipe medium --stage "
        "finetune --write-recipe tuned.toml\n"
        "  tl-kit lr-find --data data/textures --backbone lenet5 --weights none --recipe scratch "
        "--json",
    )
)


# === explain (tl_kit.explain) ===


def _explain_args(p: argparse.ArgumentParser) -> None:
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


def _explain_run(args: argparse.Namespace) -> int:
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
    paths = []
    for item in args.images:
        item_path = Path(item)
        if item_path.is_dir():
            paths += sorted(str(f) for f in item_path.rglob("*")
                            if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".gif"))
        else:
            paths.append(_existing_path(item, "image"))
    if not paths:
        raise UserError(f"No images found. Received: images={args.images}")
    out = args.out or str((run if run.is_dir() else run.parent) / "explain")
    result = explain(model, paths, class_names=names, out=out, classes=classes, layer=args.layer,
                     blocks=run_blocks(run if run.is_dir() else run.parent))
    rows = [{"path": p, "class": n, "probability": float(result["probabilities"][i][c]),
             "overlay": f}
            for i, (p, n, c, f) in enumerate(zip(result["paths"], result["names"], result["classes"],
                                                  result["files"], strict=True))]
    if args.json:
        _print_json({"layer": result["layer"], "out": out, "images": rows})
        return EXIT_OK
    _print(f"Grad-CAM on layer {result['layer']!r}")
    for row in rows:
        _print(f"{row['path']}: {row['class']} (p={row['probability']:.3f}) -> {row['overlay']}")
    return EXIT_OK


SUBCOMMANDS.append(
    Subcommand(
        name="explain",
        help="Grad-CAM heatmap overlays: where the model looked",
        description="Write one PNG per image with the Grad-CAM heatmap of the predicted class "
        "(or --class) over it, computed on the output of the backbone's last convolutional "
        "block (from its block declaration).",
        add_arguments=_explain_args,
        run=_explain_run,
        epilog="examples:\n"
        "  tl-kit explain runs/photos a.jpg b.jpg\n"
        "  tl-kit explain runs/photos photos/ --out runs/photos/cam --class cat --json",
    )
)


def _doctor_args(p: argparse.ArgumentParser) -> None:
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


def _doctor_run(args: argparse.Namespace) -> int:
    from tl_kit.data_doctor import doctor

    data = Path(_existing_dir(args.data, "data"))
    out = args.out or str(Path("runs") / f"doctor-{data.resolve().name}")
    # With --json, stdout holds the JSON only: progress lines (a first weights conversion) go to stderr.
    import contextlib

    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = doctor(data, backbone=args.backbone, image_size=_image_size(args.image_size),
                        out=out, folds=args.folds)
    if args.json:
        _print_json(result.to_dict())
        return EXIT_OK
    _print(str(result))
    for title, rows in (
        ("cross-split duplicates", [f"{d['kind']:<5} {d['similarity']:.3f}  {d['a']}  {d['b']}"
                                    for d in result.duplicates if d["cross_split"]]),
        ("likely label errors", [f"{r['path']}: {r['given']} -> {r['suggested']} ({r['confidence']:.2f})"
                                 for r in result.label_issues]),
    ):
        if rows:
            _print(f"{title} (first {min(len(rows), 10)} of {len(rows)}):")
            for row in rows[:10]:
                _print(f"  {row}")
    return EXIT_OK


SUBCOMMANDS.append(
    Subcommand(
        name="doctor",
        help="find duplicates, leaks across splits, likely label errors and outliers in a folder",
        description="Examine an image folder (or train/val/test folders) with pretrained features: "
        "exact and near duplicates within and across splits, likely label errors (confident "
        "learning on out-of-fold probabilities), class balance, size/aspect outliers and "
        "unreadable files. Writes doctor.json, doctor.md and suspects.png; never changes the data.",
        add_arguments=_doctor_args,
        run=_doctor_run,
        epilog="examples:\n"
        "  tl-kit doctor --data photos\n"
        "  tl-kit doctor --data photos --image-size 128 --out runs/doctor --json",
    )
)


# === Parser and entry point ===


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="tl_kit: transfer learning on images with Keras 3 / TensorFlow.",
        epilog="Run 'tl-kit COMMAND --help' for the options and examples of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full Python traceback on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for cmd in SUBCOMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description or cmd.help,
            epilog=cmd.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run, _flags=_flags_of(p, cmd.arguments))
    return parser


def _flags_of(parser: argparse.ArgumentParser, aliases: Mapping[str, str]) -> dict[str, str]:
    """Argument name -> the long flag that sets it (``{"top_k": "--top-k"}``), from the
    parser's own options plus the subcommand's ``arguments`` aliases."""
    flags = {}
    for action in parser._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long and action.dest not in ("help", argparse.SUPPRESS):
            flags[action.dest] = long[0]
    flags.update({name: flags[dest] for name, dest in aliases.items() if dest in flags})
    return flags


def _one_line(err: BaseException) -> str:
    """The message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join((text or type(err).__name__).split())


def _user_facing_errors() -> tuple[type[BaseException], ...]:
    """Exceptions shown as one line with exit status 2: bad input, or a missing file or
    weights download the message tells the user how to provide."""
    from tl_kit.errors import TLKitError

    types: list[type[BaseException]] = [UserError, TLKitError, FileNotFoundError, ValueError]
    weights = sys.modules.get("tl_kit.weights")  # imported only by commands that need it
    if weights is not None:
        types.append(weights.WeightsUnavailableError)
    return tuple(types)


# TensorFlow's native start-up banner: written by C++ straight to file descriptor 2 while
# TensorFlow is imported, whatever TF_CPP_MIN_LOG_LEVEL says (TF 2.21). Only these lines are
# dropped; anything else written during the import (a missing CUDA library, say) is kept.
_TF_BANNER = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)


def without_tf_banner(text: str) -> str:
    """``text`` without the lines of TensorFlow's start-up banner (:data:`_TF_BANNER`)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(marker in line for marker in _TF_BANNER))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 sent to a temporary file, then write back
    what it held minus the banner (all of it if the import fails)."""
    if "tensorflow" in sys.modules:
        return
    import os
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr: nothing to filter
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            sys.stderr.write(text if failed else without_tf_banner(text))
            sys.stderr.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as ``tl-kit: warning: MESSAGE`` (no Python file, line or source line)."""
    print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tl-kit`` with ``argv`` (``sys.argv[1:]`` by default); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return (
            exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USER_ERROR)
        )
    import_tensorflow_quietly()  # every command uses TensorFlow; --help returned above
    from tl_kit.errors import in_terms_of_flags

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            status = args._run(args)
    except Exception as err:
        if args.traceback or not isinstance(err, _user_facing_errors()):
            raise
        message = in_terms_of_flags(_one_line(err), getattr(args, "_flags", {}))
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `tl-kit models | head -1`
        return EXIT_OK
    return EXIT_OK if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
