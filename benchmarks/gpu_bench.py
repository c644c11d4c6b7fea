"""Training throughput of ResNet50: float32 vs mixed precision, XLA off vs on, and the cost
of MirroredStrategy on one device.

    python benchmarks/gpu_bench.py --out results.json                 # full: 224 px, batch 256
    python benchmarks/gpu_bench.py --quick --out /tmp/quick.json      # tiny, runs on a CPU
    KERAS_BACKEND=jax python benchmarks/gpu_bench.py --out jax.json   # machines without TF

Each mode builds a fresh ResNet50 (``keras.applications``, ``weights=None``, ``avg``
pooling and a float32 softmax head as tl_kit's learner builds it; ``--model tl_kit:NAME``
uses a tl_kit builder instead) and trains it with ``model.fit`` on one synthetic batch
repeated (uint8 pixels, cast to float32 on the device, so the host-to-device copy is a
quarter of float32's). A warm-up ``fit`` (tracing, XLA compilation) is excluded from the
timing. Images/s = timed steps x batch / wall time of the timed ``fit``.

Modes: ``float32``, ``float32_xla``, ``mixed_float16``, ``mixed_float16_xla``,
``mixed_bfloat16``, ``mixed_bfloat16_xla``, ``mixed`` / ``mixed_xla`` (the policy
``tl_kit.distribute.resolve_precision("auto")`` picks; on a CPU, mixed_bfloat16), and on the
TensorFlow backend ``default_strategy`` / ``mirrored_strategy`` (same settings, XLA off,
``MirroredStrategy`` over one device vs no strategy -> overhead ratio). Under
``KERAS_BACKEND=jax`` the tf.distribute modes are skipped with a note, and "XLA off" means
Keras's eager (un-jitted) JAX execution.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

ALL_MODES = (
    "float32",
    "float32_xla",
    "mixed_float16",
    "mixed_float16_xla",
    "mixed_bfloat16",
    "mixed_bfloat16_xla",
    "mixed",
    "mixed_xla",
    "default_strategy",
    "mirrored_strategy",
)
DEFAULT_MODES = (
    "float32",
    "mixed",
    "mixed_xla",
    "float32_xla",
    "mixed_float16_xla",
    "mixed_bfloat16_xla",
    "default_strategy",
    "mirrored_strategy",
)
TF_ONLY = ("default_strategy", "mirrored_strategy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny settings (32 px, batch 4, 2 steps)")
    p.add_argument("--batch", type=int, default=256, help="global batch size (default 256)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per mode")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument(
        "--model",
        default="resnet50",
        help="'resnet50' (keras.applications), 'tl_kit:NAME', or 'tiny' (smoke tests)",
    )
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"comma list of {ALL_MODES}")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.image_size, args.steps, args.warmup = 4, 32, 2, 1
        args.classes = 10
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in ALL_MODES]
    if unknown:
        p.error(f"unknown mode(s) {unknown}; choose from {ALL_MODES}. Received: modes={args.modes}")
    return args


def gpu_caps(backend: str) -> list[tuple[int, int]]:
    """Compute capabilities of the visible GPUs, without needing TensorFlow under JAX."""
    if backend == "tensorflow":
        from tl_kit.distribute import gpu_compute_capabilities

        return gpu_compute_capabilities()
    if backend == "jax":
        import jax

        caps = []
        for d in jax.devices():
            if d.platform == "gpu":
                major, minor = str(getattr(d, "compute_capability", "0.0")).split(".")[:2]
                caps.append((int(major), int(minor)))
        return caps
    return []


def auto_policy(caps: list[tuple[int, int]]) -> str:
    """tl_kit's rule (tl_kit.distribute.resolve_precision), usable without TensorFlow."""
    if caps and min(caps) >= (8, 0):
        return "mixed_bfloat16"
    if caps and min(caps) >= (7, 0):
        return "mixed_float16"
    return "mixed_bfloat16"  # CPU: exercise a mixed path anyway (tl_kit itself uses float32)


def mode_settings(mode: str, caps: list[tuple[int, int]]) -> tuple[str, bool, str]:
    """(dtype policy, jit_compile, strategy) for a mode."""
    if mode in TF_ONLY:
        return "float32", False, "mirrored" if mode == "mirrored_strategy" else "default"
    jit = mode.endswith("_xla")
    base = mode.removesuffix("_xla")
    policy = auto_policy(caps) if base == "mixed" else base
    return policy, jit, "default"


def build_model(name: str, size: int, classes: int):
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    if name.startswith("tl_kit:"):
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tl_kit.models.registry import build_model as tl_build

        backbone = tl_build(
            name.split(":", 1)[1], include_top=False, weights=None, input_shape=(size, size, 3)
        )
    elif name == "tiny":  # smoke tests of this script only
        backbone = keras.Sequential(
            [
                keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            ],
            name="tiny_backbone",
        )
    elif name == "resnet50":
        backbone = keras.applications.ResNet50(
            include_top=False, weights=None, input_shape=(size, size, 3)
        )
    else:
        raise ValueError(
            f"--model must be 'resnet50', 'tl_kit:NAME' or 'tiny'. Received: model={name!r}"
        )
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(
        classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=f"bench_{name.replace(':', '_')}")


def make_data(backend: str, batch: int, size: int, classes: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, classes, size=(batch,)).astype("int32")
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)

    if backend == "jax":  # keep the batch on the accelerator: time the model, not the copy
        import jax

        x, y = jax.device_put(x), jax.device_put(y)

    def forever():
        while True:
            yield x, y

    return forever()


def run_mode(mode: str, args: argparse.Namespace, backend: str, caps) -> dict:
    import keras

    policy, jit, strategy_name = mode_settings(mode, caps)
    keras.backend.clear_session()  # first: clear_session also resets the dtype policy
    keras.mixed_precision.set_global_policy(policy)
    scope = None
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = (
            tf.distribute.MirroredStrategy(devices=_one_device())
            if strategy_name == "mirrored"
            else tf.distribute.get_strategy()
        )
        scope = strategy.scope()
    data = make_data(backend, args.batch, args.image_size, args.classes)
    t0 = time.perf_counter()
    if scope is not None:
        with scope:
            model = _compiled(args, jit)
    else:
        model = _compiled(args, jit)
    model.fit(data, epochs=1, steps_per_epoch=args.warmup, verbose=0)
    warm_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    hist = model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
    elapsed = time.perf_counter() - t1
    loss = float(hist.history["loss"][-1])
    keras.mixed_precision.set_global_policy("float32")
    return {
        "mode": mode,
        "policy": policy,
        "backbone_compute_dtype": model.layers[2].compute_dtype,  # what actually ran
        "jit_compile": jit,
        "strategy": strategy_name,
        "images_per_s": args.steps * args.batch / elapsed,
        "step_ms": 1000 * elapsed / args.steps,
        "warmup_s": warm_s,
        "final_loss": loss,
    }


def _one_device() -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [gpus[0].name] if gpus else ["/cpu:0"]


def _compiled(args, jit: bool):
    import keras

    model = build_model(args.model, args.image_size, args.classes)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit,
    )
    return model


def device_name(backend: str) -> str:
    try:
        if backend == "jax":
            import jax

            d = jax.devices()[0]
            return f"{d.platform}:{getattr(d, 'device_kind', d)}"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return "gpu:" + tf.config.experimental.get_device_details(gpus[0]).get(
                    "device_name", "?"
                )
    except Exception:
        pass
    return "cpu:" + (platform.processor() or platform.machine())


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    backend = keras.backend.backend()
    caps = gpu_caps(backend)
    results, skipped = [], []
    for mode in args.modes:
        if mode in TF_ONLY and backend != "tensorflow":
            skipped.append(
                {
                    "mode": mode,
                    "reason": f"tf.distribute needs the TensorFlow backend (backend={backend})",
                }
            )
            continue
        try:
            results.append(run_mode(mode, args, backend, caps))
        except Exception as exc:  # one failing mode should not hide the others
            skipped.append({"mode": mode, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"})
        print(f"  done: {mode}", file=sys.stderr, flush=True)
    by_mode = {r["mode"]: r for r in results}
    ratios = {}
    if "float32" in by_mode:
        base = by_mode["float32"]["images_per_s"]
        ratios.update({f"{m}/float32": r["images_per_s"] / base for m, r in by_mode.items()})
    if "default_strategy" in by_mode and "mirrored_strategy" in by_mode:
        ratios["mirrored_strategy/default_strategy"] = (
            by_mode["mirrored_strategy"]["images_per_s"]
            / by_mode["default_strategy"]["images_per_s"]
        )
    report = {
        "backend": backend,
        "keras": keras.__version__,
        "device": device_name(backend),
        "compute_capability": caps,
        "model": args.model,
        "batch": args.batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "results": results,
        "ratios": ratios,
        "skipped": skipped,
    }
    print(
        f"\n{args.model} training throughput - backend {backend}, {report['device']}, "
        f"{args.image_size}px, batch {args.batch}, {args.steps} timed steps"
    )
    print(
        f"{'mode':<20}{'policy':<16}{'XLA':<6}{'strategy':<10}{'img/s':>10}{'ms/step':>10}{'vs f32':>8}"
    )
    base = by_mode.get("float32", {}).get("images_per_s")
    for r in results:
        rel = f"{r['images_per_s'] / base:.2f}x" if base else "-"
        print(
            f"{r['mode']:<20}{r['policy']:<16}{'on' if r['jit_compile'] else 'off':<6}"
            f"{r['strategy']:<10}{r['images_per_s']:>10.1f}{r['step_ms']:>10.1f}{rel:>8}"
        )
    if "mirrored_strategy/default_strategy" in ratios:
        print(
            f"MirroredStrategy (1 device) / default strategy: {ratios['mirrored_strategy/default_strategy']:.3f}"
        )
    for s in skipped:
        print(f"skipped {s['mode']}: {s['reason']}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
