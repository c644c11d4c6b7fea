"""Recipes: built-ins follow the classic advice, TOML round trips, regime choice is documented."""

from __future__ import annotations

import pytest
from _paths import RECIPES

from tl_kit.errors import UserError
from tl_kit.recipes import (
    REGIME_THRESHOLDS,
    Recipe,
    Stage,
    builtin_recipe,
    choose_regime,
    load_recipe,
    recipe_from_name,
    scratch_recipe,
)


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


def test_user_mistakes_raise_user_error(tmp_path):
    for bad in (lambda: Stage(epochs=-1), lambda: Recipe(dropout=1.0), lambda: builtin_recipe("huge"),
                lambda: load_recipe(tmp_path / "none.toml"), lambda: choose_regime({})):
        with pytest.raises(UserError):
            bad()


def test_recipe_from_name_resolves_every_kind_of_name(tmp_path):
    assert recipe_from_name("auto") is None  # the Learner chooses from images per class
    assert recipe_from_name("scratch") == scratch_recipe()
    assert recipe_from_name("medium") == builtin_recipe("medium")
    assert recipe_from_name(RECIPES / "small_data.toml") == builtin_recipe("small")
    mine = Recipe(name="mine", stages=[Stage(epochs=2)])
    path = mine.save(tmp_path / "mine.toml")
    assert recipe_from_name(path) == mine
    with pytest.raises(UserError, match=r"Recipe not found.*Received: recipe='auto'"):
        recipe_from_name("auto", auto=False)  # a caller that needs a recipe now
    with pytest.raises(UserError, match="Recipe not found"):
        recipe_from_name(tmp_path / "missing.toml")


def test_with_budget_sets_epochs_scale_quick_and_batch_size():
    medium = builtin_recipe("medium")  # head 5 epochs, finetune 15
    assert [s.epochs for s in medium.with_budget(epochs=3).stages] == [3, 3]
    assert [s.epochs for s in medium.with_budget(epochs_scale=0.1).stages] == [1, 2]  # >= 1 each
    assert [s.epochs for s in medium.with_budget(epochs_scale=2).stages] == [10, 30]
    quick = medium.with_budget(quick=True, batch_size=4)
    assert [(s.epochs, s.cache_copies, s.batch_size) for s in quick.stages] == [(1, 0, 4), (1, 0, 4)]
    zero = Recipe(stages=[Stage(epochs=0), Stage(epochs=7)])
    assert [s.epochs for s in zero.with_budget(quick=True).stages] == [0, 1]  # never more
    same = medium.with_budget()
    assert same == medium and same is not medium
    # the other stage fields are kept
    scaled = medium.with_budget(epochs=2)
    assert [s.learning_rate for s in scaled.stages] == [s.learning_rate for s in medium.stages]
    assert medium.stages[0].epochs == 5  # the original is unchanged


def test_with_budget_rejects_what_would_not_train():
    medium = builtin_recipe("medium")
    with pytest.raises(UserError, match=r"`epochs` must be at least 1\. Received: epochs=0"):
        medium.with_budget(epochs=0)
    for scale in (0, -0.5):
        with pytest.raises(UserError, match=rf"`epochs_scale` must be positive\. Received: epochs_scale={scale}"):
            medium.with_budget(epochs_scale=scale)
    with pytest.raises(UserError, match=r"at most one of.*Received: quick=True, epochs=2"):
        medium.with_budget(quick=True, epochs=2)
    with pytest.raises(UserError, match="Received: batch_size=0"):
        medium.with_budget(batch_size=0)


def test_budget_errors_read_as_flags_on_the_command_line():
    from tl_kit.errors import in_terms_of_flags

    flags = {"epochs": "--epochs", "epochs_scale": "--epochs-scale"}
    for kwargs, message in (({"epochs": 0}, "--epochs must be at least 1. Received: --epochs 0"),
                            ({"epochs_scale": -1.0},
                             "--epochs-scale must be positive. Received: --epochs-scale -1.0")):
        with pytest.raises(UserError) as info:
            builtin_recipe("small").with_budget(**kwargs)
        assert in_terms_of_flags(str(info.value), flags) == message
