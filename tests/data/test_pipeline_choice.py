"""The pipeline choice (``pipeline="auto" | "memory" | "stream"``) and seeded augmentation:
the same batches on every run, on either pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tl_kit.data import load_data
from tl_kit.errors import UserError

SIZE = (24, 24)


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """Two classes of 16 noisy JPEGs each (flips and crops change their pixels)."""
    root = tmp_path_factory.mktemp("textured")
    rng = np.random.default_rng(0)
    for k, name in enumerate(("a", "b")):
        (root / name).mkdir()
        for i in range(16):
            arr = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
            arr[..., k] = np.linspace(0, 255, 40, dtype=np.uint8)  # a left-right ramp
            Image.fromarray(arr).save(root / name / f"{i:02d}.jpg", quality=90)
    return root


def test_pipeline_argument_overrides_the_cache_limit(textured, monkeypatch):
    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # auto would stream
    memory = load_data(textured, image_size=SIZE, pipeline="memory")
    assert memory.examples("train").pixels is not None
    assert memory.info.pipeline.startswith("memory: pipeline='memory' asked (32 files x 24x24x3")
    assert load_data(textured, image_size=SIZE).examples("train").pixels is None
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 1 << 30)  # auto would keep them
    streamed = load_data(textured, image_size=SIZE, pipeline="stream")
    assert streamed.examples("train").pixels is None
    assert streamed.info.pipeline.startswith("stream: pipeline='stream' asked")
    assert streamed.paths("val") == memory.paths("val")
    np.testing.assert_array_equal(streamed.arrays("val")[0], memory.arrays("val")[0])
    # split folders take the choice too
    split = {"train": str(textured), "val": str(textured)}
    both = load_data(split, image_size=SIZE, pipeline="stream")
    assert both.info.pipeline.count("pipeline='stream' asked") == 2


def test_a_bad_pipeline_or_pixels_above_ram_are_refused_before_any_decode(textured, monkeypatch,
                                                                         checked):
    from tl_kit.data import cache

    with pytest.raises(UserError, match=r"`pipeline` must be one of auto, memory, stream.*"
                                        r"pipeline='disk'"):
        load_data(textured, image_size=SIZE, pipeline="disk")
    monkeypatch.setattr(cache, "physical_memory", lambda: 60_000)
    load_data(textured, image_size=SIZE, pipeline="memory")  # 32 files x 24x24x3 = 55,296 B fit
    before = list(checked)
    with pytest.raises(UserError) as e:
        load_data(textured, image_size=(48, 48), pipeline="memory")
    msg = str(e.value)
    assert str(textured) in msg and "0.0 GiB of RAM" in msg and "pipeline='stream'" in msg
    assert checked == before  # refused before the scan decoded anything
    # streaming needs no room for the pixels
    assert load_data(textured, image_size=(48, 48), pipeline="stream").examples("train").pixels is None


@pytest.mark.parametrize("backend", ["tf", "albumentations"])
def test_seeded_augmentation_is_the_same_on_every_run_and_either_pipeline(textured, backend):
    """Batches augment in a parallel map; each takes its own seed from the pipeline, so the
    run does not depend on which call ran first (with one shared generator it did)."""
    import keras

    def epochs(pipeline: str) -> list[np.ndarray]:
        data = load_data(textured, image_size=SIZE, validation_split=0.0, pipeline=pipeline)
        keras.utils.set_random_seed(0)
        ds = data.dataset("train", batch_size=2, training=True, augment="standard",
                          backend=backend)
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2)]

    first, again, streamed = epochs("memory"), epochs("memory"), epochs("stream")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], streamed[0])
    np.testing.assert_array_equal(first[1], streamed[1])
    assert not np.array_equal(first[0], first[1])  # still new augmentations every epoch
    plain = load_data(textured, image_size=SIZE, validation_split=0.0).arrays("train")[0]
    assert not np.array_equal(np.sort(first[0], axis=None), np.sort(plain, axis=None))


def test_training_gives_the_same_weights_in_memory_and_streamed(textured, tmp_path):
    """The choice changes speed and memory only: same pixels, same order, same augmentation."""
    from tl_kit import finetune
    from tl_kit.recipes import scratch_recipe

    weights = {}
    for pipeline in ("memory", "stream"):
        learner = finetune("lenet5", num_classes=2, weights=None, image_size=24, verbose=0,
                           run_dir=tmp_path / pipeline, pipeline=pipeline, save_model=False)
        learner.fit(str(textured), recipe=scratch_recipe().with_budget(epochs=2, batch_size=4))
        assert f"data pipeline: {pipeline}: pipeline='{pipeline}' asked" in (tmp_path / pipeline / "train.log").read_text()
        weights[pipeline] = learner.model.get_weights()
    for a, b in zip(weights["memory"], weights["stream"], strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="pipeline='fast'"):
        finetune("lenet5", num_classes=2, weights=None, pipeline="fast")
