"""tl_kit.data.split: stratified seeded splits, hash splits for added files, class weights."""

from __future__ import annotations

import numpy as np
import pytest

from tl_kit.data import SPLITS, compute_class_weights, stratified_split
from tl_kit.data.split import check_fracs, hash_split, split_key
from tl_kit.errors import UserError


def test_stratified_split_every_class_in_every_split_and_seeded():
    labels = np.repeat(np.arange(3), [10, 6, 4])
    fracs = {"val": 0.2, "test": 0.25}
    idx = stratified_split(labels, fracs, 3, ["a", "b", "c"])
    assert sorted(np.concatenate([idx[s] for s in SPLITS]).tolist()) == list(range(20))
    for s in SPLITS:
        assert set(labels[idx[s]]) == {0, 1, 2}, s
        assert list(idx[s]) == sorted(idx[s])
    assert [len(idx["val"][labels[idx["val"]] == k]) for k in range(3)] == [2, 1, 1]
    again = stratified_split(labels, fracs, 3, ["a", "b", "c"])
    assert all(np.array_equal(idx[s], again[s]) for s in SPLITS)
    other = stratified_split(labels, fracs, 4, ["a", "b", "c"])
    assert any(not np.array_equal(idx[s], other[s]) for s in SPLITS)
    with pytest.raises(UserError, match="too few images.*photos/c"):
        stratified_split(np.repeat(np.arange(3), [10, 6, 2]), fracs, 0, ["a", "b", "c"], "photos")


def test_hash_split_is_stable_and_follows_the_fractions():
    fracs = {"val": 0.3, "test": 0.2}
    keys = [f"c/img{i}.jpg" for i in range(2000)]
    got = [hash_split(k, 7, fracs) for k in keys]
    assert got == [hash_split(k, 7, fracs) for k in keys]
    share = {s: got.count(s) / len(got) for s in SPLITS}
    assert share["val"] == pytest.approx(0.3, abs=0.04) and share["test"] == pytest.approx(0.2, abs=0.04)
    assert got != [hash_split(k, 8, fracs) for k in keys]


def test_class_weights_fractions_and_split_names():
    assert compute_class_weights(np.array([0] * 6 + [1] * 4), 3) == pytest.approx(
        {0: 10 / 12, 1: 10 / 8, 2: 1.0})
    assert check_fracs(0.2, 0.1) == {"val": 0.2, "test": 0.1}
    with pytest.raises(UserError, match="validation_split"):
        check_fracs(1.2, 0.0)
    with pytest.raises(UserError, match="must leave images for training"):
        check_fracs(0.6, 0.4)
    assert split_key("validation", {}, {}) == "val"
    with pytest.raises(UserError, match="Split names"):
        split_key("dev", {}, {"dev": 1})
    with pytest.raises(UserError, match="given twice"):
        split_key("valid", {"val": 1}, {"val": 1, "valid": 2})
