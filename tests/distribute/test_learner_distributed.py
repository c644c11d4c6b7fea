"""The Learner under tf.distribute: two logical CPUs (MirroredStrategy) and two worker
processes on 127.0.0.1 (MultiWorkerMirroredStrategy from TF_CONFIG).

Devices and MultiWorkerMirroredStrategy must be configured before TensorFlow starts, so
each scenario runs tests/distribute/_dist_worker.py (modes ``learner_mirrored`` and
``learner_worker``) in a fresh interpreter.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _subproc import communicate_all, free_port, subprocess_env

WORKER = Path(__file__).with_name("_dist_worker.py")


# === Tests ===


def test_learner_on_two_cpu_replicas_matches_one_device(tmp_path):
    """Same global batch (16), fixed data order, no dropout: the final weights of a
    head-cached stage + a full SGD stage agree within 1e-5 (abs; float32 sums in another order)."""
    out = tmp_path / "mirrored.json"
    proc = subprocess.run([sys.executable, str(WORKER), "learner_mirrored", str(out), str(tmp_path / "runs")],
                          env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["replicas"] == {"one": 1, "two": 2}
    assert report["max_diff"] < 1e-5
    for name in ("one", "two"):
        assert (tmp_path / "runs" / name / "model.keras").is_file()


def test_two_workers_run_a_recipe_and_only_the_chief_writes_the_run_dir(tmp_path):
    import tomllib

    run = tmp_path / "run"
    procs = _start_workers(tmp_path, run, "w")
    logs = communicate_all(procs, timeout=150)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(s[-2500:] for s in logs)
    chief, other = (json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2))
    assert chief["mwms"] and other["mwms"]
    assert chief["replicas"] == 2
    assert chief["history"] == other["history"] == [["head", 1], ["all", 1], ["all", 2]]
    assert abs(chief["kernel_sum"] - other["kernel_sum"]) < 1e-5  # one model, in sync
    # the chief's run directory is complete
    assert Path(chief["out"]) == run
    for name in ("config.toml", "history.csv", "metrics.json", "model.keras", "run.json",
                 "manifest.json", "train.log"):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert tomllib.loads((run / "config.toml").read_text())["run"]["replicas"] == 2
    assert (run / "checkpoints" / "2_all" / "state.json").is_file()
    assert (run / "checkpoints" / "2_all.weights.h5").is_file()
    assert len((run / "history.csv").read_text().splitlines()) == 4
    # the worker wrote to its own temp folder, never into the run directory
    assert Path(other["out"]).is_relative_to(tmp_path / "tmp1")
    assert "model.keras" in other["out_files"]
    assert (run / "train.log").read_text().count("run directory:") == 1
    assert not any(p.is_relative_to(run) for p in (tmp_path / "tmp1").rglob("*"))
    assert "Epoch 2/2" in logs[0] and "Epoch 2/2" not in logs[1]  # progress: chief only


def _colour_folder(root: Path, per_class: int = 21) -> Path:
    """Two classes of 32 px RGB PNGs, mostly dark or mostly bright (every 4th image of each
    class looks like the other: the loss stays well above 0, so the weights keep moving)."""
    import numpy as np
    from PIL import Image, PngImagePlugin

    rng = np.random.default_rng(0)
    ranges = ((0, 110), (145, 255))
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            lo, hi = ranges[c if i % 4 else 1 - c]
            pixels = rng.integers(lo, hi, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i:02d}.png")
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "not plain: Pillow's header is read")  # then "ok", decoded by TF ops
    Image.fromarray(rng.integers(0, 110, size=(32, 32, 3), dtype=np.uint8)).save(
        root / "class0" / "zz_text.png", pnginfo=text)
    Image.fromarray(rng.integers(0, 110, size=(32, 32, 4), dtype=np.uint8), "RGBA").save(
        root / "class0" / "zz_alpha.png")  # converted by Pillow: a verdict with a note
    (root / "class1" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # skipped
    return root


def test_two_workers_each_read_only_their_own_files(tmp_path):
    """MultiWorkerMirroredStrategy over a streamed folder: a cached-feature head stage
    (imprinted from both workers' features) and a full stage of 2 epochs. The hygiene scan
    is shared: each plain file is checked by exactly one worker, and both get every verdict.
    Every training file is decoded by exactly one worker, once per pass (feature cache + 2
    epochs); the non-chief decodes only its validation files; the two models stay identical."""
    folder = _colour_folder(tmp_path / "photos")
    run = tmp_path / "run"
    procs = _start_workers(tmp_path, run, "files", str(folder), mode="learner_worker_files")
    logs = communicate_all(procs, timeout=200)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(s[-2500:] for s in logs)
    chief, other = (json.loads((tmp_path / f"files{i}.json").read_text()) for i in range(2))
    assert chief["mwms"] and other["mwms"]
    assert chief["train"] == other["train"] and chief["val"] == other["val"]  # one split, both workers
    # the scan: every file checked once in all, those whose verdict is not a plain "ok" by
    # both (its reason and notes are each worker's own); the same verdicts on both
    assert chief["hygiene"] == other["hygiene"]
    verdicts = {Path(p).name: (status, decoder) for p, status, _, decoder in chief["hygiene"]}
    assert verdicts["zz_broken.png"] == ("skipped", "") and verdicts["zz_text.png"] == ("ok", "tf")
    assert verdicts["zz_alpha.png"] == ("ok", "pil")
    files = [p for p, *_ in chief["hygiene"]]
    both = {p for p, status, reason, decoder in chief["hygiene"] if (status, reason, decoder) != ("ok", "", "tf")}
    assert {Path(p).name for p in both} == {"zz_broken.png", "zz_alpha.png"}
    assert Counter(chief["checked"] + other["checked"]) == Counter(files) + Counter(both)
    for worker, report in enumerate((chief, other)):
        assert set(report["checked"]) - both == set(files[worker::2]) - both  # its own share only
    train, val = chief["train"], chief["val"]
    assert len(train) >= 30 and len(val) >= 4
    shards = [set(train[i::2]) for i in range(2)]
    val_shards = [set(val[i::2]) for i in range(2)]
    for worker, report in enumerate((chief, other)):
        reads = Counter(report["reads"])
        read_train = {p for p in reads if p in set(train)}
        assert read_train == shards[worker], f"worker {worker} read other files"
        assert {reads[p] for p in read_train} == {3}, "each of its files once per pass"
    other_val = {p for p in other["reads"] if p in set(val)}
    assert other_val == val_shards[1]  # and the chief decodes the rest (plus all of val once, at the end)
    assert val_shards[0] <= set(chief["reads"])
    assert chief["history"] == other["history"] == [["head", 1], ["all", 1], ["all", 2]]
    assert abs(chief["kernel_sum"] - other["kernel_sum"]) < 1e-5  # one model, in sync
    assert abs(chief["conv_sum"] - other["conv_sum"]) < 1e-5
    log = (run / "train.log").read_text()
    assert f"hygiene scan shared over 2 workers: worker 0 checked {len(chief['checked'])} of {len(files)}" in log
    assert f"file-level sharding over 2 workers: worker 0 reads train {len(shards[0])} of {len(train)}" in log
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def _start_workers(tmp_path: Path, run: Path, tag: str, *extra: str, mode: str = "learner_worker",
                   **env: str) -> list[subprocess.Popen]:
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        tmp = tmp_path / f"tmp{i}"  # the same TMPDIR on restart: a worker finds its own files
        tmp.mkdir(exist_ok=True)
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), mode, str(tmp_path / f"{tag}{i}.json"), str(run), *extra],
            env=subprocess_env(TF_CONFIG=tf_config, TMPDIR=str(tmp), **env), cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def test_two_workers_killed_mid_stage_resume_together(tmp_path):
    """SIGKILL both workers after the chief finished epoch 1 of stage 2. A worker restarted
    without its own files makes every worker stop with a clear message (not a hang), the
    chief's run directory untouched; the same command with the files back resumes both at
    the next epoch (restored from the chief's checkpoint), in sync, each epoch once."""
    run = tmp_path / "run"
    state = run / "checkpoints" / "2_all" / "state.json"
    procs = _start_workers(tmp_path, run, "killed", "3", SLOW_EPOCHS="2")
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            if state.is_file() and json.loads(state.read_text())["epochs_done"] >= 1:
                break
            time.sleep(0.1)
        alive = [p.poll() is None for p in procs]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
    finally:
        logs = communicate_all(procs, timeout=30)
    assert alive == [True, True], "a worker ended before the kill:\n" + "\n----\n".join(s[-2500:] for s in logs)
    done_before = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done_before < 3
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    chief_files = sorted(str(p.relative_to(run)) for p in run.rglob("*"))

    # Worker 1 restarted without its temp folder: it would start afresh while the chief
    # resumes; both stop with a clear message instead of mismatched collectives.
    shutil.move(tmp_path / "tmp1", tmp_path / "tmp1.saved")
    logs = communicate_all(_start_workers(tmp_path, run, "lost", "3"), timeout=150)
    assert all("The workers disagree on where stage 1 'head' resumes" in log for log in logs), logs[0][-2500:]
    assert "replica 0: finished, replica 1: from the start" in logs[0]
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == chief_files  # nothing lost
    assert json.loads(state.read_text())["epochs_done"] == done_before

    # With its temp folder back, the same command resumes both workers.
    shutil.rmtree(tmp_path / "tmp1")
    shutil.move(tmp_path / "tmp1.saved", tmp_path / "tmp1")
    procs = _start_workers(tmp_path, run, "resumed", "3")
    logs = communicate_all(procs, timeout=150)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(s[-2500:] for s in logs)
    chief, other = (json.loads((tmp_path / f"resumed{i}.json").read_text()) for i in range(2))
    assert chief["history"] == other["history"] == [["head", 1], ["all", 1], ["all", 2], ["all", 3]]
    assert abs(chief["kernel_sum"] - other["kernel_sum"]) < 1e-5  # resumed in sync
    assert "resumed: stage 1 'head' was finished" in logs[0]
    assert f"resumed: stage 2 'all' continues at epoch {done_before + 1}/3" in logs[0]
    assert "feature cache" not in logs[0]  # stage 1 was not trained again
    epochs_run = [ln for ln in logs[0].splitlines() if "Epoch " in ln and "/3" in ln]
    assert len(epochs_run) == 3 - done_before  # only the missing epochs ran
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert len((run / "history.csv").read_text().splitlines()) == 5  # header + 4 epochs, once each

