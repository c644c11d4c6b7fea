"""Where a model trains: the ``tf.distribute`` strategy, the cluster, and the data across it.

One job: pick the strategy (``resolve_strategy``; ``MultiWorkerMirroredStrategy`` is created
once per process), say which process owns the run directory (``is_chief``, ``worker_dir``),
agree on a value across workers (``gather_from_workers``), shard a globally batched dataset
across replicas (``distribute_dataset``) and scale a learning rate to a global batch size
(``scale_learning_rate``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile

import tensorflow as tf

from tl_kit.errors import UserError

STRATEGIES = ("auto", "mirrored", "multiworker", "default")
LR_RULES = ("linear", "sqrt", None)

# MultiWorkerMirroredStrategy may be created only once per process (it configures the
# eager context's collective server), so the instance is reused.
_MULTIWORKER: tf.distribute.Strategy | None = None


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"The TF_CONFIG environment variable is not valid JSON ({exc}). Received: TF_CONFIG={raw!r}"
        ) from None
    if not isinstance(config, dict):
        raise UserError(f"TF_CONFIG must be a JSON object. Received: TF_CONFIG={raw!r}")
    return config


def cluster_size() -> int:
    """Number of tasks (chief + workers) that ``TF_CONFIG`` describes; 0 without TF_CONFIG."""
    cluster = _tf_config().get("cluster", {}) or {}
    return sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))


def multiworker_strategy() -> tf.distribute.Strategy:
    """This process's ``MultiWorkerMirroredStrategy`` (cluster from ``TF_CONFIG``), created
    on the first call and reused after (TensorFlow allows one per process)."""
    global _MULTIWORKER
    if _MULTIWORKER is None:
        _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
    return _MULTIWORKER


def resolve_strategy(
    strategy: str | tf.distribute.Strategy | None = "auto",
) -> tf.distribute.Strategy:
    """Return the ``tf.distribute.Strategy`` to train under.

    Args:
        strategy: ``"auto"`` (``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes
            a cluster with more than one task, ``MirroredStrategy`` when more than one GPU
            is visible, otherwise the default strategy), ``"mirrored"`` (all local GPUs, or
            the CPU), ``"multiworker"`` (cluster from ``TF_CONFIG``; one local worker
            without it), ``"default"`` (the current/default strategy), ``None`` (same as
            ``"default"``) or a ready ``tf.distribute.Strategy`` (returned as is).

    Call this at the start of the program: ``MultiWorkerMirroredStrategy`` must be created
    before TensorFlow runs other operations, and is created once per process.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy is None:
        strategy = "default"
    if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
        raise UserError(
            f"`strategy` must be one of {', '.join(repr(s) for s in STRATEGIES)} or a "
            f"tf.distribute.Strategy instance. Received: strategy={strategy!r}"
        )
    name = strategy.lower()
    if name == "auto":
        # Read TF_CONFIG before touching devices: listing devices initialises the runtime,
        # after which MultiWorkerMirroredStrategy can no longer be created.
        if cluster_size() > 1:
            return multiworker_strategy()
        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return multiworker_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int | None, dict]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None, {}
    spec = resolver.cluster_spec().as_dict() if resolver.cluster_spec() else {}
    return resolver.task_type, resolver.task_id, spec


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True for the process that owns the run directory.

    Every process is the chief except in a multi-worker cluster, where the chief is task
    ``chief`` (if the cluster has one) or else ``worker`` 0 (TensorFlow's convention).
    """
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    task_type, task_id, spec = _task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and not spec.get("chief") and task_id == 0


def worker_dir(run_dir: str | os.PathLike, strategy: tf.distribute.Strategy | None = None) -> str:
    """Where this process may write: ``run_dir`` for the chief, a private temp dir otherwise.

    Non-chief workers must still take part in saving (saving a mirrored variable is a
    collective operation), but their files go to
    ``<tmp>/tl_kit_workers/<hash of run_dir>/<task_type>_<task_id>`` (stable within a
    machine, so a restarted worker finds its own files) and never into the run directory.
    """
    run_dir = os.fspath(run_dir)
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    if is_chief(strategy):
        return run_dir
    task_type, task_id, _ = _task(strategy)
    key = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), "tl_kit_workers", key, f"{task_type}_{task_id}")


def gather_from_workers(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """Every replica's ``value`` (replicas of one worker repeat that worker's value, workers in
    task order), on every worker, by one all-gather. A single process (default strategy or
    MirroredStrategy) returns ``[value]``. All workers must call it at the same point."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return [int(value)]
    per_replica = strategy.run(lambda: tf.constant([int(value)], tf.int64))
    return [int(v) for v in strategy.gather(per_replica, axis=0).numpy().tolist()]


_FILE_READERS = (b"TFRecordDataset", b"TextLineDataset", b"FixedLengthRecordDataset")


def _reads_files(dataset: tf.data.Dataset) -> bool:
    try:
        graph = dataset._as_serialized_graph().numpy()  # noqa: SLF001 (no public API)
    except Exception:  # pragma: no cover - defensive: fall back to DATA sharding
        return False
    return any(op in graph for op in _FILE_READERS)


def distribute_dataset(
    strategy: tf.distribute.Strategy, dataset: tf.data.Dataset, *, sharding: str = "auto"
) -> tf.distribute.DistributedDataset:
    """Distribute a dataset batched by the GLOBAL batch size across ``strategy``'s replicas.

    Args:
        sharding: how workers of a multi-worker cluster split the data:
            ``"data"`` (``AutoShardPolicy.DATA``: every worker reads the pipeline and keeps
            its slice of each global batch; right for in-memory data and for images read
            with ``tf.io.read_file`` inside a ``map``; every worker runs the same number of
            steps), ``"file"`` (``AutoShardPolicy.FILE``: workers read disjoint files of a
            file-reader dataset such as ``TFRecordDataset``; needs at least as many,
            evenly sized, files as workers), ``"off"``, or ``"auto"``: FILE when the
            pipeline reads files with a TFRecord/TextLine/FixedLengthRecord reader, DATA
            otherwise. Within one machine (``MirroredStrategy``) sharding does not apply.
    """
    if isinstance(dataset, tf.distribute.DistributedDataset):
        return dataset
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"`dataset` must be a tf.data.Dataset batched by the global batch size. "
            f"Received: dataset={type(dataset).__name__}"
        )
    policies = {
        "data": tf.data.experimental.AutoShardPolicy.DATA,
        "file": tf.data.experimental.AutoShardPolicy.FILE,
        "off": tf.data.experimental.AutoShardPolicy.OFF,
    }
    if sharding == "auto":
        sharding = "file" if _reads_files(dataset) else "data"
    if sharding not in policies:
        raise UserError(
            f"`sharding` must be 'auto', 'data', 'file' or 'off'. Received: sharding={sharding!r}"
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policies[sharding]
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def scale_learning_rate(
    lr: float, global_batch: int, base_batch: int = 256, rule: str | None = "linear"
) -> float:
    """Scale a learning rate tuned for ``base_batch`` to ``global_batch``.

    ``"linear"``: ``lr * global_batch / base_batch`` (Goyal et al. 2017, "Accurate, Large
    Minibatch SGD", for SGD with momentum; pair with a warm-up at large batches).
    ``"sqrt"``: ``lr * sqrt(global_batch / base_batch)`` (Krizhevsky 2014, "One weird
    trick"; often the better choice for Adam-type optimizers). ``None``: unchanged.
    Recipes state batch sizes globally, so adding GPUs or workers changes nothing unless
    the global batch changes.
    """
    if rule not in LR_RULES:
        raise UserError(f"`rule` must be 'linear', 'sqrt' or None. Received: rule={rule!r}")
    if global_batch <= 0 or base_batch <= 0:
        raise UserError(
            "`global_batch` and `base_batch` must be positive. "
            f"Received: global_batch={global_batch}, base_batch={base_batch}"
        )
    if rule is None:
        return float(lr)
    ratio = global_batch / base_batch
    return float(lr * (ratio if rule == "linear" else math.sqrt(ratio)))
