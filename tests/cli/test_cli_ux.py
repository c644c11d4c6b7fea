"""A new user's first day: the errors and surprises of issue #16 (points 5-10).

Each test fails on the behaviour the issue reported: a one-class folder crashing after
training started, export folders only their owner could read, predict refusing folders,
``export --out FILE`` tracebacks, backbone typos answered with the whole catalogue, and
CLI messages naming Python arguments instead of the flags the user typed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _paths import ROOT, TEXTURES

from tl_kit.cli import main
from tl_kit.errors import UserError

TRAIN = ["train", "small", "--backbone", "lenet5", "--weights", "none", "--image-size", "32",
         "--quick"]  # fmt: skip


def _copy(dest: Path, classes=("brick", "grass"), per_class: int = 4) -> Path:
    for name in classes:
        (dest / name).mkdir(parents=True)
        for f in sorted((TEXTURES / name).glob("*.jpg"))[:per_class]:
            shutil.copy(f, dest / name / f.name)
    return dest


def _entry_point() -> list[str]:
    exe = Path(sys.executable).parent / "tl-kit"
    found = str(exe) if exe.exists() else shutil.which("tl-kit")
    assert found, "the tl-kit console script is not installed (pip install -e .)"
    return [found]


def _tl_kit(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed ``tl-kit`` entry point, run as the user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*_entry_point(), *argv], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tl-kit: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: file bytes' hash, size and mtime (what "as it was" means)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[p.relative_to(root).as_posix()] = (digest, st.st_size if p.is_file() else 0,
                                               st.st_mtime_ns if p.is_file() else 0)
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ux")
    return {
        "root": root,
        "two": _copy(root / "two"),
        "one": _copy(root / "one", classes=("brick",)),
        "empty": (root / "empty").mkdir() or root / "empty",
    }


@pytest.fixture(scope="module")
def run(folders):
    """A complete tiny run (LeNet-5, 32 px, one epoch) trained through the CLI."""
    path = folders["root"] / "run"
    assert main([*TRAIN, "--data", str(folders["two"]), "--out", str(path), "--json"]) == 0
    return path


# === 5. one class, empty folders: checked before training, no run directory left ===


def test_one_class_folder_exits_2_before_training_and_leaves_no_run_dir(folders):
    out = folders["root"] / "runs" / "one"
    proc = _tl_kit(*TRAIN, "--data", str(folders["one"]), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert "1 class (brick)" in line and "at least 2" in line
    assert not out.exists() and not out.parent.exists()  # nor the parent it would have made


def test_empty_folder_leaves_no_run_dir(folders, capsys):
    out = folders["root"] / "empty_run"
    assert main([*TRAIN, "--data", str(folders["empty"]), "--out", str(out)]) == 2
    assert "no class sub-folders" in capsys.readouterr().err
    assert not out.exists()


def test_learner_checks_the_classes_before_training(folders):
    from tl_kit.train import Learner

    out = folders["root"] / "lib_one"
    learner = Learner("lenet5", weights=None, image_size=32, run_dir=out, verbose=0,
                      tensorboard=False)
    with pytest.raises(UserError, match=r"1 class \(brick\).*Received: data="):
        learner.fit(str(folders["one"]))
    assert not out.exists()


def test_an_existing_run_is_left_exactly_as_it_was(folders, run):
    from tl_kit.train import Learner

    before = _tree(run)
    assert "model.keras" in before and "run.json" in before
    for overwrite in (False, True):  # overwrite=True must not clear it before the check
        learner = Learner("lenet5", weights=None, image_size=32, run_dir=run, verbose=0,
                          tensorboard=False, overwrite=overwrite)
        with pytest.raises(UserError):
            learner.fit(str(folders["one"]))
        assert _tree(run) == before
    # an unfinished run with other settings: the clash is reported, nothing is rewritten
    state = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**state, "status": "running"}))
    before = _tree(run)
    learner = Learner("lenet5", weights=None, image_size=32, run_dir=run, verbose=0,
                      tensorboard=False, seed=7)
    with pytest.raises(UserError, match="different settings"):
        learner.fit(str(folders["two"]))
    assert _tree(run) == before
    (run / "run.json").write_text(json.dumps(state))


# === 6. export folders honour the umask ===


def _tiny_model():
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_export_version_folder_honours_the_umask(tmp_path, umask, dir_mode, file_mode):
    from tl_kit.export import export_model

    old = os.umask(umask)
    try:
        report = export_model(_tiny_model(), tmp_path / "exports", ["a", "b"])
    finally:
        os.umask(old)
    version = Path(report["path"])
    assert version == tmp_path / "exports" / "1"
    entries = [version, *version.rglob("*")]
    assert any(p.name == "saved_model.pb" for p in entries)
    for p in entries:
        mode = p.stat().st_mode & 0o777
        assert mode == (dir_mode if p.is_dir() else file_mode), (p, oct(mode))


# === 8. export --out FILE: one line, the file untouched ===


def test_export_out_a_file_is_one_line_and_leaves_the_file(run, tmp_path):
    target = tmp_path / "some_file"
    target.write_text("keep me\n")
    proc = _tl_kit("export", str(run), "--out", str(target))
    assert proc.returncode == 2, proc.stderr
    assert "is a file, not a folder" in _one_line(proc.stderr)
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some_file"]


def test_export_model_under_a_file_is_a_user_error(tmp_path):
    from tl_kit.export import export_model

    (tmp_path / "f").write_text("x")
    for path in (tmp_path / "f", tmp_path / "f" / "deeper"):
        with pytest.raises(UserError, match=r"a file, not a folder.*Received: path="):
            export_model(_tiny_model(), path, ["a", "b"])
    assert (tmp_path / "f").read_text() == "x"


# === 9. a typo in a name: did you mean ...?, not the catalogue ===


def test_backbone_typo_suggests_the_closest_name_in_one_short_line():
    proc = _tl_kit("train", "small", "--data", str(TEXTURES), "--backbone", "resnt18")
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert "Unknown backbone 'resnt18'; did you mean resnet18? (tl-kit models lists them" in line
    assert "keras:convnextbase" not in line and len(line) < 250, line


def test_library_unknown_names_suggest_without_listing_everything():
    from tl_kit.analysis import summary
    from tl_kit.backbones import get_backbone
    from tl_kit.models.registry import build_model

    with pytest.raises(UserError, match=r"did you mean resnet18\? \(tl-kit models") as err:
        get_backbone("resnt18")
    assert "alexnet" not in str(err.value)
    with pytest.raises(UserError, match=r"did you mean keras:mobilenetv3small\?"):
        get_backbone("mobilenetv3smal")  # keras: names are matched without their prefix
    with pytest.raises(UserError, match=r"'vgg61'; did you mean vgg16 or vgg19\?") as err:
        build_model("vgg61")
    assert "alexnet" not in str(err.value)
    with pytest.raises(UserError, match=r"'resnt50'; did you mean resnet50\?.*Received: name="):
        summary("resnt50")
    with pytest.raises(UserError, match=r"^Unknown backbone 'zzzz' \(tl-kit models lists them"):
        get_backbone("zzzz")  # nothing close: no suggestion, still no list


def test_summary_typo_through_the_cli(capsys):
    assert main(["summary", "mobilenet_v3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and err.count("\n") == 1 and "keras:convnext" not in err


# === 7. predict: folders expanded, bad files reported per file, the rest predicted ===


@pytest.fixture
def photos(tmp_path):
    """A folder to predict: two JPEGs, a nested upper-case .JPG, a broken PNG, a text file."""
    root = tmp_path / "photos"
    (root / "b_sub").mkdir(parents=True)
    shutil.copy(TEXTURES / "brick" / "brick_000.jpg", root / "a.jpg")
    shutil.copy(TEXTURES / "grass" / "grass_000.jpg", root / "c.jpg")
    shutil.copy(TEXTURES / "gravel" / "gravel_000.jpg", root / "b_sub" / "G.JPG")
    (root / "b_sub" / "broken.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("not an image either")
    return root


def test_predict_a_folder_through_the_cli_reports_bad_files_and_predicts_the_rest(run, photos):
    proc = _tl_kit("predict", str(run), str(photos), "--json")
    assert proc.returncode == 0, proc.stderr
    preds = json.loads(proc.stdout)
    names = [Path(p["path"]).relative_to(photos).as_posix() for p in preds]
    assert names == ["a.jpg", "b_sub/G.JPG", "b_sub/broken.png", "c.jpg"]  # sorted, recursive
    broken = preds[2]
    assert broken["top"] == [] and "cannot identify image file" in broken["error"]
    for p in (preds[0], preds[1], preds[3]):
        assert "error" not in p and sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert "1 of 4 image(s) could not be read" in proc.stderr and "Traceback" not in proc.stderr

    proc = _tl_kit("predict", str(run), str(photos))  # the table shows the reason in the row
    assert proc.returncode == 0 and "broken.png" in proc.stdout and "not read:" in proc.stdout


def test_predict_exits_2_when_no_image_can_be_read(run, photos, capsys):
    status = main(["predict", str(run), str(photos / "b_sub" / "broken.png"),
                   str(photos / "missing.jpg")])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "None of the 2 image(s) could be read" in err
    (photos / "empty").mkdir()
    assert main(["predict", str(run), str(photos / "empty")]) == 2
    assert "holds no image files" in capsys.readouterr().err


def test_library_predict_expands_folders(run, photos):
    from tl_kit.predict import load_for_inference, predict_images, predict_run
    from tl_kit.train import Learner

    model, names = load_for_inference(run)
    by_path = predict_images(model, [photos / "a.jpg", photos / "c.jpg", photos / "b_sub"],
                             names)
    folder = predict_run(run, str(photos))
    assert [p["path"] for p in folder] == sorted(p["path"] for p in folder)
    assert len(folder) == 4 and [p.get("error") is not None for p in folder].count(True) == 1
    learner = Learner("lenet5", 2, class_names=names, weights=None, image_size=32, verbose=0,
                      tensorboard=False, run_dir=run)
    learner.model = model
    from_learner = learner.predict(photos / "b_sub")
    assert [Path(p["path"]).name for p in from_learner] == ["G.JPG", "broken.png"]
    assert from_learner[0]["probs"] == pytest.approx(by_path[2]["probs"], abs=1e-6)
    assert from_learner[1]["error"] and by_path[3]["error"] == from_learner[1]["error"]


# === 10. flags in CLI errors, warnings without source lines, --epochs 0, offline text ===


def test_cli_errors_name_the_flags_the_user_typed(run, capsys):
    status = main([*TRAIN, "--data", str(TEXTURES), "--out", str(run)])
    assert status == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and f"Received: --out {run}" in err
    assert "overwrite=True" not in err and "run_dir" not in err and "tl-kit train" not in err
    assert main(["predict", str(run), "x.jpg", "--top-k", "0"]) == 2
    err = capsys.readouterr().err
    assert "Received: --top-k 0" in err and "top_k" not in err
    assert main(["train", "small", "--data", str(TEXTURES), "--backbone", "vgg16",
                 "--image-size", "16"]) == 2  # fmt: skip
    assert "Received: --image-size 16x16" in capsys.readouterr().err
    # the library keeps Python's names
    from tl_kit.train import Learner

    with pytest.raises(UserError, match=r"pass overwrite=True to replace it\. Received: run_dir="):
        Learner("lenet5", weights=None, image_size=32, run_dir=run, verbose=0,
                tensorboard=False).fit(str(TEXTURES))


def test_flags_rewriting_keeps_plain_words_and_unknown_names():
    from tl_kit.errors import in_terms_of_flags

    flags = {"overwrite": "--overwrite", "run_dir": "--out", "data": "--data",
             "weights": "--weights", "formats": "--format"}
    text = ("The data 'd' clashes; choose another run_dir or pass overwrite=True; use "
            "weights=None. Received: run_dir='my runs/a', formats=['tflite', 'onnx'], seed=3")
    assert in_terms_of_flags(text, flags) == (
        "The data 'd' clashes; choose another --out or pass --overwrite; use --weights none. "
        "Received: --out 'my runs/a', --format tflite onnx, seed=3")


def test_epochs_0_is_rejected_before_anything_is_written(folders, capsys):
    out = folders["root"] / "zero"
    assert main([*TRAIN[:-1], "--epochs", "0", "--data", str(folders["two"]),
                 "--out", str(out)]) == 2  # fmt: skip
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert not out.exists()
    from tl_kit.recipes import Recipe, Stage
    from tl_kit.train import Learner

    learner = Learner("lenet5", weights=None, image_size=32, run_dir=out, verbose=0,
                      tensorboard=False, recipe=Recipe(name="none", stages=[Stage(epochs=0)]))
    with pytest.raises(UserError, match=r"0 epochs in all.*untrained"):
        learner.fit(str(folders["two"]))
    assert not out.exists()


def test_cli_warnings_show_the_message_only(folders, tmp_path):
    data = _copy(tmp_path / "dirty", per_class=3)
    (data / "grass" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    proc = _tl_kit(*TRAIN, "--data", str(data), "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "tl-kit: warning: Skipped 1 unreadable file(s)" in proc.stderr
    assert "broken.jpg" in proc.stderr
    assert "warnings.warn" not in proc.stderr and ".py:" not in proc.stderr, proc.stderr


def test_offline_weights_message_says_each_thing_once(tmp_path, monkeypatch, capsys):
    import tl_kit.weights as weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(weights, "_can_reach", lambda *a, **k: False)
    assert main(["weights", "fetch", "keras:mobilenetv3small"]) == 2
    err = capsys.readouterr().err
    folder = str(tmp_path / "keras" / "models")
    assert err.count(folder) == 1, err  # the file's path, not the path and then its folder
    assert err.count("network") == 1 and err.count("weights fetch") == 1, err
    assert "tl-kit weights fetch" in err and "weights=None" in err
