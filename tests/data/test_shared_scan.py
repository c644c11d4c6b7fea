"""The hygiene scan shared by the workers of a cluster (tl_kit.data.shared_scan), with the
workers as threads of this process and the all-reduce as a sum behind a barrier (the
two-process MultiWorkerMirroredStrategy run is in tests/distribute)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tl_kit.data.folders import list_folder
from tl_kit.data.shared_scan import shared_scan

SIZE = (16, 16)


class _Cluster:
    """``total(worker)``: a sum over ``workers`` threads, as MultiWorkerMirroredStrategy's all-reduce."""

    def __init__(self, workers: int):
        self.workers = workers
        self.barrier = threading.Barrier(workers, timeout=60)
        self.parts: dict[int, np.ndarray] = {}
        self.sums = 0

    def total(self, worker: int):
        def fn(value):
            self.parts[worker] = np.asarray(value, np.float64)
            self.barrier.wait()
            out = sum(self.parts[w] for w in range(self.workers))
            self.barrier.wait()
            if worker == 0:
                self.sums += 1
            return out

        return fn


def _verdicts(records) -> list[tuple]:
    return [(r.path, r.label, r.status, r.reason, r.decoder, r.height, r.width) for r in records]


def _run(workers: int, listing, keep, monkeypatch, index=lambda w: None):
    """Scan ``listing(w)`` on every worker thread: ``(records, checked paths, share)`` per worker."""
    import tl_kit.data.hygiene as H

    cluster = _Cluster(workers)
    checked: dict[int, list[str]] = {w: [] for w in range(workers)}
    real = H._graph_pass
    who = threading.local()

    def graph_pass(rows, files, *a, **k):
        checked[who.w].extend(files[i][0] for i in rows)
        return real(rows, files, *a, **k)

    out: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        who.w = w
        try:
            classes, files = listing(w)
            with shared_scan(workers, w, cluster.total(w)) as share:
                records, _ = H.scan(files, classes, SIZE, 3, "stretch", keep(w), index=index(w))
            out[w] = (records, checked[w], share)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            cluster.barrier.abort()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    with monkeypatch.context() as patch:  # undone before the next run wraps _graph_pass again
        patch.setattr(H, "_graph_pass", graph_pass)
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    if errors:
        raise errors[0]
    return [out[w] for w in range(workers)], cluster


@pytest.mark.parametrize("workers", [2, 3])
def test_each_worker_checks_only_its_share_and_all_get_every_verdict(messy, monkeypatch, workers):
    from tl_kit.data.hygiene import scan

    classes, files, _ = list_folder(messy)
    alone, _ = scan(files, classes, SIZE, 3, "stretch", False)
    done, cluster = _run(workers, lambda w: (classes, files), lambda w: False, monkeypatch)
    assert cluster.sums == 2  # the agreement, then the verdict codes
    plain = {r.path for r in alone if (r.status, r.reason, r.decoder) == ("ok", "", "tf")}
    assert 0 < len(plain) < len(files)  # the messy folder has both kinds
    for w, (records, checked, share) in enumerate(done):
        assert _verdicts(records) == _verdicts(alone)  # every verdict, reasons and notes included
        own = {files[i][0] for i in range(w, len(files), workers)}
        assert own <= set(checked)  # its own files...
        assert set(checked) - own <= {p for p, _ in files} - plain  # ...and only others' non-plain ones
        assert share.shared and share.checked == len(checked) and share.files == len(files)
        assert f"shared over {workers} workers: worker {w} checked {len(checked)} of {len(files)}" in share.summary()
    for p in plain:  # every plain file is read by exactly one worker
        assert sum(p in set(checked) for _, checked, _ in done) == 1, p


def test_workers_that_list_other_files_or_keep_pixels_each_check_everything(messy, monkeypatch):
    from tl_kit.data.hygiene import scan

    classes, files, _ = list_folder(messy)
    alone, _ = scan(files, classes, SIZE, 3, "stretch", False)
    fewer = files[:-1]
    done, cluster = _run(2, lambda w: (classes, files if w == 0 else fewer), lambda w: False, monkeypatch)
    assert cluster.sums == 1  # they disagree, so no second sum on either
    assert _verdicts(done[0][0]) == _verdicts(alone) and _verdicts(done[1][0]) == _verdicts(alone)[:-1]
    assert not done[0][2].shared and "not shared" in done[0][2].summary()
    assert set(done[0][1]) == {p for p, _ in files}  # every file checked here
    done, cluster = _run(2, lambda w: (classes, files), lambda w: w == 1, monkeypatch)  # one keeps pixels
    assert cluster.sums == 1 and not any(s.shared for _, _, s in done)
    assert all(set(checked) == {p for p, _ in files} for _, checked, _ in done)


def test_a_worker_whose_index_knows_every_file_still_shares_its_verdicts(messy, tmp_path, monkeypatch):
    """Worker 1 loaded the folder before (its index knows every verdict): it decodes nothing,
    yet gives worker 0 the codes of its share, so worker 0 checks only its own files."""
    from tl_kit.data.hygiene import open_index, scan

    classes, files, _ = list_folder(messy)
    index = open_index(messy, 3, None, True, tmp_path / "one.json")
    alone, _ = scan(files, classes, SIZE, 3, "stretch", False, index=index)
    index.save()
    indexes = {0: None, 1: open_index(messy, 3, None, True, tmp_path / "one.json")}
    done, _ = _run(2, lambda w: (classes, files), lambda w: False, monkeypatch, index=indexes.get)
    assert done[1][1] == []  # nothing decoded by the worker that knew it all
    assert _verdicts(done[0][0]) == _verdicts(done[1][0]) == _verdicts(alone)
    plain = {r.path for r in alone if (r.status, r.reason, r.decoder) == ("ok", "", "tf")}
    theirs = {files[i][0] for i in range(1, len(files), 2)}
    assert not (set(done[0][1]) & theirs & plain)
