"""The tl-kit workflow commands, in-process through main(): train -> evaluate -> predict ->
export, plus weights, augment-preview, demo's arguments and the one-line user errors.

One tiny run (LeNet-5 at 32x32 on a copy of data/textures, one epoch per stage) is
trained once per module and shared by the tests that read a run directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _paths import TEXTURES

from tl_kit.cli import SUBCOMMANDS, main

PER_CLASS = 12


def _copy_textures(dest: Path, per_class: int = PER_CLASS) -> Path:
    for cls in sorted(p for p in TEXTURES.iterdir() if p.is_dir()):
        (dest / cls.name).mkdir(parents=True)
        for f in sorted(cls.glob("*.jpg"))[:per_class]:
            shutil.copy(f, dest / cls.name / f.name)
    return dest


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {"root": root, "data": _copy_textures(root / "textures")}


@pytest.fixture(scope="module")
def trained(workspace):
    """`tl-kit train small --backbone lenet5 --weights none --image-size 32 --quick --json`."""
    import contextlib
    import io

    run = workspace["root"] / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main([
            "train", "small", "--data", str(workspace["data"]), "--backbone", "lenet5",
            "--weights", "none", "--image-size", "32", "--quick", "--out", str(run), "--json",
        ])  # fmt: skip
    assert status == 0
    summary = json.loads(out.getvalue())
    return {**workspace, "run": run, "summary": summary}


def _one_line_error(capsys, status: int, *needles: str) -> str:
    captured = capsys.readouterr()
    assert status == 2
    err = captured.err
    assert err.startswith("tl-kit: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


# === help ===


def test_every_workflow_command_has_help_with_examples(capsys):
    names = {c.name for c in SUBCOMMANDS}
    assert {"train", "evaluate", "predict", "export", "weights", "augment-preview", "demo"} <= names
    for name in ("train", "evaluate", "predict", "export", "weights", "augment-preview", "demo"):
        assert main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"tl-kit {name} " in out


# === train ===


def test_train_writes_a_run_directory(trained):
    run, summary = trained["run"], trained["summary"]
    assert summary["run_dir"] == str(run)
    assert summary["backbone"] == "lenet5" and summary["weights"] is None
    assert summary["recipe"] == "small"
    assert summary["class_names"] == ["brick", "grass", "gravel"]
    assert summary["image_size"] == [32, 32]
    assert [row["stage"] for row in summary["history"]] == ["head"]  # --quick: 1 epoch
    for name in ("model.keras", "config.toml", "history.csv", "manifest.json"):
        assert (run / name).is_file(), name
    assert "val" in summary["metrics"]
    log = (run / "train.log").read_text()  # the load's choices, stated: in memory, and the index
    assert "data pipeline: memory: " in log and "CACHE_LIMIT_BYTES" in log
    assert "hygiene index: " in log and "tl_kit_test_cache_" in log and "pixels kept in" in log


def test_a_second_training_run_on_the_same_folder_checks_nothing_again(workspace, tmp_path, capsys):
    """A new run directory, the same unchanged folder: every verdict and the pixels come from
    the shared cache (the first run's), and the log says so."""
    for out in ("first", "again"):
        status = main(["train", "small", "--data", str(workspace["data"]), "--backbone", "lenet5",
                       "--weights", "none", "--image-size", "32", "--quick", "--out", str(tmp_path / out)])
        assert status == 0
    capsys.readouterr()
    assert " 0 of " in (tmp_path / "first" / "train.log").read_text()
    log = (tmp_path / "again" / "train.log").read_text()
    n = sum(1 for p in workspace["data"].rglob("*.jpg"))
    assert f"{n} of {n} files known, not checked again; pixels mapped from" in log, log
    assert (tmp_path / "again" / "hygiene.csv").is_file()  # the run still records its hygiene
    status = main(["train", "small", "--data", str(workspace["data"]), "--backbone", "lenet5",
                   "--weights", "none", "--image-size", "32", "--quick", "--pipeline", "stream",
                   "--out", str(tmp_path / "streamed")])
    assert status == 0
    capsys.readouterr()
    log = (tmp_path / "streamed" / "train.log").read_text()
    assert "data pipeline: stream: pipeline='stream' asked" in log, log
    assert f"{n} of {n} files known, not checked again" in log and "pixels" not in log.split("hygiene index")[1].split("\n")[0]


def test_train_user_errors_are_one_line(tmp_path, workspace, capsys):
    data = str(workspace["data"])
    status = main(["train", "small", "--data", str(tmp_path / "missing"), "--backbone", "lenet5"])
    _one_line_error(capsys, status, "Folder not found", "missing")

    status = main(["train", "small", "--data", data, "--backbone", "vgg61"])
    _one_line_error(capsys, status, "Unknown backbone 'vgg61'", "Received: --backbone vgg61")

    status = main(["train", "small", "--data", data, "--backbone", "vgg16", "--image-size", "16"])
    _one_line_error(capsys, status, "at least 32x32", "Received: --image-size 16x16")

    status = main(["train", str(tmp_path / "nope.toml"), "--data", data, "--backbone", "lenet5"])
    _one_line_error(capsys, status, "Recipe not found")

    status = main(["train", "small", "--data", data])
    _one_line_error(capsys, status, "--backbone")

    status = main(["train", "auto", "--data", data, "--backbone", "lenet5", "--quick"])
    _one_line_error(capsys, status, "named recipe")

    status = main(["train", "small", "--data", data, "--backbone", "lenet5", "--epochs-scale", "0"])
    _one_line_error(capsys, status, "--epochs-scale must be positive", "Received: --epochs-scale 0.0")


def test_budget_flags_apply_to_every_stage():
    """What --epochs-scale / --batch-size / --quick do to a recipe (Recipe.with_budget)."""
    from tl_kit.recipes import builtin_recipe

    medium = builtin_recipe("medium")
    scaled = medium.with_budget(epochs_scale=0.5, batch_size=8)
    assert [s.epochs for s in scaled.stages] == [
        max(1, round(s.epochs * 0.5)) for s in medium.stages
    ]
    assert {s.batch_size for s in scaled.stages} == {8}
    assert [s.epochs for s in medium.with_budget(quick=True).stages] == [1, 1]


def test_quick_reaches_the_trained_recipe(trained):
    """`train small --quick`: the run's resolved recipe (config.toml) has 1 epoch per stage
    and no augmented feature copies."""
    import tomllib

    from tl_kit.recipes import Recipe, builtin_recipe

    recipe = Recipe.from_dict(tomllib.loads((trained["run"] / "config.toml").read_text())["recipe"])
    assert builtin_recipe("small").stages[0].epochs > 1
    assert [(s.epochs, s.cache_copies) for s in recipe.stages] == [(1, 0)]


# === evaluate / predict / export on the trained run ===


def test_evaluate_json_and_table(trained, capsys):
    status = main(["evaluate", str(trained["run"]), "--data", str(trained["data"]), "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["class_names"] == ["brick", "grass", "gravel"]
    # The run's manifest decides the split: the validation images of training.
    manifest = json.loads((trained["run"] / "manifest.json").read_text())
    assert report["num_samples"] == len(manifest["splits"]["val"])
    assert Path(report["files"]["confusion_matrix_png"]).is_file()

    status = main(["evaluate", str(trained["run"]), "--data", str(trained["data"]),
                   "--tta", "flip", "--split", "train"])  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "per class" in out and "brick" in out


def test_evaluate_user_errors(trained, tmp_path, capsys):
    status = main(["evaluate", str(trained["run"]), "--data", str(tmp_path / "none")])
    _one_line_error(capsys, status, "Folder not found")
    status = main(["evaluate", str(tmp_path / "norun"), "--data", str(trained["data"])])
    _one_line_error(capsys, status, "norun")


def test_predict_table_and_json(trained, capsys):
    images = sorted((trained["data"] / "grass").glob("*.jpg"))[:2]
    status = main(["predict", str(trained["run"]), *map(str, images), "--top-k", "2", "--json"])
    assert status == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in preds] == [str(i) for i in images]
    for p in preds:
        assert len(p["top"]) == 2
        assert sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["top"][0]["probability"] >= p["top"][1]["probability"]

    status = main(["predict", str(trained["run"]), str(images[0]), "--tta", "multicrop"])
    assert status == 0
    out = capsys.readouterr().out
    assert images[0].name in out and "top 1" in out

    status = main(["predict", str(trained["run"]), str(trained["root"] / "missing.jpg")])
    _one_line_error(capsys, status, "missing.jpg")


def test_export_saved_model_versions_and_overwrite(trained, tmp_path, capsys):
    out = tmp_path / "exports"
    status = main(["export", str(trained["run"]), "--out", str(out), "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1 and (out / "1" / "saved_model.pb").is_file()
    assert (out / "1" / "labels.txt").read_text().split() == ["brick", "grass", "gravel"]

    # No silent overwrite: a second export is version 2; --overwrite replaces the newest.
    assert main(["export", str(trained["run"]), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert main(["export", str(trained["run"]), "--out", str(out), "--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["1", "2"]
    status = main(["export", str(trained["run"]), "--out", str(out), "--version", "1"])
    _one_line_error(capsys, status, "already exists", "overwrite")

    # The export predicts like the run directory.
    img = str(sorted((trained["data"] / "brick").glob("*.jpg"))[0])
    assert main(["predict", str(out), img, "--json"]) == 0
    from_export = json.loads(capsys.readouterr().out)[0]["probs"]
    assert main(["predict", str(trained["run"]), img, "--json"]) == 0
    from_run = json.loads(capsys.readouterr().out)[0]["probs"]
    for name, p in from_run.items():
        assert from_export[name] == pytest.approx(p, abs=1e-4)


def test_export_tflite_needs_data(trained, tmp_path, capsys):
    status = main(["export", str(trained["run"]), "--out", str(tmp_path / "e"),
                   "--format", "tflite"])  # fmt: skip
    _one_line_error(capsys, status, "--data")
    assert not (tmp_path / "e" / "1").exists()


# === weights, augment-preview, demo ===


def test_weights_list_reports_cache_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cached = tmp_path / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert main(["weights", "list", "vgg16", "lenet5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cache_dir"] == str(tmp_path / "keras" / "models")
    rows = {e["backbone"]: e for e in out["backbones"]}
    assert rows["vgg16"]["cached"] is True and rows["vgg16"]["file"] == str(cached)
    assert rows["lenet5"]["imagenet"] is False and rows["lenet5"]["cached"] is False

    status = main(["weights", "fetch", "no_such_net"])
    _one_line_error(capsys, status, "Unknown backbone 'no_such_net'")
    status = main(["weights", "fetch"])
    _one_line_error(capsys, status, "at least one backbone")


def test_weights_fetch_offline_is_one_line(tmp_path, monkeypatch, capsys):
    import tl_kit.weights as weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(weights, "_can_reach", lambda *a, **k: False)  # never touch the network
    status = main(["weights", "fetch", "keras:mobilenetv3small"])
    _one_line_error(capsys, status, "not in the Keras cache", str(tmp_path / "keras"))


def test_cache_list_and_clear(tmp_path, monkeypatch, capsys):
    import warnings

    from tl_kit.data import load_data

    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(tmp_path / "cache"))
    data = _copy_textures(tmp_path / "textures")
    assert main(["cache", "list"]) == 0
    assert "is empty" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_data(data, image_size=(16, 16), validation_split=0.25, seed=1)
    assert main(["cache", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["cache_dir"] == str(tmp_path / "cache" / "hygiene")
    (entry,) = listed["folders"]
    assert entry["folder"] == str(data.resolve()) and entry["exists"] is True
    assert [p["key"] for p in entry["pixels"]] == ["16x16-stretch-r3"]
    assert main(["cache", "list"]) == 0
    table = capsys.readouterr().out
    assert str(data.resolve()) in table and "16x16-stretch-r3" in table and "just now" in table

    assert main(["cache", "clear", str(data), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 2 files" in out and Path(entry["index"]).is_file()
    assert main(["cache", "clear", str(data), "--json"]) == 0
    cleared = json.loads(capsys.readouterr().out)
    assert cleared["bytes"] == entry["bytes"] and not Path(entry["index"]).exists()
    assert sorted(f["file"] for f in cleared["files"]) == sorted(
        [entry["index"], entry["pixels"][0]["file"]])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_data(data, image_size=(16, 16), validation_split=0.25, seed=1)
    where = tmp_path / "cache" / "hygiene"
    busy = where / ".0123456789abcdef-c3-8x8-stretch-r3.npy.otherhost-7.tmp.npy"
    busy.write_bytes(b"x" * 10)
    assert main(["cache", "list"]) == 0
    assert "being written by otherhost pid 7" in capsys.readouterr().out
    assert main(["cache", "clear", "--older-than", "1"]) == 0  # used just now: kept
    assert "removed 0 files" in capsys.readouterr().out
    assert main(["cache", "clear", "--gone", "--pixels", "--json"]) == 0  # nothing is gone
    assert json.loads(capsys.readouterr().out)["files"] == []
    assert main(["cache", "clear", str(data), "--pixels"]) == 0
    assert "removed 1 file," in capsys.readouterr().out
    [index] = where.glob("*-c3.json")
    assert index.is_file() and not list(where.glob("[0-9a-f]*-c3-*.npy"))
    shutil.rmtree(data)
    assert main(["cache", "clear", "--gone"]) == 0
    assert f"removed {index}" in capsys.readouterr().out and not index.exists()
    assert busy.exists()  # busy: never removed

    _one_line_error(capsys, main(["cache", "clear"]), "Say what to clear", "--all")
    _one_line_error(capsys, main(["cache", "clear", str(data)]), "No entry", str(data))
    _one_line_error(capsys, main(["cache", "clear", "--older-than", "-3"]),
                    "0 or more", "--older-than")
    _one_line_error(capsys, main(["cache", "list", "--all"]), "cache clear")
    monkeypatch.setenv("TL_KIT_CACHE_DIR", "")
    assert main(["cache", "list"]) == 0
    assert "turned off" in capsys.readouterr().out
    _one_line_error(capsys, main(["cache", "clear", "--all"]), "turned off", "TL_KIT_CACHE_DIR")
    assert main(["cache", "purge"]) == 2  # argparse's usage error
    assert "invalid choice: 'purge'" in capsys.readouterr().err


def test_augment_preview_writes_a_png(workspace, tmp_path, capsys):
    out = tmp_path / "preview.png"
    status = main(["augment-preview", "--data", str(workspace["data"]), "--policy", "strong",
                   "--out", str(out), "-n", "4", "--image-size", "32"])  # fmt: skip
    assert status == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out

    status = main(["augment-preview", "--data", str(workspace["data"]), "--policy", "wild"])
    _one_line_error(capsys, status, "Unknown augmentation policy 'wild'")
    status = main(["augment-preview", "--data", str(tmp_path / "none")])
    _one_line_error(capsys, status, "Folder not found")


def test_demo_passes_its_options_to_run_demo(tmp_path, monkeypatch, capsys):
    import tl_kit.demo as demo

    calls = {}

    def fake_run_demo(**kwargs):
        calls.update(kwargs)
        return {"rows": [{"regime": "small", "accuracy": 0.9}], "table": "TABLE",
                "findings": ["head-only helped"]}  # fmt: skip

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert main(["demo", "--quick", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    # run_demo prints the cells, table and findings itself (verbose=1); the CLI adds where
    # the results are and does not print the table a second time.
    assert calls["verbose"] == 1 and out.count("TABLE") == 0
    assert f"results: {tmp_path / 'd'}" in out
    assert calls["out_dir"] == str(tmp_path / "d") and calls["quick"] is True
    assert main(["demo", "--json", "--out", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["regime"] == "small"
    assert calls["quick"] is False


def test_train_table_rows_say_sizes_and_checkpoints_in_words():
    from tl_kit.cli.train import metric_rows

    rows = metric_rows({"val": {"accuracy": 0.875, "loss": 0.4}, "run_dir_bytes": 3 * 2**20 + 2**19,
                        "checkpoints": {"writes": 4, "seconds": 0.234}})
    assert rows[0][0] == "val" and "accuracy 0.875" in rows[0][1]
    assert rows[1] == ("run directory size", "3.5 MiB")
    assert rows[2] == ("checkpoints", "4 written in 0.2 s")
