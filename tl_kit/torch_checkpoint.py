"""Read a PyTorch state dict saved in the legacy (non-zip) ``torch.save`` format, with NumPy only.

The legacy format (``torch/serialization.py``, ``_legacy_save`` / ``_legacy_load``) is a
sequence of pickle streams in one file:

1. the magic number ``0x1950a86a20f9469cfc6c``;
2. the protocol version (1001);
3. ``sys_info`` (``protocol_version``, ``little_endian``, ``type_sizes``);
4. the object itself (here an ``OrderedDict`` of tensors). Each tensor is pickled as a call
   of ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
   backward_hooks)`` whose storage is a *persistent id*
   ``("storage", StorageType, key, location, numel, view_metadata)``;
5. the list of storage keys, in the order their data follows;
6. for each key: an int64 element count, then the storage's raw bytes.

Reading a pickle can run arbitrary code: a pickle names the functions to call. This reader
never unpickles with the default class lookup. Its :class:`_RestrictedUnpickler` resolves
exactly the globals a state dict needs (``collections.OrderedDict``, the tensor-rebuild
function, mapped to a NumPy function of this module, and the ``torch.*Storage`` types,
mapped to NumPy dtypes) and refuses any other global with :class:`CheckpointError`, before
anything is called. torch itself is never imported.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import struct
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = ["CheckpointError", "load_state_dict", "sha256_file"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage type name -> NumPy dtype (little-endian; byte order checked from sys_info).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class CheckpointError(UserError):
    """A checkpoint file that is not a plain legacy state dict, or that asks for code."""


class _Storage:
    """A storage's dtype and element count, filled with its bytes after the main pickle."""

    def __init__(self, dtype: str, numel: int):
        self.dtype = np.dtype(dtype)
        self.numel = int(numel)
        self.data: np.ndarray | None = None


class _TensorRef:
    """A tensor waiting for its storage's bytes (they follow the pickle)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        assert data is not None
        if not self.size:
            return np.array(data[self.offset])
        if any(d < 0 for d in self.size) or any(st < 0 for st in self.stride) or len(self.size) != len(self.stride):
            raise pickle.UnpicklingError("bad tensor size/stride")
        last = self.offset + sum((d - 1) * st for d, st in zip(self.size, self.stride, strict=True))
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        if self.offset < 0 or last >= len(data):
            raise pickle.UnpicklingError("tensor view outside its storage")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride],
            writeable=False)
        return np.array(view)  # a contiguous copy, independent of the storage buffer


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records the view, computes nothing."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
    return _TensorRef(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name: str):
        self.name = name


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows only the globals of a state dict (module docstring)."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"Refused to load {self._path!r}: it asks for the Python global "
                f"'{module}.{name}', which a plain state dict never needs (loading it could "
                "run code from the file). Only collections.OrderedDict, "
                "torch._utils._rebuild_tensor_v2 and torch.*Storage types are allowed. "
                f"Received: path={self._path!r}"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(
                f"Refused to load {self._path!r}: unexpected persistent id {pid!r:.80} (only "
                f"tensor storages are allowed). Received: path={self._path!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(
                f"Refused to load {self._path!r}: storage of unknown type {storage_type!r:.80}. "
                f"Received: path={self._path!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(
                f"{self._path!r} uses storage views (view_metadata), which this reader does "
                f"not support. Received: path={self._path!r}")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[storage_type.name], numel)
        return self.storages[key]


class _PlainUnpickler(pickle.Unpickler):
    """For the header and key-list streams: plain data only, no globals at all."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        raise CheckpointError(
            f"Refused to load {self._path!r}: its header asks for the Python global "
            f"'{module}.{name}'. Received: path={self._path!r}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _bad(path: str, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path!r} is not a legacy torch.save state dict ({what}). Received: path={path!r}")


def _read_pickles(raw: bytes, path: str) -> tuple[dict, list, _RestrictedUnpickler, int]:
    """The header streams, the state dict, the storage keys; and where the storage data starts."""
    f = io.BytesIO(raw)
    try:
        magic = _PlainUnpickler(f, path).load()
        if magic != MAGIC_NUMBER:
            raise _bad(path, "wrong magic number")
        protocol = _PlainUnpickler(f, path).load()
        if protocol != PROTOCOL_VERSION:
            raise _bad(path, f"protocol version {protocol!r}, expected {PROTOCOL_VERSION}")
        sys_info = _PlainUnpickler(f, path).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise _bad(path, "not written on a little-endian machine")
        unpickler = _RestrictedUnpickler(f, path)
        obj = unpickler.load()
        keys = _PlainUnpickler(f, path).load()
    except CheckpointError:
        raise
    except Exception as exc:  # truncated / malformed pickle streams
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise _bad(path, f"the pickled object is a {type(obj).__name__}, not a state dict")
    return obj, keys, unpickler, f.tell()


def _fill_storages(raw: bytes, path: str, keys: list, storages: dict[str, _Storage],
                   offset: int) -> None:
    """Point each storage at its bytes: an int64 element count, then the raw data, per key."""
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise _bad(path, f"storage key {key!r} was never used by a tensor")
        if offset + 8 > len(raw):
            raise _bad(path, "truncated storage data")
        (numel,) = struct.unpack_from("<q", raw, offset)
        offset += 8
        nbytes = numel * storage.dtype.itemsize
        if numel != storage.numel or offset + nbytes > len(raw):
            raise _bad(path, f"storage {key!r}: {numel} elements recorded, "
                       f"{storage.numel} expected, or truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype, count=numel, offset=offset)
        offset += nbytes


def load_state_dict(path: str | os.PathLike) -> collections.OrderedDict[str, np.ndarray]:
    """The tensors of a legacy-format ``torch.save`` state dict, as NumPy arrays, in order.

    Raises :class:`CheckpointError` for a file that asks for any Python global other than
    the state-dict ones (nothing from the file is ever called), for the zip format, and for
    truncated or malformed files.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] == b"PK\x03\x04":
        raise _bad(path, "it is the zip format of torch >= 1.6; re-save it with "
                   "_use_new_zipfile_serialization=False")
    obj, keys, unpickler, offset = _read_pickles(raw, path)
    _fill_storages(raw, path, keys, unpickler.storages, offset)
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(value, _TensorRef):
            continue  # plain Python values (none in these checkpoints) are not tensors
        if value.storage.data is None:
            raise _bad(path, f"tensor {name!r} has no storage data")
        try:
            out[str(name)] = value.materialise()
        except pickle.UnpicklingError as exc:
            raise _bad(path, f"tensor {name!r}: {exc}") from None
    return out
