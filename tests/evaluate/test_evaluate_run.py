"""Tests for tl_kit.evaluate.run and tl_kit.evaluate.sources: evaluating a run on new data,
its own data and split layouts; the run's records never change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _colour import colour_data
from PIL import Image

from tl_kit.errors import UserError

COLOURS = {"blue": (20, 40, 210), "red": (210, 30, 20)}


def _photo_folder(root, counts: dict[str, int], prefix: str = "", seed: int = 0):
    """JPEG photos of two colours, ``counts`` per class, named ``<prefix><i>.jpg``."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 20, (36, 40, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{prefix}{i}.jpg", quality=90)
    return root


def _hashes(folder) -> dict[str, str]:
    import hashlib
    from pathlib import Path

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run trained on a flat folder of 10 + 10 photos (validation split 0.2)."""
    import warnings

    import tl_kit
    from tl_kit.train import scratch_recipe

    root = tmp_path_factory.mktemp("eval_run")
    photos = _photo_folder(root / "photos", {"blue": 10, "red": 10})
    learner = tl_kit.finetune(backbone="lenet5", weights=None, image_size=32, channels=3,
                              run_dir=root / "run", verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner.fit(str(photos), recipe=scratch_recipe(epochs=1, batch_size=8))
    return {"root": root, "photos": photos, "run": root / "run", "learner": learner}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_evaluate_new_folder_scores_all_of_it_and_changes_no_training_record(trained_run, tmp_path):
    from tl_kit.evaluate import evaluate_run
    from tl_kit.export import export_run

    run = trained_run["run"]
    manifest = json.loads((run / "manifest.json").read_text())
    val_names = {rel.split("/")[-1] for rel in manifest["splits"]["val"]}
    # New photos, some named like the run's validation files (the bug matched names).
    new = _photo_folder(tmp_path / "new", {"blue": 6, "red": 5}, seed=7)
    before = _hashes(run)
    report = evaluate_run(run, new)
    assert report["num_samples"] == 11  # all of it, not the manifest's matching names
    assert report["evaluated"]["split"] == "train" and "all 11 images" in report["evaluated"]["how"]
    assert val_names & {p.name for p in new.rglob("*.jpg")}  # the names did collide
    second = evaluate_run(run, new)
    first_dir, second_dir = report["files"]["report_dir"], second["files"]["report_dir"]
    assert first_dir != second_dir  # two evaluations never clobber each other
    for folder in (first_dir, second_dir):
        assert folder.startswith(str(run / "evaluations" / "new-train-"))
    saved = json.loads((run / "evaluations" / "new-train-1" / "metrics.json").read_text())
    assert saved["num_samples"] == 11 and saved["evaluated"]["data"] == str(new)
    hygiene = json.loads((run / "evaluations" / "new-train-1" / "hygiene.json").read_text())
    assert hygiene["files"] == 11
    for name in ("confusion_matrix.csv", "plots/confusion_matrix.png"):
        assert (run / "evaluations" / "new-train-1" / name).is_file()
    # export --data reads the run's manifest but writes nothing into the run
    export_run(run, tmp_path / "exp", formats=("saved_model",), data=str(trained_run["photos"]))
    after = _hashes(run)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k.startswith("evaluations/") for k in changed), sorted(changed)
    assert set(before) <= set(after)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_evaluate_own_data_uses_the_manifest_read_only(trained_run):
    from tl_kit.cli import main
    from tl_kit.evaluate import evaluate_run

    run, photos = trained_run["run"], trained_run["photos"]
    manifest = json.loads((run / "manifest.json").read_text())
    before = _hashes(run)
    _photo_folder(photos, {"red": 1}, prefix="added_", seed=3)  # a file added since training
    try:
        report = evaluate_run(run, photos)  # no split: test, else val of the manifest
        assert report["num_samples"] == len(manifest["splits"]["val"])
        assert report["evaluated"]["split"] == "val" and "manifest" in report["evaluated"]["how"]
        train = evaluate_run(run, photos, split="train")
        assert train["num_samples"] >= len(manifest["splits"]["train"])
        assert main(["evaluate", str(run), "--json"]) == 0  # no --data: the run's own data
    finally:
        (photos / "red" / "added_0.jpg").unlink()
    after = _hashes(run)
    assert json.loads((run / "manifest.json").read_text()) == manifest
    def training_records(hashes):
        return {k: v for k, v in hashes.items() if not k.startswith("evaluations/")}

    assert training_records(after) == training_records(before)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_evaluate_split_layout_and_flat_folders(trained_run, tmp_path):
    from tl_kit.evaluate import evaluate_run

    run, learner = trained_run["run"], trained_run["learner"]
    split = tmp_path / "photos"
    _photo_folder(split / "train", {"blue": 4, "red": 4}, seed=1)
    _photo_folder(split / "test", {"blue": 3, "red": 2}, seed=2)
    report = evaluate_run(run, split)
    assert report["num_samples"] == 5 and report["evaluated"]["split"] == "test"
    assert "photos-test-" in report["files"]["report_dir"]
    assert evaluate_run(run, split, split="train")["num_samples"] == 8
    with pytest.raises(UserError, match="no 'val' split"):
        evaluate_run(run, split, split="val")
    flat = _photo_folder(tmp_path / "flat", {"red": 3}, seed=4)  # one class of two: relabelled
    assert evaluate_run(run, flat)["per_class"]["red"]["support"] == 3
    with pytest.raises(UserError, match="leave the split out"):
        evaluate_run(run, flat, split="test")

    # Learner.evaluate honours split (it used to score the training images)
    before = _hashes(run)
    assert learner.evaluate(str(split), split="test")["num_samples"] == 5
    assert learner.evaluate(str(split), split="train")["num_samples"] == 8
    assert learner.evaluate(str(flat))["num_samples"] == 3
    with pytest.raises(UserError, match="leave the split out"):
        learner.evaluate(str(flat), split="test")
    own = learner.evaluate(str(trained_run["photos"]), split="val")
    manifest = json.loads((run / "manifest.json").read_text())
    assert own["num_samples"] == len(manifest["splits"]["val"])
    with pytest.raises(UserError, match="evaluated whole"):
        learner.evaluate(colour_data(32), split="test")
    after = _hashes(run)
    for name in ("manifest.json", "hygiene.csv", "hygiene.json", "config.toml", "history.csv"):
        assert after[name] == before[name], name
