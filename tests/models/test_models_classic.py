"""Family-specific checks for LeNet-5, AlexNet, ZFNet and VGG (feature-map sizes, options)."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_same_outputs, random_images
from keras.src.legacy.saving import legacy_h5_format

from tl_kit.errors import TLKitError
from tl_kit.models import build_model, get_spec
from tl_kit.models import vgg as vgg_module
from tl_kit.models.alexnet import LocalResponseNormalization


def _shapes(model: keras.Model, names: list[str]) -> list[tuple]:
    return [tuple(model.get_layer(n).output.shape[1:]) for n in names]


# === LeNet-5 ===


@pytest.mark.parametrize(
    ("variant", "activation", "pool"),
    [("classic", "tanh", "AveragePooling2D"), ("modern", "relu", "MaxPooling2D")],
)
def test_lenet_feature_maps(variant, activation, pool, fresh_session):
    model = build_model("lenet5", variant=variant)
    names = ["block1_conv1", "block1_pool", "block2_conv1", "block2_pool", "flatten", "fc1", "fc2"]
    assert _shapes(model, names) == [
        (28, 28, 6),
        (14, 14, 6),
        (10, 10, 16),
        (5, 5, 16),
        (400,),
        (120,),
        (84,),
    ]
    assert model.output_shape == (None, 10)
    assert model.get_layer("block1_conv1").get_config()["activation"] == activation
    assert model.get_layer("fc1").get_config()["activation"] == activation
    assert type(model.get_layer("block2_pool")).__name__ == pool


def test_lenet_backbone_gives_the_400_conv_features(fresh_session):
    features = build_model("lenet5", include_top=False, pooling="flatten")
    full = build_model("lenet5")
    assert features.output_shape == (None, 400)
    # Same weights -> the backbone's features are the full model's flatten layer.
    features.set_weights(full.get_weights()[:4])
    x = random_images((32, 32, 1), n=3)
    inner = keras.Model(full.input, full.get_layer("flatten").output)
    assert_same_outputs(features, inner, x)


def test_lenet_options_and_sizes(fresh_session):
    rgb = build_model("lenet5", input_shape=(32, 32, 3), classes=4)
    assert rgb.output_shape == (None, 4)
    assert rgb.count_params() == 61_706 + 2 * 6 * 25 - 6 * (84 + 1)  # 3 channels, 4 classes
    with pytest.raises(
        ValueError, match="needs 32x32 inputs.*Received: input_shape=\\(28, 28, 1\\)"
    ):
        build_model("lenet5", input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match="Received: variant='relu'"):
        build_model("lenet5", variant="relu")
    tiny = build_model("lenet5", include_top=False, input_shape=(16, 16, 1))
    assert tiny.output_shape == (None, 1, 1, 16)


# === AlexNet / ZFNet ===


def test_alexnet_feature_maps(fresh_session):
    model = build_model("alexnet", include_top=False, input_shape=(227, 227, 3))
    names = ["block1_conv1", "block1_pool", "block2_conv1", "block2_pool", "block5_conv1"]
    assert _shapes(model, names) == [
        (55, 55, 96),
        (27, 27, 96),
        (27, 27, 256),
        (13, 13, 256),
        (13, 13, 256),
    ]
    assert model.output_shape == (None, 6, 6, 256)


def test_alexnet_two_gpu_groups_lrn_and_dropout(fresh_session):
    model = build_model("alexnet", groups=2, lrn=True, dropout=0.3, classes=5)
    for name, kernel in [
        ("block2_conv1", (5, 5, 48, 256)),
        ("block3_conv1", (3, 3, 256, 384)),  # conv3 sees both towers
        ("block4_conv1", (3, 3, 192, 384)),
        ("block5_conv1", (3, 3, 192, 256)),
    ]:
        assert tuple(model.get_layer(name).kernel.shape) == kernel
    assert model.count_params() == 60_965_224 - 4_097_000 + 4096 * 5 + 5
    names = [layer.name for layer in model.layers]
    assert names.index("block1_conv1") < names.index("block1_norm") < names.index("block1_pool")
    assert names.index("block2_conv1") < names.index("block2_norm") < names.index("block2_pool")
    assert model.get_layer("fc1_dropout").rate == pytest.approx(0.3)
    assert model.get_layer("fc2_dropout").rate == pytest.approx(0.3)
    assert names.index("fc1") < names.index("fc1_dropout") < names.index("fc2")
    plain = build_model("alexnet", include_top=False, input_shape=(67, 67, 3))
    assert not any("norm" in layer.name for layer in plain.layers)
    with pytest.raises(ValueError, match="Received: groups=4"):
        build_model("alexnet", groups=4)
    with pytest.raises(ValueError, match="Received: dropout=1.5"):
        build_model("alexnet", dropout=1.5)


def test_local_response_normalization_matches_tf_and_serializes(tmp_path, fresh_session):
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 9)).astype("float32") * 30
    layer = LocalResponseNormalization()
    expected = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected.numpy(), rtol=1e-5)
    model = build_model("alexnet", include_top=False, input_shape=(67, 67, 3), lrn=True, groups=2)
    path = tmp_path / "alexnet_lrn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("block2_norm"), LocalResponseNormalization)
    assert_same_outputs(model, loaded, random_images((67, 67, 3), n=1))


def test_zfnet_feature_maps(fresh_session):
    model = build_model("zfnet", include_top=False, input_shape=(224, 224, 3))
    names = ["block1_conv1", "block1_pool", "block2_conv1", "block2_pool", "block5_conv1"]
    assert _shapes(model, names) == [
        (110, 110, 96),
        (55, 55, 96),
        (26, 26, 256),
        (13, 13, 256),
        (13, 13, 256),
    ]
    assert model.output_shape == (None, 6, 6, 256)
    assert tuple(model.get_layer("block1_conv1").kernel.shape) == (7, 7, 3, 96)
    assert model.get_layer("block1_conv1").strides == (2, 2)
    # Documented count: AlexNet's minus the first-layer difference.
    assert get_spec("zfnet").param_checks[0].expected == 62_378_344 - (34_944 - 14_208)


# === VGG ===


def test_vgg16_feature_map_and_keras_layer_names(fresh_session):
    model = build_model("vgg16", include_top=False, input_shape=(224, 224, 3))
    assert model.output_shape == (None, 7, 7, 512)
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    ours = build_model("vgg16", include_top=False, input_shape=(32, 32, 3))
    assert [layer.name for layer in ours.layers] == [layer.name for layer in reference.layers]
    assert get_spec("vgg16").preprocess == "caffe"


def test_vgg19_layer_names_match_keras(fresh_session):
    reference = keras.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
    ours = build_model("vgg19", include_top=False, input_shape=(32, 32, 3))
    assert [layer.name for layer in ours.layers] == [layer.name for layer in reference.layers]
    assert ours.count_params() == reference.count_params()


def test_vgg_bn_layout(fresh_session):
    model = build_model("vgg16_bn", include_top=False, input_shape=(32, 32, 3))
    names = [layer.name for layer in model.layers]
    assert names[1:4] == ["block1_conv1", "block1_conv1_bn", "block1_conv1_relu"]
    assert model.get_layer("block1_conv1").use_bias is False
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 13
    with pytest.raises(ValueError, match="No ImageNet weights.*Received: weights='imagenet'"):
        build_model("vgg16_bn", weights="imagenet")


def test_vgg_imagenet_uses_the_keras_file(tmp_path, monkeypatch, fresh_session):
    """weights='imagenet' asks keras.utils.get_file for Keras's own file (legacy .h5)."""
    shape = (32, 32, 3)
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=shape)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        return str(path)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    ours = build_model("vgg16", weights="imagenet", include_top=False, input_shape=shape)
    assert calls == [
        (
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            {"cache_subdir": "models", "file_hash": "6d6bbae143d832006294945121d1f1fc"},
        )
    ]
    assert_same_outputs(reference, ours, random_images(shape), rtol=1e-6, atol=1e-6)


def test_vgg_imagenet_without_network_says_where_to_put_the_file(monkeypatch, fresh_session):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", "/somewhere/.keras")
    with pytest.raises(TLKitError, match="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") as e:
        vgg_module.VGG19(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    assert "/somewhere/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(
        e.value
    )
    assert "network unreachable" in str(e.value)
    with pytest.raises(ValueError, match="needs classes=1000.*Received: classes=10"):
        build_model("vgg16", weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="3 input channels"):
        build_model("vgg16", weights="imagenet", include_top=False, input_shape=(32, 32, 1))


def test_weights_file_argument_is_checked(tmp_path):
    missing = tmp_path / "missing.weights.h5"
    with pytest.raises(FileNotFoundError, match="Received: weights="):
        build_model("lenet5", weights=str(missing))

