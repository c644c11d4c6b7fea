"""Each worker reads only its own files under ``MultiWorkerMirroredStrategy``.

TensorFlow shards an in-process pipeline by DATA by default. Every worker then runs the
whole pipeline: it lists, decodes and augments every file, and keeps only its slice of
each global batch. With W workers, each one does W times the input work that training
needs. Here every worker instead builds its own pipeline through
``strategy.distribute_datasets_from_function``. The pipeline is ``Data.dataset(shard=(W,
i))``, which holds every W-th example from worker i's position. It is sharded by file
before any decode, and batched by the per-replica batch (the global batch over all
replicas). The steps stay in step without extra code:

* One pass over a finite dataset: workers whose shard is one file shorter get an empty
  batch in the last step. TensorFlow all-reduces whether any worker still has data
  (partial-batch handling, on in multi-worker mode); the replica step skips the model
  for an empty batch (zero loss, zero gradients). The loss of a step is divided by the
  examples in the GLOBAL batch, all-reduced, so that step is weighted exactly.
* A repeated dataset (a small set cycled to ``min_steps_per_epoch``): every worker runs
  the same ``steps_per_epoch``.

Outside a multi-worker cluster (one process, or ``MirroredStrategy`` on one machine)
nothing here applies, and datasets are distributed as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tl_kit.data.pipeline import worker_shard
from tl_kit.errors import UserError

__all__ = ["global_batch", "num_workers", "per_replica_batch", "shard_steps", "sharded_dataset",
           "sharded_steps", "sum_over_workers", "uses_file_sharding", "worker_index"]


def num_workers(strategy) -> int:
    """Workers (processes) of ``strategy``'s cluster: 1 unless it is a
    ``MultiWorkerMirroredStrategy`` over several tasks (:func:`tl_kit.data.worker_shard`)."""
    return (worker_shard(strategy) or (1, 0))[0]


def worker_index(strategy) -> int:
    """This worker's input pipeline in a multi-worker cluster (:func:`tl_kit.data.worker_shard`);
    0 elsewhere."""
    return (worker_shard(strategy) or (1, 0))[1]


def uses_file_sharding(strategy, data, split: str) -> bool:
    """Whether ``split`` is read one shard per worker: a multi-worker cluster, and at least
    one example per worker (a smaller split is read whole by every worker, sharded by DATA)."""
    w = num_workers(strategy)
    return w > 1 and data.size(split) >= w


def global_batch(strategy, batch: int, log: Callable[[str], None] | None = None) -> int:
    """``batch`` rounded up to a multiple of the replicas (each replica pulls an equal share
    from its worker's pipeline), logged when it changes. Up, not down: a batch that holds
    the whole split still takes it in one step."""
    replicas = int(strategy.num_replicas_in_sync)
    fitted = math.ceil(batch / replicas) * replicas
    if fitted != batch and log is not None:
        log(f"global batch {batch} -> {fitted}: a multiple of the {replicas} replicas, each "
            f"worker reading its own files")
    return fitted


def per_replica_batch(strategy, global_batch: int) -> int:
    """The batch each replica takes of ``global_batch`` (a multiple of the replicas)."""
    replicas = int(strategy.num_replicas_in_sync)
    if global_batch < replicas or global_batch % replicas:
        raise UserError(
            f"Under MultiWorkerMirroredStrategy each worker reads only its own files, so the global "
            f"batch must be a multiple of the {replicas} replicas (each takes an equal share). "
            f"Received: global_batch={global_batch}")
    return global_batch // replicas


def shard_steps(n: int, workers: int, replicas: int, global_batch: int) -> int:
    """Steps of one pass over ``n`` examples read one shard per worker (``replicas`` in all,
    the same number on each worker, ``global_batch`` a multiple of them): the largest shard,
    ``ceil(n / workers)`` examples, in per-replica batches over the worker's replicas."""
    local = max(1, replicas // workers)
    batches = math.ceil(math.ceil(n / workers) / (global_batch // replicas))
    return math.ceil(batches / local)


def sharded_steps(n: int, strategy, global_batch: int) -> int:
    """:func:`shard_steps` of ``strategy``'s cluster (checks the batch against the replicas)."""
    per_replica_batch(strategy, global_batch)
    return shard_steps(n, num_workers(strategy), int(strategy.num_replicas_in_sync), global_batch)


def sharded_dataset(strategy, make: Callable[[int, tuple[int, int]], object], global_batch: int):
    """A distributed dataset with one pipeline per worker: ``make(per_replica_batch,
    (num_workers, worker_index))`` builds this worker's ``tf.data.Dataset`` of its own files,
    batched by the per-replica batch (``custom_fit`` accepts the result as it is)."""
    import tensorflow as tf

    batch = per_replica_batch(strategy, global_batch)

    def dataset_fn(ctx: tf.distribute.InputContext):
        return make(batch, (int(ctx.num_input_pipelines), int(ctx.input_pipeline_id)))

    return strategy.distribute_datasets_from_function(dataset_fn)


def sum_over_workers(strategy, value: np.ndarray) -> np.ndarray:
    """``value`` summed over the workers of a multi-worker cluster, on every worker (one
    all-reduce; every worker must call it at the same point). ``value`` itself elsewhere."""
    import tensorflow as tf

    workers = num_workers(strategy)
    if workers == 1:
        return np.asarray(value)
    local = int(strategy.num_replicas_in_sync) // workers  # each local replica repeats the value
    arr = np.asarray(value, dtype=np.float64)
    per_replica = strategy.run(lambda: tf.constant(arr))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
    return total / local
