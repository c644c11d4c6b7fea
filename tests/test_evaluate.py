"""Tests for tl_kit.evaluate and tl_kit.predict: metrics, reports, plots, ensembles, predictions."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tl_kit.errors import UserError
from tl_kit.evaluate import ensemble, evaluate_model, plot_history
from tl_kit.predict import (
    format_predictions,
    load_for_inference,
    predict_images,
    save_for_inference,
)

NAMES = ["red", "green", "blue"]


def _colour_model(size: int = 8) -> keras.Model:
    """Predicts the dominant colour channel: logits = 0.05 * mean pixel per channel."""
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="colour")
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 0.05,
                                                np.zeros(3, "float32")])
    return model


def _colour_data(size: int = 8):
    """4 red (0), 4 green (1), 3 blue (2) and one blue image labelled red (the error)."""
    colours = [0] * 4 + [1] * 4 + [2] * 3 + [2]
    labels = np.array([0] * 4 + [1] * 4 + [2] * 3 + [0])
    images = np.zeros((len(colours), size, size, 3), "float32")
    for i, channel in enumerate(colours):
        images[i, ..., channel] = 100.0 + 10 * i
    return images, labels


def _conv_model(size: int, name: str, seed: int, channels: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def test_evaluate_model_metrics_and_files(tmp_path):
    model = _colour_model()
    images, labels = _colour_data()
    report = evaluate_model(model, (images, labels), NAMES, out_dir=tmp_path, top_k=2)

    probs = model.predict(images, verbose=0)
    expected_loss = -np.mean(np.log(probs[np.arange(len(labels)), labels]))
    assert report["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert report["accuracy"] == pytest.approx(11 / 12)
    assert report["top_k"] == 2 and report["num_samples"] == 12
    top2 = np.argsort(-probs, axis=-1)[:, :2]
    assert report["top_k_accuracy"] == pytest.approx((top2 == labels[:, None]).any(-1).mean())
    assert report["confusion_matrix"] == [[4, 0, 1], [0, 4, 0], [0, 0, 3]]
    assert report["most_confused"] == [{"true": "red", "predicted": "blue", "count": 1}]
    assert report["per_class"]["red"]["recall"] == pytest.approx(0.8)
    assert report["per_class"]["blue"]["precision"] == pytest.approx(0.75)
    assert report["per_class"]["green"]["f1-score"] == pytest.approx(1.0)
    # The worst prediction is the mislabelled blue image.
    assert report["worst"][0]["true"] == "red" and report["worst"][0]["predicted"] == "blue"
    losses = [w["loss"] for w in report["worst"]]
    assert losses == sorted(losses, reverse=True) and len(losses) == 12

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == report["accuracy"]
    rows = list(csv.reader(open(tmp_path / "confusion_matrix.csv")))
    assert rows[0] == ["true\\predicted", *NAMES]
    assert rows[1] == ["red", "4", "0", "1"]
    for name in ("confusion_matrix.png", "worst_predictions.png"):
        with Image.open(tmp_path / "plots" / name) as png:
            assert png.size[0] > 100


def test_evaluate_keeps_what_training_wrote_in_metrics_json(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"train_seconds": 12.5, "val": {"accuracy": 0.5}}))
    report = evaluate_model(_colour_model(), _colour_data(), NAMES, out_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train_seconds"] == 12.5 and saved["val"] == {"accuracy": 0.5}
    assert saved["accuracy"] == report["accuracy"]


def test_evaluate_accepts_datasets_one_hot_and_tta():
    model = _colour_model()
    images, labels = _colour_data()
    base = evaluate_model(model, (images, labels), NAMES, num_worst=0)
    one_hot = np.eye(3, dtype="float32")[labels]
    dataset = tf.data.Dataset.from_tensor_slices((images, one_hot)).batch(5)
    from_ds = evaluate_model(model, dataset, NAMES, num_worst=3)
    assert from_ds["loss"] == pytest.approx(base["loss"], rel=1e-6)
    assert from_ds["confusion_matrix"] == base["confusion_matrix"]
    assert from_ds["worst"][0]["loss"] == pytest.approx(max(w["loss"] for w in
                                                            evaluate_model(model, (images, labels), NAMES)["worst"]))
    # Images are uniform: TTA views change nothing.
    flip = evaluate_model(model, (images, labels), NAMES, tta="multicrop", num_worst=0)
    assert flip["loss"] == pytest.approx(base["loss"], rel=1e-4)
    with pytest.raises(UserError, match="class names"):
        evaluate_model(model, (images, labels), ["a", "b"])


def test_plot_history_writes_png(tmp_path):
    history = tmp_path / "history.csv"
    rows = ["stage,epoch,loss,accuracy,val_loss,val_accuracy,lr"]
    rows += [f"head,{e},{1 - 0.1 * e},{0.5 + 0.05 * e},{1.1 - 0.1 * e},{0.5 + 0.04 * e},0.001"
             for e in range(3)]
    rows += [f"finetune,{e},{0.6 - 0.1 * e},{0.7 + 0.05 * e},{0.7 - 0.1 * e},{0.6 + 0.04 * e},0.0001"
             for e in range(2)]
    history.write_text("\n".join(rows) + "\n")
    out = plot_history(history, tmp_path / "plots" / "history.png")
    with Image.open(out) as png:
        assert png.size[0] > 300
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, tmp_path / "h2.png")
    assert (tmp_path / "h2.png").stat().st_size > 0
    with pytest.raises(UserError, match="empty"):
        plot_history([], tmp_path / "h3.png")


def test_ensemble_of_different_sizes_averages_saves_and_loads(tmp_path):
    small, large = _conv_model(16, "net", 0), _conv_model(24, "net", 1)
    images = np.random.default_rng(0).uniform(0, 255, (4, 24, 24, 3)).astype("float32")
    both = ensemble([small, large])
    assert both.input_shape == (None, 24, 24, 3)
    p_small = small.predict(tf.image.resize(images, (16, 16)).numpy(), verbose=0)
    p_large = large.predict(images, verbose=0)
    got = both.predict(images, verbose=0)
    np.testing.assert_allclose(got, (p_small + p_large) / 2, atol=1e-6)

    weighted = ensemble([small, large], weights=[3, 1], name="weighted")
    np.testing.assert_allclose(weighted.predict(images, verbose=0),
                               0.75 * p_small + 0.25 * p_large, atol=1e-6)

    file = tmp_path / "ensemble.keras"
    weighted.save(file)
    loaded = keras.saving.load_model(file)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               weighted.predict(images, verbose=0), atol=1e-6)
    report = evaluate_model(loaded, (images, np.array([0, 1, 2, 0])), NAMES, top_k=1)
    assert report["num_samples"] == 4 and report["top_k"] == 1
    with pytest.raises(UserError, match="weights"):
        ensemble([small, large], weights=[1])


def test_predict_images_from_paths_arrays_and_pil(tmp_path):
    model = _colour_model()
    paths = []
    for name, rgb in (("r.png", (200, 0, 0)), ("g.jpg", (0, 200, 0)), ("b.bmp", (0, 0, 200))):
        Image.new("RGB", (20, 12), rgb).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    preds = predict_images(model, paths, NAMES, top_k=2)
    assert [p["top"][0][0] for p in preds] == NAMES
    assert [p["path"] for p in preds] == paths
    assert len(preds[0]["top"]) == 2 and preds[0]["top"][0][1] >= preds[0]["top"][1][1]
    assert sum(preds[0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)

    images, _ = _colour_data()
    from_arrays = predict_images(model, images[:2], NAMES, top_k=5)
    assert len(from_arrays[0]["top"]) == 3 and from_arrays[0]["path"] is None
    np.testing.assert_allclose(list(from_arrays[0]["probs"].values()),
                               model.predict(images[:1], verbose=0)[0], atol=1e-6)
    pil = predict_images(model, Image.new("RGB", (30, 30), (0, 0, 250)), NAMES, tta="flip")
    assert pil[0]["top"][0][0] == "blue"

    table = format_predictions(preds)
    assert "r.png" in table and "red" in table and len(table.splitlines()) == 4
    parsed = json.loads(format_predictions(preds, as_json=True))
    assert parsed[1]["top"][0]["class"] == "green"
    with pytest.raises(UserError, match="not found"):
        predict_images(model, [str(tmp_path / "missing.png")], NAMES)


def test_save_and_load_for_inference_from_run_dir(tmp_path):
    model = _conv_model(16, "net", 3)
    run = tmp_path / "run"
    save_for_inference(model, NAMES, run)
    assert json.loads((run / "class_names.json").read_text()) == NAMES
    loaded, names = load_for_inference(run)
    assert names == NAMES
    images = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)
    with pytest.raises(UserError, match="class names"):
        save_for_inference(model, ["a"], tmp_path / "bad")
    with pytest.raises(UserError, match="Received: path="):
        load_for_inference(tmp_path / "nothing_here")


# === Evaluating a run on new data (the run's records never change) ===

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
        learner.evaluate(_colour_data(32), split="test")
    after = _hashes(run)
    for name in ("manifest.json", "hygiene.csv", "hygiene.json", "config.toml", "history.csv"):
        assert after[name] == before[name], name
