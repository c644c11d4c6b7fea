"""Smoke tests of benchmarks/run.py: every benchmark runs with tiny settings and returns
the documented structure with positive rates. No timed assertions (figures live in
benchmarks/RESULTS.md)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run():
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pos(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_overhead(run):
    r = run.bench_overhead(size=32, images=16, batch=8, epochs=2, repeats=1, regimes=("small", "medium"))
    assert set(r["regimes"]) == {"small", "medium"}
    for v in r["regimes"].values():
        assert _pos(v["tl_kit_images_per_s"]) and _pos(v["guide_images_per_s"]) and _pos(v["ratio"])
        assert v["timing"]  # how each side was timed
    assert r["regimes"]["small"]["first_trainable_layer_index"] == -1
    assert r["regimes"]["medium"]["first_trainable_layer_index"] > 0


def test_cache(run):
    r = run.bench_cache(size=32, images=40, epochs=2, batch=8, tl_repeats=2)
    assert r["train_images"] + r["val_images"] == 40
    assert 0 <= r["target_val_accuracy"] <= 1
    assert _pos(r["speedup"]) and _pos(r["guide_epoch_images_per_s"])
    assert _pos(r["cached_head_epoch_images_per_s"])
    assert len(r["curves"]["tl_kit"]) == len(r["curves"]["guide"]) == 2
    assert "feature cache" in r["tl_kit_cache_log"]
    assert len(r["tl_kit_repeat_seconds"]) == 2 and r["speedup"] > 0


def test_pipeline(run):
    r = run.bench_pipeline(size=32, batches=2, steps=1, images=32, batch=8, backbones=("mobilenet_v2",))
    assert {v["backend"] for v in r["rows"]} == {"tf", "albumentations"}
    for v in r["rows"]:
        assert _pos(v["pipeline_images_per_s"]) and _pos(v["finetune_step_images_per_s"])
        assert v["ratio_finetune"] == pytest.approx(v["pipeline_images_per_s"] / v["finetune_step_images_per_s"])


def test_recipe(run):
    r = run.bench_recipe(labels_per_class=2, pre_epochs=1, epochs=2, repeats=1)
    assert _pos(r["tl_kit_seconds"]) and _pos(r["hand_seconds"]) and _pos(r["ratio"])
    assert 0 <= r["tl_kit_test_accuracy"] <= 1 and 0 <= r["hand_test_accuracy"] <= 1
    parts = r["parts_seconds_per_run"]  # where tl_kit's fixed costs go
    assert {"stage_weights", "plots_history", "save_model", "evaluate_report", "epoch_checkpoints"} <= set(parts)
    assert r["runs"]["tl_kit"][0]["epoch_checkpoints"]["writes"] == 3  # one per stage (3 stages)
    assert 0 <= r["checkpoint_share"] < 1 and r["runs"]["tl_kit"][0]["run_dir_bytes"] > 0


def test_stability(run):
    r = run.bench_stability(backbone="lenet5", size=32, epochs=2, seeds=2)
    assert r["learn_images"] == 90 and r["test_images"] == 30
    for side in ("before", "after"):
        assert len(r["runs"][side]) == 2 and 0 <= r[side]["mean"] <= 1 and r[side]["std"] >= 0
        assert all(run_["val_images"] == 18 for run_ in r["runs"][side])
    assert any(row[0].startswith("6 stability") for row in run.summary_rows({"stability": r}))


def test_mirrored_and_table(run, capsys):
    r = run.bench_mirrored(size=32, batch=4, steps=1, warmup=1, repeats=1, model="tiny")
    assert _pos(r["ratio"])
    assert r["gpu_h100_jax"]["mixed_float16_xla"] > r["gpu_h100_jax"]["float32_xla"]
    rows = run.summary_rows({"mirrored": r})
    assert any("MirroredStrategy" in row[0] for row in rows)
    assert all(len(row) == 6 for row in rows)


def test_cli_rejects_unknown(run):
    with pytest.raises(SystemExit):
        run.main(["--quick", "--only", "nope"])


def test_data(run, tmp_path, monkeypatch):
    """Benchmark 7 on a folder of 60 JPEGs (made under tmp_path): every side runs in its own
    process and the table has the epoch, load and memory rows."""
    import benchmarks.bench_data as bench

    monkeypatch.setattr(bench, "GEN_ROOT", tmp_path)
    r = run.bench_data(files=60)
    assert set(r["sides"]) == {"tl_stream", "tl_memory", "keras", "decode_once"}
    assert not any("error" in side for side in r["sides"].values()), r["sides"]
    tl, mem = r["sides"]["tl_stream"], r["sides"]["tl_memory"]
    assert r["sides"]["keras"]["epoch_images"] == 54  # Keras: 90% of 60 files train
    assert tl["epoch_images"] == mem["epoch_images"] == 50  # tl_kit: one val file per class (10)
    assert _pos(tl["first_load_s"]) and _pos(tl["second_load_s"]) and tl["cached_pixel_mb"] == 0.0
    assert _pos(tl["first_load_cpu_s"]) and _pos(r["sides"]["decode_once"]["decode_once_cpu_s"])
    assert r["ratios"]["first_load_cpu_vs_decode_once"] == round(
        r["sides"]["decode_once"]["decode_once_cpu_s"] / tl["first_load_cpu_s"], 3)
    once = r["sides"]["decode_once"]  # the baseline: the faster of tl_kit's calls and AUTOTUNE
    from tl_kit.data.decoding import graph_calls

    assert once["decode_once_calls"] == graph_calls() >= 16
    assert once["decode_once_s"] == min(once["decode_once_calls_s"], once["decode_once_autotune_s"])
    assert once["decode_once_cpu_s"] == min(once["decode_once_calls_cpu_s"], once["decode_once_autotune_cpu_s"])
    assert _pos(once["decode_once_kept_s"]) and _pos(once["decode_once_kept_cpu_s"])
    assert r["ratios"]["memory_first_load_vs_decode_once_kept"] == round(
        once["decode_once_kept_s"] / mem["first_load_s"], 3)
    assert r["ratios"]["memory_first_load_cpu_vs_decode_once"] == round(
        r["sides"]["decode_once"]["decode_once_cpu_s"] / mem["first_load_cpu_s"], 3)
    assert math.isclose(mem["cached_pixel_mb"], 60 * 64 * 64 * 3 / 2**20, rel_tol=1e-3)
    assert _pos(r["ratios"]["stream_epoch_vs_keras"]) and _pos(r["ratios"]["memory_peak_over_pixels"])
    names = [row[0] for row in run.summary_rows({"data": r})]
    assert names[0] == "7 data epoch, standard policy, streaming (60 files)"
    assert any(n.startswith("7 data in-memory RSS added by the load") for n in names)


def test_data_rounds_report_each_figure_as_its_median():
    """bench_data --rounds: every numeric figure is the median over the rounds, and the
    ratios come from those medians."""
    import benchmarks.bench_data as bench

    rounds = [{"tl_stream": {"first_load_s": t, "tl_kit": "x"}, "decode_once": {"decode_once_s": d}}
              for t, d in ((10.0, 20.0), (30.0, 21.0), (12.0, 19.0))]
    med = bench._medians(rounds)
    assert med == {"tl_stream": {"first_load_s": 12.0, "tl_kit": "x"}, "decode_once": {"decode_once_s": 20.0}}
    assert bench._ratios({"sides": med})["ratios"]["first_load_vs_decode_once"] == round(20.0 / 12.0, 3)
    per_round = [bench._ratios({"sides": r})["ratios"] for r in rounds]
    # each round's own pairing: 2.0, 0.7, 1.583 -> median 1.583 (the ratio of medians is 1.667)
    assert bench._median_ratios(per_round) == {"first_load_vs_decode_once": round(19.0 / 12.0, 3)}
    assert bench._median_ratios([{"a": 1.0}, {"a": 3.0, "b": 2.0}]) == {"a": 2.0, "b": 2.0}


def test_data_full_core_rounds_pair_only_rounds_where_both_sides_had_the_cores():
    """bench_data: each pass's cores (CPU s / wall s), the in-memory first load against the
    ``decode_kept`` side, and ``full_core_rounds`` keeping the rounds where both passes used
    at least FULL_CORES cores."""
    import benchmarks.bench_data as bench

    def rnd(mem_s, mem_cpu, kept_s, kept_cpu):
        return {"tl_memory": {"first_load_s": mem_s, "first_load_cpu_s": mem_cpu},
                "decode_kept": {"decode_once_kept_s": kept_s, "decode_once_kept_cpu_s": kept_cpu}}

    rounds = [rnd(10.0, 19.0, 12.0, 23.0),   # both on two cores: 1.2
              rnd(20.0, 20.0, 12.0, 23.0),   # the tl_kit pass caught a one-core spell: 0.6
              rnd(10.0, 18.0, 11.0, 21.0),   # both on two cores: 1.1
              rnd(10.0, 19.0, 21.0, 20.0)]   # the decode pass on one core: 2.1
    ratios = [bench._ratios({"sides": r})["ratios"] for r in rounds]
    assert ratios[0]["memory_first_load_vs_decode_once_kept"] == 1.2
    assert ratios[0]["memory_first_load_cpu_vs_decode_once_kept"] == round(23.0 / 19.0, 3)
    assert ratios[1]["memory_first_load_cores"] == 1.0 and ratios[0]["decode_once_kept_cores"] == round(23 / 12, 3)
    full = bench._full_core_ratios(ratios)
    assert full["rounds"] == [0, 2]
    assert full["memory_first_load_vs_decode_once_kept"] == round((1.2 + 1.1) / 2, 3)
    assert bench._full_core_ratios(ratios, least=2.5) == {"least_cores": 2.5, "rounds": []}


def test_data_one_cpu_runs_each_side_on_that_cpu_alone(monkeypatch, tmp_path):
    """bench_data --one-cpu: the side's subprocess is started pinned to that one CPU (checked
    in a real child process: its affinity is that CPU), and its figures are read back."""
    import os
    import subprocess
    import sys

    import benchmarks.bench_data as bench

    seen, real_run = {}, subprocess.run

    def fake_run(cmd, **kw):
        seen.update(kw)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"first_load_s": 1.5}\n', stderr="")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    cpu = min(os.sched_getaffinity(0))
    assert bench._run_side("tl_memory", tmp_path, ".", False, cpu) == {"first_load_s": 1.5}
    child = real_run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                           preexec_fn=seen["preexec_fn"], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == str([cpu])
    bench._run_side("tl_memory", tmp_path, ".", False, None)
    assert seen["preexec_fn"] is None


def test_load_phases_add_up_to_the_load():
    """bench_load_phases on 60 files: every side ran; the in-memory load's phases are
    positive, do not exceed the load, and with ``rest`` make up its total."""
    sys.path.insert(0, str(ROOT))
    import benchmarks.bench_load_phases as phases

    r = phases.phases(60, rounds=1)
    load = r["per_round"][0]["load"]
    assert set(r["medians"]) == set(phases.SIDES) and _pos(r["load_vs_decode_kept"])
    parts = [k for k in load if k not in ("total_s", "rest_s")]
    assert {"listing_s", "stat_and_lookup_s", "scan_graph_s", "hygiene_report_s", "split_s"} <= set(parts)
    assert all(load[k] > 0 for k in parts) and load["scan_graph_s"] < load["total_s"]
    assert sum(load[k] for k in parts) + load["rest_s"] == pytest.approx(load["total_s"])
    assert _pos(r["per_round"][0]["load_no_header_test"]["scan_graph_s"])
    pair = r["round_ratios"][0]
    assert pair["load_vs_decode_kept"] == round(r["per_round"][0]["decode_kept"]["total_s"] / load["total_s"], 3)
    assert pair["scan_graph_vs_decode_kept"] > pair["load_vs_decode_kept"]


def test_draft_decode_measures_each_side_and_picks_the_largest_ratio_that_keeps_the_size():
    """bench_draft_decode: the DCT scale kept at least the load size on both sides; every side
    ran over every file with positive figures."""
    sys.path.insert(0, str(ROOT))
    import benchmarks.bench_draft_decode as draft

    assert [draft.largest_ratio(px, s) for px, s in ((1024, 224), (96, 64), (500, 224), (2048, 224),
                                                      (1024, 128), (1016, 128), (448, 224))] == [4, 1, 2, 8, 8, 4, 2]
    import benchmarks.bench_data as bd

    px = bd.SRC_PX
    r = draft.draft_cost(files=20, source_px=128, size=32, rounds=1)
    assert bd.SRC_PX == px  # bench_data's folders are left as they were
    assert r["ratio"] == 4 and r["files"] == 20
    assert set(r["sides"]) == {"full_decode", "full_decode_resize", "scaled_decode", "scaled_decode_resize",
                               "decode_resize"}
    assert all(v["wall_s"] > 0 and v["cpu_s"] >= 0 for v in r["sides"].values())
    assert all(len(runs) == 1 for runs in r["runs"].values())
    full, ours = r["runs"]["full_decode_resize"][0][0], r["runs"]["decode_resize"][0][0]
    assert r["round_full_over_decode_resize"] == [round(full / ours, 3)]


def test_routes_measures_both_decodes_and_both_epochs():
    """bench_routes: the recorded route is the DCT scale of the generated size; both sides
    decoded every file (and streamed the same epoch) with positive figures; the patched
    route_codes and the cache limit are restored."""
    sys.path.insert(0, str(ROOT))
    import benchmarks.bench_data as bd
    import benchmarks.bench_routes as routes
    import tl_kit.data as D
    from tl_kit import decode

    px, limit, route_codes = bd.SRC_PX, D.CACHE_LIMIT_BYTES, decode.route_codes
    r = routes.routes_cost(files=20, source_px=128, size=32, rounds=1)
    assert bd.SRC_PX == px and r["files"] == 20
    assert r["routes"] == [decode.DCT_RATIOS.index(4)]
    assert all(v["wall_s"] > 0 for v in r["sides"].values()) and set(r["sides"]) == {"load_path", "load_routed"}
    assert r["round_path_over_routed"] == [round(r["runs"]["load_path"][0][0] / r["runs"]["load_routed"][0][0], 3)]
    e = routes.epoch_cost(files=40, size=16, rounds=1, augment=None)
    assert 0 < e["epoch_images"] == e["train_images"] < 40 and set(e["runs"]) == {"per_file_header", "routed"}
    assert all(len(v) == 1 and v[0][0] > 0 for v in e["runs"].values())
    assert decode.route_codes is route_codes and D.CACHE_LIMIT_BYTES == limit


def test_data_unknown_side_is_a_usage_error(capsys):
    import benchmarks.bench_data as bench

    with pytest.raises(SystemExit) as e:
        bench.main(["--sides", "tl_memory,decode_twice"])
    assert e.value.code == 2 and "decode_twice" in capsys.readouterr().err


def test_one_cpu_not_ours_is_a_usage_error(capsys):
    """--one-cpu naming a CPU this process may not use: exit 2 naming it, before any work."""
    import os

    sys.path.insert(0, str(ROOT))
    import benchmarks.bench_data as data
    import benchmarks.bench_draft_decode as draft
    import benchmarks.bench_load_phases as phases
    import benchmarks.bench_routes as routes

    bad = str(max(os.sched_getaffinity(0)) + 1000)
    for main in (data.main, phases.main, draft.main, routes.main):
        with pytest.raises(SystemExit) as e:
            main(["--files", "10", "--one-cpu", bad])
        assert e.value.code == 2 and f"--one-cpu {bad}" in capsys.readouterr().err


def test_demo_rows(run):
    """Benchmark 8's row reads bench_demo's figures; a failed demo is a NO, not a crash."""
    r = {"command": "-m tl_kit.cli demo --out /tmp/x --task photos --quick", "returncode": 0,
         "seconds": 61.4, "cpu_seconds": 80.0, "peak_rss_mib": 1500.0, "load_before": {"load1": 1.0},
         "load1_samples": [1.5, 2.5]}
    (row,) = run.summary_rows({"demo": r})
    assert row == ("8 demo: tl-kit demo --quick (load up to 2.5)", "61 s wall", "80 s CPU", "1500 MiB peak",
                   "< 300 s wall", "yes")
    (row,) = run.summary_rows({"demo": {**r, "seconds": 400.0}})
    assert row[-1] == "NO"
    (row,) = run.summary_rows({"demo": {**r, "returncode": 1}})
    assert row[0] == "8 demo: tl-kit demo failed" and row[-1] == "NO"
    assert "demo" in run.NAMES and "data" in run.NAMES and set(run.NAMES) <= set(run.FUNCS)


def test_header_test_cost(tmp_path):
    """bench_header_test on 12 files (JPEGs and a PNG): every side measured each round, and
    the per-file costs derived from the medians."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_header_test import header_test_cost

    files = []
    for i in range(12):
        p = tmp_path / (f"{i}.png" if i == 0 else f"{i}.jpg")
        Image.fromarray(np.full((16, 16, 3), i * 20, np.uint8)).save(p)
        files.append(str(p))
    r = header_test_cost(files, rounds=2)
    assert r["files"] == 12 and set(r["cpu_s_median"]) == {"format_only", "codes", "whole_test"}
    assert all(len(v) == 2 for v in r["cpu_s_rounds"].values())
    med = r["cpu_s_median"]
    assert r["codes_us_per_file"] == round(1e6 * (med["codes"] - med["format_only"]) / 12, 1)


def test_listing_measures_both_sides_of_both_commands():
    """bench_listing: the weights lookup names the same file both ways; the cache listing
    lists the generated folder's files, and only its 'before' side imports TensorFlow."""
    sys.path.insert(0, str(ROOT))
    import benchmarks.bench_listing as listing

    w = listing.weights_listing("keras:vgg16", rounds=1)
    assert w["backbones"] == 1 and w["same_files"] is True
    assert all(_pos(float(v["wall_s"])) and _pos(float(v["peak_rss_mb"])) for v in w["sides"].values())
    c = listing.cache_listing(files=40, rounds=1)
    assert c["listed"] == c["files"] == 40 and c["index_bytes"] > 0
    assert c["tensorflow_imported"] == {"before": True, "now": False}
    assert set(c["rounds"]) == {"before", "now"} and all(len(r) == 1 for r in c["rounds"].values())
