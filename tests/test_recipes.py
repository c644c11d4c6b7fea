"""Recipes: built-ins follow the classic advice, TOML round trips, regime choice is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tl_kit.recipes import (
    REGIME_THRESHOLDS,
    Recipe,
    Stage,
    builtin_recipe,
    choose_regime,
    load_recipe,
)

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_builtins_follow_the_classic_advice():
    small, medium, large = (builtin_recipe(n) for n in ("small", "medium", "large"))
    assert [s.trainable for s in small.stages] == ["head"]
    assert [s.trainable for s in medium.stages] == ["head", "default"]
    assert [s.trainable for s in large.stages] == ["head", "all"]
    # fine-tuning runs at about a 10x lower learning rate than the head warm-up
    assert medium.stages[1].learning_rate == pytest.approx(medium.stages[0].learning_rate / 10)
    assert large.stages[1].learning_rate < large.stages[0].learning_rate
    assert not any(s.train_bn for r in (small, medium, large) for s in r.stages)


@pytest.mark.parametrize("name, fname", [("small", "small_data.toml"), ("medium", "medium_data.toml"),
                                         ("large", "large_data.toml")])
def test_shipped_toml_files_equal_the_builtins(name, fname):
    text = (RECIPES / fname).read_text()
    assert text.startswith("#"), "each recipe file says when to use it"
    assert load_recipe(RECIPES / fname) == builtin_recipe(name)
    assert load_recipe(name) == builtin_recipe(name)


def test_round_trip_to_toml_and_dict(tmp_path):
    r = Recipe(name="mine", stages=[Stage(epochs=2), Stage(name="ft", trainable=3, learning_rate=1e-5)],
               head_layer="block2_pool", image_size=64)
    path = r.save(tmp_path / "mine.toml")
    assert load_recipe(path) == r
    assert load_recipe(r.to_dict()) == r
    assert r.with_stage_overrides(epochs=1).stages[1].epochs == 1


def test_bad_values_are_rejected_clearly(tmp_path):
    with pytest.raises(ValueError, match="Received: trainable='some'"):
        Stage(trainable="some")
    with pytest.raises(ValueError, match="Received: optimizer='lion'"):
        Stage(optimizer="lion")
    with pytest.raises(ValueError, match="Unknown stage keys"):
        load_recipe({"stages": [{"epoch": 3}]})
    with pytest.raises(ValueError, match="Recipe not found"):
        load_recipe(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_recipe(bad)


def test_choose_regime_thresholds_and_reason():
    assert REGIME_THRESHOLDS == {"small": 0, "medium": 100, "large": 1000}
    assert choose_regime(5)[0] == "small"
    assert choose_regime(99)[0] == "small"
    assert choose_regime(100)[0] == "medium"
    assert choose_regime(999)[0] == "medium"
    assert choose_regime(1000)[0] == "large"
    regime, reason = choose_regime({"a": 20, "b": 30, "c": 5000})
    assert regime == "small" and "median 30" in reason and "min 20" in reason
