"""Tests for tl_kit.evaluate.metrics and tl_kit.evaluate.report: metrics, scores, the
report's files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from _colour import NAMES, colour_data, colour_model
from PIL import Image

from tl_kit.errors import UserError
from tl_kit.evaluate import evaluate_model


def test_evaluate_model_metrics_and_files(tmp_path):
    model = colour_model()
    images, labels = colour_data()
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
    report = evaluate_model(colour_model(), colour_data(), NAMES, out_dir=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train_seconds"] == 12.5 and saved["val"] == {"accuracy": 0.5}
    assert saved["accuracy"] == report["accuracy"]


def test_evaluate_accepts_datasets_one_hot_and_tta():
    model = colour_model()
    images, labels = colour_data()
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




def test_classification_scores_from_probabilities():
    from tl_kit.evaluate import classification_scores

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]], "float32")
    labels = np.array([0, 1, 2, 2])
    scores = classification_scores(probs, labels, NAMES, top_k=9, num_confused=5)
    assert scores["top_k"] == 3 and scores["top_k_accuracy"] == 1.0  # k capped at 3 classes
    assert scores["accuracy"] == pytest.approx(0.75) and scores["num_samples"] == 4
    expected = -np.mean(np.log([0.7, 0.8, 0.4, 0.5]))
    assert scores["loss"] == pytest.approx(expected, rel=1e-5)
    assert scores["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert scores["most_confused"] == [{"true": "blue", "predicted": "red", "count": 1}]
    assert scores["per_class"]["blue"] == {"precision": 1.0, "recall": 0.5, "f1-score":
                                           pytest.approx(2 / 3), "support": 2}
    assert classification_scores(probs, labels, NAMES, top_k=1)["top_k_accuracy"] == 0.75
    json.dumps(scores)  # JSON-ready


def test_worst_predictions_keep_the_highest_losses_in_stable_order():
    from tl_kit.evaluate import WorstPredictions

    worst = WorstPredictions(2)
    assert len(worst) == 0 and worst.rows(NAMES) == []
    images = np.arange(4, dtype="float32").reshape(4, 1, 1, 1)
    probs = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    worst.add(images[:2], np.array([0, 1]), probs[:2], np.array([0.5, 2.0]))
    worst.add(images[2:], np.array([2, 1]), probs[2:], np.array([2.0, 1.0]))
    assert len(worst) == 2
    assert worst.images[:, 0, 0, 0].tolist() == [1.0, 2.0]  # ties keep the earlier one first
    assert [r["loss"] for r in worst.rows(NAMES)] == [2.0, 2.0]
    assert worst.rows(NAMES)[0] == {"true": "green", "predicted": "green", "probability": 1.0,
                                    "loss": 2.0}
    none = WorstPredictions(0)
    none.add(images, np.zeros(4, int), probs, np.ones(4))
    assert len(none) == 0


def test_merge_json_keeps_other_keys_and_report_dirs_never_repeat(tmp_path):
    from tl_kit.evaluate import merge_json, new_report_dir

    path = tmp_path / "metrics.json"
    merge_json(path, {"accuracy": 0.5})
    merge_json(path, {"loss": 1.0, "accuracy": 0.75})
    assert json.loads(path.read_text()) == {"accuracy": 0.75, "loss": 1.0}
    path.write_text("not json")
    merge_json(path, {"loss": 2.0})
    assert json.loads(path.read_text()) == {"loss": 2.0}

    first = new_report_dir(tmp_path / "evaluations", "/data/my photos/", "test")
    second = new_report_dir(tmp_path / "evaluations", "/data/my photos", "test")
    assert (first.name, second.name) == ("my_photos-test-1", "my_photos-test-2")
    assert new_report_dir(tmp_path / "evaluations", "tfds:cats/v2", "val").name == "cats_v2-val-1"
    assert first.is_dir() and second.is_dir()
