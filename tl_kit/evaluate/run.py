"""Evaluate the model of a run (or export) directory into a new report folder; backs
``tl-kit evaluate``."""

from __future__ import annotations

import os
from pathlib import Path

from tl_kit._io import write_json_atomic
from tl_kit.errors import UserError
from tl_kit.evaluate.metrics import evaluate_model
from tl_kit.evaluate.report import new_report_dir
from tl_kit.evaluate.sources import load_evaluation_data
from tl_kit.tta import model_image_size

__all__ = ["evaluate_run"]


def _load_source(model, class_names, run_dir, home: Path, data, split: str | None):
    """Load a source string (or the run's own data for None) at the model's input size ->
    ``(Data, split, evaluated, name_source)``."""
    size = model_image_size(model)
    if size is None:
        raise UserError(
            f"The model in {run_dir} has no fixed input size to load images at. "
            f"Received: input_shape={model.input_shape}"
        )
    source = None if data is None else str(data)
    data, split, how = load_evaluation_data(
        source, image_size=size, channels=int(model.input_shape[-1]),
        class_names=class_names, split=split, run_dir=home if home.is_dir() else None)
    evaluated = {"data": data.info.source, "split": split, "how": how,
                 "skipped": [list(s) for s in data.info.skipped]}
    return data, split, evaluated, source if source is not None else data.info.source


def _write_hygiene(folder: Path, report: dict, data, split: str | None, source) -> None:
    """The evaluated split's hygiene records, plus every file skipped while loading."""
    hygiene = getattr(data, "hygiene", None)
    if not hygiene:
        return
    keep = set(data.paths(split) or []) if split is not None else set()
    hygiene = [r for r in hygiene if r.path in keep or r.status != "ok"]
    from tl_kit.data import write_hygiene

    write_hygiene(folder, hygiene, Path(str(source)))
    report["files"]["hygiene_csv"] = str(folder / "hygiene.csv")
    report["files"]["hygiene_json"] = str(folder / "hygiene.json")


def evaluate_run(
    run_dir: str | os.PathLike,
    data=None,
    *,
    split: str | None = None,
    out_dir: str | os.PathLike | None = None,
    tta: str | None = None,
    top_k: int = 5,
    batch_size: int = 32,
) -> dict:
    """Evaluate the model saved in a run (or export) directory; backs ``tl-kit evaluate``.

    ``data`` is a source for ``tl_kit.data.load_data`` (folder, ``"tfds:NAME"``), loaded as
    :func:`load_evaluation_data` says: the run's own data (or ``data=None``) by the run's
    split manifest (default its test split, else val); a folder with ``train/ val/ test/``
    sub-folders by ``split`` (default test, else val); any other folder all of it. Or
    anything :func:`evaluate_model` accepts (arrays, tf.data, ``Data``).

    Nothing in ``run_dir`` that training wrote is changed. The report goes into a new folder
    ``<out_dir>/<data-name>-<split>-<n>/`` (``out_dir`` defaults to ``run_dir/evaluations``):
    ``metrics.json``, ``confusion_matrix.csv``, ``plots/``, and for folders the hygiene
    report of the evaluated data (``hygiene.csv``, ``hygiene.json``). The returned report
    names that folder in ``files["report_dir"]`` and what was evaluated in ``evaluated``.
    """
    from tl_kit.predict import load_for_inference

    model, class_names = load_for_inference(run_dir)
    run = Path(run_dir)
    home = run if run.is_dir() else run.parent
    evaluated = {"data": None, "split": split, "how": "the data given"}
    name_source = "data"
    if data is None or isinstance(data, str | os.PathLike):
        data, split, evaluated, name_source = _load_source(model, class_names, run_dir, home,
                                                           data, split)
    base = Path(out_dir) if out_dir is not None else home / "evaluations"
    folder = new_report_dir(base, name_source, split or "all")
    report = evaluate_model(model, data, class_names, out_dir=folder, tta=tta, top_k=top_k,
                            split=split, batch_size=batch_size)
    _write_hygiene(folder, report, data, split, evaluated["data"])
    report["files"]["report_dir"] = str(folder)
    report["evaluated"] = evaluated
    write_json_atomic(folder / "metrics.json", report)
    return report
