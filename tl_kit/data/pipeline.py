"""The :class:`Data` object and its tf.data pipelines: in memory, streaming, sharded.

``Data.dataset(split, ...)`` yields ``(images, labels)`` batches: float32 raw pixels in
``[0, 255]`` of shape ``(B, H, W, C)`` and one-hot float32 labels ``(B, K)``. Images held in
memory (:func:`from_memory`) are gathered by shuffled indices from the array as it is;
folders too large for memory stream (:func:`stream`): each known-good file is decoded in
the tf.data graph by :func:`tl_kit.decode.load_routed` (:func:`tl_kit.decode.load_path`'s
pixels, decoded by the header the hygiene scan recorded, so an epoch reads no header;
Pillow files through ``tf.numpy_function``), and a file that became unreadable since the
scan is dropped with a warning. Both then batch, cast to float32, one-hot the labels,
augment (training only) and prefetch.
"""

from __future__ import annotations

import numpy as np

from tl_kit import decode as _dec
from tl_kit.data.decoding import decode_many, graph_calls
from tl_kit.data.examples import Examples
from tl_kit.data.hygiene import HygieneRecord
from tl_kit.data.info import DatasetInfo
from tl_kit.data.split import SPLIT_ALIASES, SPLITS
from tl_kit.errors import UserError

__all__ = ["Data", "from_memory", "shard_indices", "stream", "worker_shard"]


class Data:
    """Loaded data: ``info`` plus ``dataset(split)`` pipelines and ``arrays(split)``.

    Example:
    ```python
    data = load_data((x, y), image_size=(32, 32))
    ds = data.dataset("train", batch_size=16, training=True, augment="light")
    ```
    """

    def __init__(self, info: DatasetInfo, image_size: tuple[int, int], splits: dict[str, Examples],
                 *, resize: str = "stretch", hygiene: list[HygieneRecord] | None = None,
                 run_dir: str | None = None, seed: int = 0):
        self.info = info
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.resize = resize
        self.hygiene = hygiene or []
        self.run_dir = run_dir
        self.seed = seed
        self._splits = splits

    def __repr__(self) -> str:
        sizes = {s: len(v) for s, v in self._splits.items()}
        return (f"Data(source={self.info.source!r}, classes={self.info.num_classes}, "
                f"image_size={self.image_size}, splits={sizes})")

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def has(self, split: str) -> bool:
        """Whether ``split`` ("train" | "val" | "test") holds any example."""
        s = SPLIT_ALIASES.get(split, split)
        return s in self._splits and len(self._splits[s]) > 0

    def size(self, split: str) -> int:
        """Number of examples in ``split`` (0 when absent)."""
        s = SPLIT_ALIASES.get(split, split)
        return len(self._splits[s]) if s in self._splits else 0

    def examples(self, split: str) -> Examples:
        """The :class:`~tl_kit.data.examples.Examples` of ``split`` as held, not copied:
        ``x`` (the in-memory images, None on the streaming path), ``paths``, ``labels``."""
        return self._get(split)

    def _get(self, split: str) -> Examples:
        s = SPLIT_ALIASES.get(split)
        if s is None:
            raise UserError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        if not self.has(s):
            have = [k for k in SPLITS if self.has(k)]
            raise UserError(f"This data has no {s!r} split (it has {have}). Received: split={split!r}")
        return self._splits[s]

    def in_class_order(self, names: list[str]) -> Data:
        """This data labelled in the class order ``names`` (e.g. a model's), matched by name;
        the images are shared, not copied. Every class of the data must be in ``names``
        (which may hold more, in any order)."""
        from tl_kit.data.info import make_info

        names = [str(c) for c in names]
        unknown = [c for c in self.class_names if c not in names]
        if unknown:
            raise UserError(f"{self.info.source} has class(es) {unknown} that are not among {names}. "
                            f"Received: names={names!r}")
        remap = np.array([names.index(c) for c in self.class_names], np.int64)
        splits = {s: v.relabel(remap[v.labels]) for s, v in self._splits.items()}
        info = make_info(names, self.info.channels, self.info.source,
                         {s: v.labels for s, v in splits.items()}, self.info.skipped)
        info.pipeline, info.index = self.info.pipeline, self.info.index
        return Data(info, self.image_size, splits, resize=self.resize, hygiene=self.hygiene,
                    run_dir=self.run_dir, seed=self.seed)

    def paths(self, split: str) -> list[str] | None:
        """File paths of ``split`` in label order of ``arrays``; None for non-folder data."""
        sp = self._get(split)
        return list(sp.paths) if sp.paths is not None else None

    def labels(self, split: str) -> np.ndarray:
        """Integer labels ``(N,)`` of ``split`` (no decoding)."""
        return self._get(split).labels.copy()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``: float32 images ``(N, H, W, C)`` in [0, 255] and int labels ``(N,)``."""
        sp = self._get(split)
        if sp.in_memory:
            return sp.x.astype(np.float32), sp.labels.copy()
        x = decode_many(sp.paths, self.image_size, self.info.channels, self.resize)
        return x.astype(np.float32), sp.labels.copy()

    def dataset(self, split: str, *, batch_size: int = 32, training: bool = False,
                augment: str | list | None = None, backend: str = "tf",
                shuffle: bool | None = None, repeat: bool = False,
                drop_remainder: bool = False, seed: int | None = None,
                shard: tuple[int, int] | str | None = None, deterministic: bool | None = None):
        """A ``tf.data.Dataset`` of ``(images float32 (B,H,W,C), labels one-hot (B,K))``.

        Augmentation (``tl_kit.augment`` policy or op list) runs only when ``training`` is
        True; ``shuffle`` defaults to ``training``.

        ``shard``: ``(num_workers, worker_index)`` reads only that worker's files (file-level
        sharding, before any decode: :func:`shard_indices`); ``"auto"`` takes them from a
        ``MultiWorkerMirroredStrategy`` in scope (no sharding otherwise); None (default): no
        sharding. TensorFlow's own auto-sharding is then turned off, so no worker reads
        another's files; distribute such a dataset with sharding ``"off"`` and give every
        worker the same number of steps (shards differ by at most one file).

        ``deterministic=True`` keeps the element order fixed for a seed (parallel maps in
        order); the default is deterministic, so a seed reproduces a run;
        ``deterministic=False`` trades that for throughput.
        """
        import tensorflow as tf

        sp = self._get(split)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        shuffle = training if shuffle is None else shuffle
        seed = self.seed if seed is None else seed
        k = self.info.num_classes
        c = self.info.channels
        autotune = tf.data.AUTOTUNE
        shards = worker_shard() if shard == "auto" else shard
        if shards is not None:
            shard_indices(len(sp), *shards)  # checks the arguments
            sp = sp.every(shards[1], shards[0])  # == sp.take(shard_indices(...)), as views
        order = True if deterministic is None else bool(deterministic)
        if sp.in_memory:
            ds = from_memory(sp, batch_size, shuffle, seed, repeat, drop_remainder)
        else:
            ds = stream(sp, self.image_size, c, self.resize, shuffle, seed, order)
            if repeat:
                ds = ds.repeat()
            ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=autotune)

        @tf.autograph.experimental.do_not_convert
        def _to_float(x, y):
            return tf.cast(x, tf.float32), tf.one_hot(tf.cast(y, tf.int32), k, dtype=tf.float32)

        ds = ds.map(_to_float, num_parallel_calls=autotune)
        if training and augment is not None and augment != "none":
            from tl_kit.augment.build import build_augmenter, with_batch_seeds

            fn = build_augmenter(augment, image_size=self.image_size, backend=backend, seed=seed)
            ds = with_batch_seeds(ds, fn, seed, deterministic=order)  # a seed per batch, no race
        options = tf.data.Options()
        options.deterministic = order
        if shards is not None:  # already one worker's files: TF must not shard again
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(autotune)


def shard_indices(n: int, num_shards: int, index: int) -> np.ndarray:
    """Which of ``n`` examples worker ``index`` of ``num_shards`` reads: every
    ``num_shards``-th from ``index`` (disjoint, together all of them, sizes within one)."""
    if not (isinstance(num_shards, (int, np.integer)) and num_shards >= 1
            and isinstance(index, (int, np.integer)) and 0 <= index < num_shards):
        raise UserError(f"`shard` must be (num_workers >= 1, 0 <= worker_index < num_workers). "
                        f"Received: shard={(num_shards, index)!r}")
    if n < num_shards:
        raise UserError(f"{n} example(s) cannot be sharded over {num_shards} workers (each needs "
                        f"at least one). Received: shard={(num_shards, index)!r}")
    return np.arange(index, n, num_shards, dtype=np.int64)


def worker_shard(strategy=None) -> tuple[int, int] | None:
    """``(num_workers, worker_index)`` of ``strategy`` (default: the one in scope) when it is a
    MultiWorkerMirroredStrategy over more than one task, else None. Workers are numbered as
    TensorFlow numbers input pipelines: the ``chief`` task first when there is one, then the
    ``worker`` tasks."""
    import tensorflow as tf

    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    return pipeline_index(resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id)


def pipeline_index(spec: dict, task_type: str | None, task_id: int | None) -> tuple[int, int] | None:
    """``(num_workers, worker_index)`` of task ``task_type:task_id`` in the cluster ``spec``
    (``{"chief": [...], "worker": [...]}``; other task types are not counted), None for a
    single task: the chief first, then the workers in order."""
    chiefs = len(spec.get("chief", []))
    workers = chiefs + len(spec.get("worker", []))
    if workers <= 1:
        return None
    index = 0 if task_type == "chief" else int(task_id or 0) + chiefs
    return workers, index


def from_memory(sp: Examples, batch_size: int, shuffle: bool, seed: int, repeat: bool,
                drop_remainder: bool):
    """In-memory path: batches of ``(images, labels)`` gathered from the split's pixels by
    shuffled indices (:meth:`Examples.images`: the array is read in place, memory-mapped or
    not; no tensor copy of it, no shuffle buffer of images)."""
    import tensorflow as tf

    labels = sp.labels
    n = len(sp)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    dtype = tf.as_dtype(sp.pixels.dtype)
    shape = sp.pixels.shape[1:]

    def gather(i):
        i = np.asarray(i, np.int64)
        return np.asarray(sp.images(i)), labels[i]  # a memory-mapped slice as a plain view

    def _map(i):
        xb, yb = tf.numpy_function(gather, [i], (dtype, tf.int64), stateful=False)
        xb = tf.ensure_shape(xb, (None, *shape))
        return xb, tf.ensure_shape(yb, (None,))

    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)


def stream(sp: Examples, size, channels: int, mode: str, shuffle: bool, seed: int,
           deterministic: bool | None = None):
    """Streaming path: (uint8 image, label) decoded inside the tf.data graph by
    :func:`tl_kit.decode.load_routed` (:func:`tl_kit.decode.load_path`'s pixels, by the
    header the hygiene scan read: ``sp.header``); Pillow files (``sp.pil``) through
    ``numpy_function``. A file broken since the scan is dropped with a warning (never a
    crash mid-epoch)."""
    import tensorflow as tf

    h, w = size
    n = len(sp)
    header = sp.header if sp.header is not None else np.full((n, 2), -1, np.int32)
    codes = _dec.route_codes(header, size, mode)
    routes = np.unique(codes[~sp.pil]) if (~sp.pil).any() else np.asarray([_dec.ROUTE_HEADER])
    # each file's position among the routes that occur (a Pillow file's is never used)
    branch = np.minimum(np.searchsorted(routes, codes), len(routes) - 1).astype(np.int32)
    routes = routes.tolist()
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(sp.paths), sp.pil, sp.labels, branch))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    any_pil = bool(sp.pil.any())

    def _pil(p):
        return _dec.decode_file(p.decode() if isinstance(p, bytes) else str(p), size, channels, mode)[0]

    @tf.autograph.experimental.do_not_convert  # TF ops only: no conversion (~0.4 s a build)
    def _map(p, use_pil, y, k):
        def graph():
            return _dec.load_routed(p, k, routes, size, channels, mode)

        if any_pil:
            img = tf.cond(use_pil, lambda: tf.numpy_function(_pil, [p], tf.uint8, stateful=False),
                          graph)
        else:
            img = graph()
        img = tf.ensure_shape(img, (h, w, channels))
        return img, y

    order = True if deterministic is None else deterministic
    ds = ds.map(_map, num_parallel_calls=graph_calls(), deterministic=order)  # as the scan
    return ds.ignore_errors(log_warning=True)
