"""The learner's units: the classifier's models, the recipe choice, a stage's settings."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.backbones import get_backbone
from tl_kit.errors import UserError
from tl_kit.recipes import Recipe, Stage
from tl_kit.train.head import Classifier, check_recipe_change
from tl_kit.train.regime import NO_WEIGHTS_REASON, resolve_recipe
from tl_kit.train.stages import EARLY_STOPPING_MIN_VAL, SMALL_VAL_SMOOTHING, early_stopping


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return Classifier(get_backbone("lenet5"), (32, 32), 1, weights=None, num_classes=3,
                      recipe=Recipe(name="t", dropout=0.0, stages=[Stage()]))


def test_models_cut_from_the_classifier_share_its_layers(classifier):
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    model = classifier.assemble()
    assert [la.name for la in model.layers] == ["image", "preprocess", "backbone", "head_pool",
                                                "head_dropout", "predictions"]
    assert classifier.head_pool == "flatten" and classifier.feature_shape == (5, 5, 16)
    feats = classifier.feature_model()(x)
    head = classifier.head_model(feats.shape[1:])
    np.testing.assert_allclose(head(feats), model(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(classifier.feature_model(fold=True)(x), feats, rtol=1e-5, atol=1e-5)
    assert len(classifier.block_names()) == 2
    assert classifier.trainable_blocks(Stage(trainable="head"), 1) == 0
    assert classifier.trainable_blocks(Stage(trainable="all"), 1) == "all"
    assert classifier.trainable_blocks(Stage(trainable="default"), 1) == 1
    assert classifier.trainable_blocks(Stage(trainable=9), 1) == 2  # capped at the backbone's


def test_recipe_changes():
    flat = Recipe(name="flat", head_pool="flatten", dropout=0.0, stages=[Stage()])
    avg = Recipe(name="avg", head_pool="avg", dropout=0.3, stages=[Stage()])
    assert check_recipe_change(flat, flat, trained=True) == "same"
    assert check_recipe_change(flat, avg, trained=False) == "rebuild"
    assert check_recipe_change(avg, Recipe(name="l", head_pool="avg", dropout=0.1, stages=[Stage()]),
                               trained=True) == "dropout"
    with pytest.raises(UserError, match="attaches the head differently"):
        check_recipe_change(flat, avg, trained=True)


def test_recipe_choice_and_its_reason():
    given = Recipe(name="mine", stages=[Stage()])
    assert resolve_recipe(given, "auto", None) == (given, "auto", "recipe 'mine' given")
    recipe, regime, reason = resolve_recipe(None, "auto", None)
    assert (recipe.name, regime, reason) == ("scratch", "scratch", NO_WEIGHTS_REASON)
    assert resolve_recipe(None, "medium", "imagenet")[1:] == ("medium", "regime='medium' requested")


def test_early_stopping_needs_enough_validation_images():
    stage = Stage(early_stopping=3, epochs=5)
    lines = []
    assert early_stopping(stage, False, 500, lines.append) == (None, False, 1)
    assert early_stopping(stage, True, EARLY_STOPPING_MIN_VAL, lines.append) == (3, True, 1)
    assert early_stopping(stage, True, 9, lines.append) == (None, True, SMALL_VAL_SMOOTHING)
    assert lines == ["stage 'head': 9 validation images < 100: early stopping off, the full 5 "
                     "epochs run; best epoch by val_loss averaged over 3 epochs"]
