"""Distribution, precision and a distributed-safe training loop for tl_kit.

One job: decide *where* and *how* a model trains (strategy, precision, XLA) and provide
a training loop that behaves the same on one device, several GPUs and several machines.

Strategies (``resolve_strategy``)
    ``"auto"`` picks ``tf.distribute.MultiWorkerMirroredStrategy`` when ``TF_CONFIG``
    describes a cluster with more than one task, ``tf.distribute.MirroredStrategy`` when
    more than one GPU is visible, otherwise the default strategy. Batch sizes are GLOBAL:
    a dataset passed to ``distribute_dataset``/``custom_fit`` is batched by the global
    batch size and split across replicas by TensorFlow.

Precision (``resolve_precision``)
    ``"auto"`` gives ``"mixed_bfloat16"`` on GPUs with compute capability >= 8.0 (Ampere,
    Hopper: same tensor-core rate as float16 but float32's exponent range, so no loss
    scaling, no skipped steps, no overflow), ``"mixed_float16"`` on 7.x GPUs (Volta,
    Turing: tensor cores but no bfloat16; Keras wraps the optimizer in a
    ``LossScaleOptimizer``), and ``"float32"`` on CPUs and older GPUs. The softmax head of
    the learner's model is built with ``dtype="float32"`` so probabilities stay float32.

XLA (``resolve_jit_compile``)
    ``"auto"`` turns XLA on where a GPU is visible and every layer of the model supports
    it. Keras's own ``"auto"`` switches XLA off under any ``tf.distribute`` strategy and
    for layers such as ``RandomRotation``; tl_kit keeps augmentation in the input pipeline
    (outside the model), and ``custom_fit`` compiles only the per-replica forward/backward
    pass (the cross-replica gradient all-reduce stays outside XLA), so XLA stays on under
    every strategy for ``custom_fit``. For Keras ``model.fit`` (``loop="fit"``) tl_kit
    follows Keras and keeps XLA off under a non-default strategy.

Training loop (``custom_fit``)
    Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585:
    ``_maybe_symbolic_build`` reduces a ``PerReplica`` batch and raises "Attempt to convert
    a value (PerReplica...) to a Tensor"; past that, the per-replica metric reduction
    fails). ``custom_fit`` follows TensorFlow's documented custom-training-loop pattern
    (``strategy.run`` + ``strategy.reduce``, loss averaged over the GLOBAL batch) and adds
    what ``fit`` plus tl_kit's callbacks give: checkpoints at epoch ends on a policy that
    bounds their time and bytes (``checkpoint_interval``), resume from the epoch of the last
    checkpoint, early stopping (optionally on a smoothed monitor) with best-weights restore,
    a stop on a non-finite loss,
    one progress line per epoch, and a Keras-like history. It works for every strategy,
    so single- and multi-worker runs produce the same artefacts.

Example:
```python
from tl_kit import distribute as dist

strategy = dist.resolve_strategy("auto")
dist.apply_precision(dist.resolve_precision("auto"))
with strategy.scope():                      # model, optimizer (and metrics) in the scope
    model = build_my_model()
    optimizer = keras.optimizers.SGD(dist.scale_learning_rate(0.01, 512))
result = dist.custom_fit(model, optimizer, "categorical_crossentropy", train_ds, val_ds,
                         epochs=10, strategy=strategy,
                         checkpoint_dir="runs/x/checkpoints", patience=3)
result.history["val_accuracy"]
```
"""

from tl_kit.distribute.callbacks import AUTO_CHECKPOINT_SECONDS, NonFiniteLossError
from tl_kit.distribute.loop import FitCallbacks, custom_fit
from tl_kit.distribute.precision import (
    PRECISIONS,
    apply_precision,
    gpu_compute_capabilities,
    model_supports_jit,
    resolve_jit_compile,
    resolve_precision,
)
from tl_kit.distribute.result import FitResult
from tl_kit.distribute.strategy import (
    LR_RULES,
    STRATEGIES,
    cluster_size,
    distribute_dataset,
    gather_from_workers,
    is_chief,
    multiworker_strategy,
    resolve_strategy,
    scale_learning_rate,
    worker_dir,
)
from tl_kit.rundir.stage import (
    check_writable,
    load_best,
    prune,
    read_state,
    save_best,
    write_history_csv,
    write_state,
)

__all__ = [
    "AUTO_CHECKPOINT_SECONDS", "FitCallbacks", "FitResult", "LR_RULES", "NonFiniteLossError",
    "PRECISIONS", "STRATEGIES", "apply_precision", "check_writable", "cluster_size", "custom_fit",
    "distribute_dataset", "gather_from_workers", "gpu_compute_capabilities", "is_chief",
    "load_best", "model_supports_jit", "multiworker_strategy", "prune", "read_state",
    "resolve_jit_compile", "resolve_precision", "resolve_strategy", "save_best",
    "scale_learning_rate", "worker_dir", "write_history_csv", "write_state",
]
