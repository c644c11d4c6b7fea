"""Tests for the tl-kit command line (in-process through main(), one real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tl_kit import cli
from tl_kit.cli import SUBCOMMANDS, Subcommand, main
from tl_kit.errors import TLKitError, UserError


def test_user_error_is_a_value_error():
    assert issubclass(UserError, ValueError) and issubclass(UserError, TLKitError)


def test_help_lists_commands_and_examples(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "models" in out and "summary" in out
    for cmd in SUBCOMMANDS:
        assert main([cmd.name, "--help"]) == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"tl-kit {cmd.name}" in out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["summary"]) == 2  # NAME missing
    assert main(["summary", "lenet5", "--include-top", "--no-top"]) == 2
    err = capsys.readouterr().err
    assert "usage: tl-kit" in err and "Traceback" not in err


def test_models_table_and_json(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "32x32x1" in out and "61,706" in out
    assert "138,357,544" in out and "Simonyan" in out

    assert main(["models", "vgg1*", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in entries} >= {"vgg16", "vgg19"}
    assert all(e["name"].startswith("vgg1") for e in entries)
    vgg16 = next(e for e in entries if e["name"] == "vgg16")
    assert vgg16["default_size"] == [224, 224, 3] and vgg16["params"] == 138_357_544
    assert vgg16["blocks"][0] == "block1_" and len(vgg16["blocks"]) == 5


def test_models_no_match_is_a_user_error(capsys):
    assert main(["models", "zz*"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tl-kit: error: No model matches 'zz*'")
    assert err.count("\n") == 1


def test_summary_table(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "(28, 28, 6)" in out and "(5, 5, 16)" in out
    assert "Total params: 61,706" in out
    assert "Multiply-adds (MACs): 416,520" in out


def test_summary_json_input_shape_and_no_top(capsys):
    assert main(["summary", "vgg16", "--no-top", "--input-shape", "64x64x3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input_shape"] == [64, 64, 3]
    assert d["layers"][-1]["output_shape"] == [2, 2, 512]
    assert d["totals"]["params"] == 14_714_688
    assert d["totals"]["macs"] == sum(row["macs"] for row in d["layers"]) > 0
    assert not any(row["name"] == "predictions" for row in d["layers"])


def test_summary_classes_and_saved_model_file(capsys, tmp_path):
    import keras

    assert main(["summary", "lenet5", "--classes", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layers"][-1]["output_shape"] == [3]

    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="c")(inp), name="saved")
    path = tmp_path / "m.keras"
    model.save(path)
    assert main(["summary", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "saved" and d["totals"]["macs"] == 14 * 14 * 4 * 27

    assert main(["summary", str(tmp_path / "missing.keras")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "no_such_net"], "Unknown model 'no_such_net'"),
        (["summary", "vgg16", "--no-top", "--input-shape", "16,16,3"], "at least 32x32"),
        (["summary", "lenet5", "--input-shape", "abc"], "Received: --input-shape abc"),
    ],
)
def test_summary_user_errors_one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("tl-kit: error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_traceback_flag_reraises():
    with pytest.raises(UserError):
        main(["--traceback", "summary", "no_such_net"])


def test_subcommand_table_is_extensible(monkeypatch, capsys):
    def add(p):
        p.add_argument("word")

    def run(args):
        if args.word == "bad":
            raise UserError("bad word. Received: word='bad'")
        print(args.word.upper())
        return 3

    monkeypatch.setattr(
        cli, "SUBCOMMANDS", [*SUBCOMMANDS, Subcommand("shout", "shout a word", add, run)]
    )
    assert main(["shout", "hi"]) == 3
    assert capsys.readouterr().out == "HI\n"
    assert main(["shout", "bad"]) == 2
    assert capsys.readouterr().err == "tl-kit: error: bad word. Received: word='bad'\n"


def _entry_point() -> list[str]:
    exe = Path(sys.executable).parent / "tl-kit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("tl-kit")
    assert found, "the tl-kit console script is not installed (pip install -e .)"
    return [found]


def test_installed_entry_point_unknown_model_exits_2_without_traceback():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [*_entry_point(), "summary", "definitely_not_a_model"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "tl-kit: error: Unknown model 'definitely_not_a_model'" in proc.stderr
    # only the error: TensorFlow's native start-up banner is filtered out
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tl-kit: error: Unknown model"), proc.stderr


def test_tf_banner_filter_keeps_every_other_line():
    from tl_kit.cli import without_tf_banner

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n"
            "W0000 00:00:1.0 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries.\n"
            "I0000 00:00:1.0 1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
            "available CPU instructions in performance-critical operations.\n"
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild ...\n")
    assert without_tf_banner(text) == "W0000 00:00:1.0 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries.\n"


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tl_kit.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['summary', '--help']) == 0\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"


def test_cache_commands_do_not_import_tensorflow(tmp_path):
    """``tl-kit cache`` never touches TensorFlow, so it answers without its import; a
    command that does (``summary``) still imports it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    code = (
        "import sys\n"
        "from tl_kit.cli import main\n"
        "assert main(['cache', 'list']) == 0\n"
        "assert main(['cache', 'clear', '--all', '--dry-run']) == 0\n"
        f"assert main(['cache', 'clear', {str(folder)!r}]) == 2\n"  # a user error: no entry
        "print('before:', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
        "assert main(['summary', 'lenet5']) == 0\n"
        "print('after:', 'tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, TL_KIT_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "before: False False" in lines and lines[-1] == "after: True", proc.stdout
    assert "No entry in the hygiene cache" in proc.stderr
