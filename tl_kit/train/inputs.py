"""The learner's data: loading it at the model's input size and taking its class names."""

from __future__ import annotations

from tl_kit.errors import UserError
from tl_kit.recipes import Stage
from tl_kit.train import options

__all__ = ["load_learner_data", "adopt_class_names"]


def load_learner_data(learner, data, whole: bool = False):
    """``data`` as a :class:`tl_kit.data.Data` at ``learner``'s input size (its fitted data
    for None). ``whole``: every example (evaluation data, no manifest in the run directory),
    else split by the learner's seed with the split manifest in its run directory; under a
    multi-worker strategy that load's hygiene scan is shared over the workers
    (:mod:`tl_kit.data.shared_scan`)."""
    from tl_kit.data import Data, load_data
    from tl_kit.data.pipeline import worker_shard
    from tl_kit.data.shared_scan import shared_scan
    from tl_kit.train.worker_inputs import sum_over_workers

    if isinstance(data, Data):
        return data
    if data is None:
        if learner.data is None:
            raise UserError("No data: pass a folder, tf.data.Dataset, arrays or 'tfds:NAME'. Received: data=None")
        return learner.data
    names = None if learner.placeholder_names else learner.class_names
    kw = dict(image_size=learner.image_size, channels=learner.channels, num_classes=learner.num_classes,
              class_names=names, pipeline=learner.pipeline)
    if whole:
        return load_data(data, validation_split=0.0, **kw)
    kw.update(seed=learner.seed, run_dir=str(learner.rundir.out))
    shard = worker_shard(learner.strategy)
    if shard is None:
        loaded = load_data(data, **kw)
    else:  # every worker loads its training data here: the hygiene scan is shared over them
        with shared_scan(*shard, lambda v: sum_over_workers(learner.strategy, v)) as share:
            loaded = load_data(data, **kw)
        if share.files:
            learner.log(share.summary())
    _log_folder_load(learner, loaded)
    return loaded


def _log_folder_load(learner, data) -> None:
    """The log lines of a folder load: in memory or streamed and why, and the hygiene index."""
    info = getattr(data, "info", None)
    if info is not None and info.pipeline:
        learner.log(f"data pipeline: {info.pipeline}")
    if info is not None and info.index:
        learner.log(f"hygiene index: {info.index}")


def adopt_class_names(learner, data) -> None:
    """Check the data's number of classes against the model's and, while the learner has
    no real class names (none given, or the "0".."K-1" placeholders), take the data's (a
    folder's sub-folder names)."""
    options.check_num_classes(learner.num_classes, data)
    info = data.info
    if learner.placeholder_names and info.class_names:
        names = [str(c) for c in info.class_names]
        if learner.class_names is not None and names != learner.class_names:
            learner.log(f"class names from the data {info.source!r}: {names}")
        learner.class_names = names
        learner.placeholder_names = names == [str(i) for i in range(len(names))]


def class_weight(stage: Stage, data) -> dict[int, float] | None:
    """The data's balanced class weights when the stage asks for them."""
    if not stage.class_weights:
        return None
    weights = data.info.class_weights
    return {int(k): float(v) for k, v in weights.items()} if weights else None
