"""tl_kit.data.pipeline and cache: in-memory and streaming pipelines, shards."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf

from tl_kit.data import load_data
from tl_kit.errors import UserError

SIZE = (16, 16)


def test_streaming_drops_a_file_broken_since_the_scan(tmp_path, monkeypatch, fill_class):
    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
    fill_class(tmp_path / "a", 3, (200, 30, 30), ".jpg")
    fill_class(tmp_path / "b", 3, (30, 30, 200), ".jpg")
    data = load_data(tmp_path, image_size=SIZE, validation_split=0.0)
    (tmp_path / "a" / "img1.jpg").write_bytes(b"\xff\xd8\xff broken after the scan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = np.concatenate([b[0].numpy() for b in data.dataset("train", batch_size=4)])
    assert len(x) == 5  # dropped, the epoch goes on


def test_memory_cache_is_one_array_the_splits_index_and_the_pipeline_is_stated(messy, monkeypatch):
    import tl_kit.data as D
    from tl_kit.decode import decode_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_data(messy, image_size=SIZE, validation_split=0.3, test_split=0.2, seed=3)
        monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
        streamed = load_data(messy, image_size=SIZE, validation_split=0.3, test_split=0.2, seed=3)
    assert data.info.pipeline.startswith("memory:") and "pipeline: memory" in str(data.info)
    assert streamed.info.pipeline.startswith("stream:")
    parts = [data.examples(s) for s in ("train", "val", "test")]
    base = parts[0].pixels  # ONE array for every split, never copied or reordered
    assert base is not None and all(p.pixels is base for p in parts)
    rows = np.concatenate([p.rows for p in parts])
    assert len(np.unique(rows)) == len(rows) and rows.max() < len(base)  # each file's row once
    for s in ("train", "val", "test"):
        assert data.paths(s) == streamed.paths(s)
        x, y = data.arrays(s)
        for i, path in enumerate(data.paths(s)):  # each row is its own file's pixels
            np.testing.assert_array_equal(x[i], decode_file(path, SIZE)[0], err_msg=path)
        # shuffled batches gathered from the cache keep each image with its label
        by_pixels = {x[i].astype(np.uint8).tobytes(): int(y[i]) for i in range(len(y))}
        seen = 0
        for xb, yb in data.dataset(s, batch_size=4, shuffle=True, seed=1):
            for img, lab in zip(xb.numpy().astype(np.uint8), yb.numpy().argmax(-1), strict=True):
                assert by_pixels[img.tobytes()] == int(lab)
                seen += 1
        assert seen == len(y)


def test_file_level_shards_are_disjoint_and_cover_the_split(messy, monkeypatch):
    import tl_kit.data as D
    from tl_kit.data import shard_indices, worker_shard

    parts = [shard_indices(10, 3, i) for i in range(3)]
    assert [list(p) for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(UserError, match="shard"):
        shard_indices(10, 3, 3)
    with pytest.raises(UserError, match="cannot be sharded"):
        shard_indices(2, 3, 0)
    assert worker_shard() is None  # no multi-worker strategy in scope: no sharding
    from tl_kit.data.pipeline import pipeline_index

    chief_and_two = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert pipeline_index(chief_and_two, "chief", 0) == (3, 0)  # the chief reads shard 0
    assert [pipeline_index(chief_and_two, "worker", i) for i in range(2)] == [(3, 1), (3, 2)]
    assert pipeline_index({"worker": ["b:1", "c:1"]}, "worker", 1) == (2, 1)  # no chief
    assert pipeline_index({"worker": ["b:1"]}, "worker", 0) is None  # one task: unsharded
    assert pipeline_index({"chief": ["a:1"]}, "chief", 0) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for limit in (D.CACHE_LIMIT_BYTES, 0):  # in-memory and streaming
            monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", limit)
            data = load_data(messy, image_size=SIZE, validation_split=0.0)
            x, y = data.arrays("train")
            rows = [data.dataset("train", batch_size=5, shard=(2, i), deterministic=True)
                    for i in range(2)]
            for i, ds in enumerate(rows):
                pol = ds.options().experimental_distribute.auto_shard_policy
                assert pol == tf.data.experimental.AutoShardPolicy.OFF and ds.options().deterministic
                got = np.concatenate([b.numpy() for b, _ in ds])
                np.testing.assert_array_equal(got, x[i::2])  # only this worker's files, in order
            whole = data.dataset("train", batch_size=5, shard="auto")  # no cluster: unsharded
            assert whole.options().experimental_distribute.auto_shard_policy != \
                tf.data.experimental.AutoShardPolicy.OFF


def test_in_class_order_relabels_by_name_and_shares_the_images(tmp_path, fill_class):
    fill_class(tmp_path / "cat", 4, (200, 30, 30), ".png")
    fill_class(tmp_path / "dog", 2, (30, 30, 200), ".png")
    data = load_data(tmp_path, image_size=SIZE, validation_split=0.0)
    ordered = data.in_class_order(["dog", "bird", "cat"])
    assert ordered.class_names == ["dog", "bird", "cat"] and ordered.num_classes == 3
    before, after = data.labels("train"), ordered.labels("train")
    assert np.array_equal(after, np.where(before == 0, 2, 0))  # cat -> 2, dog -> 0
    assert ordered.examples("train").pixels is data.examples("train").pixels  # not copied
    assert np.array_equal(ordered.examples("train").rows, data.examples("train").rows)
    assert data.class_names == ["cat", "dog"] and np.array_equal(data.labels("train"), before)
    x, y = next(iter(ordered.dataset("train", batch_size=6)))
    assert y.shape == (6, 3) and np.array_equal(y.numpy().argmax(1), after)
    assert ordered.info.pipeline == data.info.pipeline
    with pytest.raises(UserError, match=r"class\(es\) \['dog'\] that are not among \['cat'\]"):
        data.in_class_order(["cat"])
