"""Per-worker input pipelines (tl_kit.train.worker_inputs) and imprinting from per-worker
statistics. The two-worker run itself is tests/distribute/test_learner_distributed.py."""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from tl_kit.errors import UserError
from tl_kit.train import worker_inputs as wi
from tl_kit.train.feature_cache import class_statistics, imprint


def _simulated_steps(n: int, workers: int, replicas: int, batch: int) -> int:
    """Steps of one pass, counted the long way: each worker's shard (every W-th example),
    its per-replica batches, pulled by its replicas one per step."""
    local, b = replicas // workers, batch // replicas
    steps = []
    for i in range(workers):
        m = len(range(i, n, workers))
        steps.append(math.ceil(math.ceil(m / b) / local))
    return max(steps)


@pytest.mark.parametrize("workers,local", [(2, 1), (3, 1), (2, 2), (4, 2)])
def test_shard_steps_is_the_longest_worker_pass(workers, local):
    replicas = workers * local
    for n in range(workers, 60):
        for batch in range(replicas, 4 * replicas + 1, replicas):
            assert wi.shard_steps(n, workers, replicas, batch) == _simulated_steps(n, workers, replicas, batch), (n, batch)


def test_global_batch_is_rounded_up_to_the_replicas_and_logged():
    strategy = SimpleNamespace(num_replicas_in_sync=4)
    lines: list[str] = []
    assert wi.global_batch(strategy, 30, lines.append) == 32
    assert lines == ["global batch 30 -> 32: a multiple of the 4 replicas, each worker reading its own files"]
    assert wi.global_batch(strategy, 32, lines.append) == 32 and len(lines) == 1
    assert wi.global_batch(strategy, 3) == 4  # at least one per replica
    # a batch holding the whole split (39 over 2 workers) still takes one step per epoch
    assert wi.shard_steps(39, 2, 2, wi.global_batch(SimpleNamespace(num_replicas_in_sync=2), 39)) == 1
    assert wi.per_replica_batch(strategy, 32) == 8
    with pytest.raises(UserError, match="multiple of the 4 replicas.*global_batch=30"):
        wi.per_replica_batch(strategy, 30)


def test_outside_a_cluster_nothing_is_sharded():
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    data = SimpleNamespace(size=lambda split: 100)
    assert wi.num_workers(strategy) == 1 and wi.worker_index(strategy) == 0
    assert not wi.uses_file_sharding(strategy, data, "train")
    value = np.arange(5.0)
    assert np.array_equal(wi.sum_over_workers(strategy, value), value)


def _dense(k: int, d: int) -> keras.layers.Dense:
    layer = keras.layers.Dense(k)
    layer.build((None, d))
    return layer


def test_imprint_from_two_workers_statistics_equals_imprint_on_all_features():
    rng = np.random.default_rng(0)
    k, d = 3, 6
    feats = rng.normal(size=(40, d)) + np.repeat(np.eye(k, d) * 4, [14, 13, 13], axis=0)
    onehot = np.eye(k)[np.repeat(np.arange(k), [14, 13, 13])]
    whole, half = _dense(k, d), _dense(k, d)
    imprint(whole, feats, onehot)
    mine, theirs = slice(0, None, 2), slice(1, None, 2)  # worker 0's and worker 1's files
    others = class_statistics(feats[theirs], onehot[theirs], k)
    imprint(half, feats[mine], onehot[mine], total=lambda stats: stats + others)
    np.testing.assert_allclose(half.kernel.numpy(), whole.kernel.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(half.bias.numpy(), whole.bias.numpy(), rtol=1e-5, atol=1e-6)
    # and it is the nearest-class-mean classifier, scaled by 2 / the mean within-class spread
    labels = onehot.argmax(1)
    mu = np.stack([feats[labels == c].mean(0) for c in range(k)])
    a = 2.0 / np.mean(np.sum((feats - mu[labels]) ** 2, axis=1))
    np.testing.assert_allclose(whole.kernel.numpy(), a * mu.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole.bias.numpy(), -0.5 * a * np.sum(mu**2, axis=1), rtol=1e-5, atol=1e-6)
