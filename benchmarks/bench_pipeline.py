"""Input-pipeline throughput vs. the training step, on this machine.

Measures images/s of ``Data.dataset(training=True, augment=policy, backend=...)`` for every
backend and policy at 128x128, the folder decode paths (hygiene scan + cache, and the
streaming decode in tf.data), and the training step of MobileNetV2 (``weights=None``,
128x128, batch 32). Each pipeline figure is printed as a ratio to the training step: a
ratio above 1 means the pipeline feeds the model faster than it trains, so it is not the
bottleneck (with prefetch, the two overlap).

Images are crops of scikit-image's sample photos (no network).

    python benchmarks/bench_pipeline.py --quick      # about 1-2 minutes on 2 CPU cores
    python benchmarks/bench_pipeline.py --batches 40 --images 1024
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def sample_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random crops of scikit-image sample photos, uint8 (n, size, size, 3), 4 labels."""
    from PIL import Image
    from skimage import data as skd

    photos = [skd.astronaut(), skd.coffee(), skd.chelsea(), skd.rocket()]
    rng = np.random.default_rng(seed)
    x = np.empty((n, size, size, 3), np.uint8)
    y = rng.integers(0, 4, n)
    for i in range(n):
        p = photos[y[i]]
        s = int(rng.integers(min(p.shape[:2]) // 2, min(p.shape[:2])))
        oy = int(rng.integers(0, p.shape[0] - s + 1))
        ox = int(rng.integers(0, p.shape[1] - s + 1))
        x[i] = np.asarray(Image.fromarray(p[oy:oy + s, ox:ox + s]).resize((size, size)))
    return x, y


def time_dataset(ds, batches: int, batch_size: int, warmup: int = 2) -> float:
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - t)


def train_step_rate(size: int, batch_size: int, steps: int) -> float:
    import keras

    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None, classes=4)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 1, (batch_size, size, size, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[np.arange(batch_size) % 4]
    for _ in range(2):
        model.train_on_batch(x, y)
    t = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - t)


def step_rates(backbone: str, size: int, batch_size: int, steps: int) -> dict[str, float]:
    """Training-step images/s of ``backbone`` (``"mobilenet_v2"`` or ``"resnet50"``, Keras
    Applications, ``weights=None``, avg pooling + softmax head) on one in-memory batch:
    ``finetune`` (every layer trainable, BatchNormalization frozen, backbone in inference
    mode as tl_kit trains it) and ``frozen`` (head-only with the backbone in the loop)."""
    import keras

    builders = {"mobilenet_v2": keras.applications.MobileNetV2,
                "resnet50": keras.applications.ResNet50}
    x = np.random.default_rng(0).uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[np.arange(batch_size) % 4]
    out = {}
    for mode in ("finetune", "frozen"):
        keras.backend.clear_session()
        base = builders[backbone](input_shape=(size, size, 3), include_top=False, weights=None)
        base.trainable = mode == "finetune"
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        inp = keras.Input((size, size, 3))
        feat = keras.layers.GlobalAveragePooling2D()(base(inp, training=False))
        model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(feat))
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        for _ in range(2):
            model.train_on_batch(x, y)
        t = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        out[mode] = steps * batch_size / (time.perf_counter() - t)
    return out


def pipeline_vs_step(size: int = 128, batch_size: int = 32, batches: int = 10, images: int = 256,
                     steps: int = 4, policy: str = "standard",
                     backbones: tuple[str, ...] = ("mobilenet_v2", "resnet50")) -> dict:
    """Images/s of ``Data.dataset(training=True, augment=policy)`` per backend against the
    training step of each backbone (target: pipeline >= 1.5x the fine-tuning step)."""
    from tl_kit.augment import BACKENDS
    from tl_kit.data import load_data

    x, y = sample_images(images, size)
    data = load_data((x, y), image_size=(size, size), validation_split=0.0)
    pipes = {}
    for backend in BACKENDS:
        ds = data.dataset("train", batch_size=batch_size, training=True, augment=policy,
                          backend=backend, repeat=True)
        pipes[backend] = time_dataset(ds, batches, batch_size)
    steps_by = {b: step_rates(b, size, batch_size, steps) for b in backbones}
    rows = []
    for b, rates in steps_by.items():
        for backend, rate in pipes.items():
            rows.append({"backbone": b, "backend": backend, "pipeline_images_per_s": rate,
                         "finetune_step_images_per_s": rates["finetune"],
                         "frozen_step_images_per_s": rates["frozen"],
                         "ratio_finetune": rate / rates["finetune"],
                         "ratio_frozen": rate / rates["frozen"]})
    return {"image_size": size, "batch": batch_size, "policy": policy, "rows": rows,
            "pipeline_batches": batches, "step_steps": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few batches (about 1-2 minutes)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=None, help="timed batches per configuration")
    ap.add_argument("--images", type=int, default=None, help="images in the synthetic set")
    ap.add_argument("--steps", type=int, default=None, help="timed MobileNetV2 training steps")
    args = ap.parse_args(argv)
    batches = args.batches or (6 if args.quick else 30)
    n_img = args.images or (192 if args.quick else 1024)
    steps = args.steps or (3 if args.quick else 15)
    bs, size = args.batch_size, args.size

    import tensorflow as tf

    import tl_kit.data as tdata
    from tl_kit.augment import BACKENDS, POLICIES
    from tl_kit.data import load_data

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s), "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; {size}x{size}, batch {bs}")
    t0 = time.perf_counter()
    train = train_step_rate(size, bs, steps)
    print(f"MobileNetV2 training step (weights=None): {train:8.1f} images/s")

    x, y = sample_images(n_img, size)
    data = load_data((x, y), image_size=(size, size), validation_split=0.0)
    rows = []
    for backend in BACKENDS:
        for policy in POLICIES:
            ds = data.dataset("train", batch_size=bs, training=True, augment=policy,
                              backend=backend, repeat=True)
            rows.append((f"{backend:<15} {policy:<9}", time_dataset(ds, batches, bs)))

    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        n_files = min(n_img, 96 if args.quick else 512)
        for i in range(n_files):
            d = os.path.join(tmp, f"c{y[i]}")
            os.makedirs(d, exist_ok=True)
            Image.fromarray(x[i]).resize((size * 2, size * 2)).save(os.path.join(d, f"{i}.jpg"),
                                                                      quality=90)
        t = time.perf_counter()
        folder = load_data(tmp, image_size=(size, size), validation_split=0.0)
        rows.append(("folder scan+decode (cached)", n_files / (time.perf_counter() - t)))
        limit = tdata.CACHE_LIMIT_BYTES
        tdata.CACHE_LIMIT_BYTES = 0
        try:
            stream = load_data(tmp, image_size=(size, size), validation_split=0.0)
        finally:
            tdata.CACHE_LIMIT_BYTES = limit
        ds = stream.dataset("train", batch_size=bs, training=True, augment="standard", repeat=True)
        rows.append(("folder streaming + standard", time_dataset(ds, max(2, batches // 2), bs)))
        del folder

    print(f"\n{'pipeline':<31} {'images/s':>9} {'x train step':>13}")
    for name, rate in rows:
        print(f"{name:<31} {rate:9.1f} {rate / train:12.2f}x")
    print(f"\n(ratio > 1: the pipeline outpaces training; total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
