"""Export the model of a run directory; backs ``tl-kit export``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tl_kit.errors import UserError
from tl_kit.export.model import export_model
from tl_kit.export.versions import check_base
from tl_kit.tta import model_image_size

__all__ = ["export_run"]


def _export_data(data, model, names, run_dir) -> tuple:
    """``(representative, test)`` data for :func:`export_model` from ``data``; a source
    string is loaded with the run's split manifest, read only."""
    if isinstance(data, str | os.PathLike):
        from tl_kit.data import load_data

        data = load_data(str(data), image_size=model_image_size(model),
                         channels=int(model.input_shape[-1]), class_names=list(names),
                         run_dir=str(run_dir), record=False)  # the run's records stay
    if hasattr(data, "has"):
        return data, data if (data.has("test") or data.has("val")) else None
    return data, data


def export_run(
    run_dir: str | os.PathLike,
    path: str | os.PathLike | None = None,
    *,
    formats: Sequence[str] = ("saved_model",),
    data=None,
    version: int | None = None,
    overwrite: bool = False,
) -> dict:
    """Export the model of a run directory; backs ``tl-kit export RUN --format ...``.

    ``path`` defaults to ``run_dir/export``. ``data`` (a folder or tfds source, or anything
    ``export_model`` accepts) supplies the representative (train split) and test images for
    TFLite and the image files of the ``serving_default`` check; a source string is loaded
    with the run's split manifest, read only (nothing in ``run_dir`` changes).
    """
    from tl_kit.predict import load_for_inference

    check_base(path if path is not None else Path(run_dir) / "export")  # before any loading
    model, names = load_for_inference(run_dir)
    if not hasattr(model, "get_config"):
        raise UserError(
            f"{str(run_dir)!r} holds an export, not a Keras model; export from the run "
            f"directory instead. Received: run_dir={str(run_dir)!r}"
        )
    representative = test = None
    if data is not None:
        representative, test = _export_data(data, model, names, run_dir)
    return export_model(
        model, path if path is not None else Path(run_dir) / "export", names, formats=formats,
        version=version, overwrite=overwrite, representative_data=representative,
        test_data=test,
    )
