"""The NumPy-only reader of legacy ``torch.save`` state dicts: it reads the bundled
EfficientNet-Lite checkpoint and hand-made files, and never runs code from a file."""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest

import tl_kit
from tl_kit import torch_checkpoint as T
from tl_kit.models import efficientnet_lite as E


@pytest.fixture(scope="module")
def state0():
    return T.load_state_dict(E.checkpoint_path("efficientnet_lite0"))


def test_reader_returns_the_state_dict(state0):
    assert list(state0)[0] == "_conv_stem.weight"
    assert state0["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state0["_fc.weight"].shape == (1000, 1280) and state0["_fc.weight"].dtype == np.float32
    assert state0["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.all(state0["_bn1.running_var"] > 0)


class _RunsCode:
    """Pickles as a call of the callable ``fn(arg)``: what a malicious checkpoint does."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _legacy_file(path, payload, storages=()) -> None:
    with open(path, "wb") as f:
        for obj in (T.MAGIC_NUMBER, T.PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump(payload, f, protocol=2)
        pickle.dump(list(storages), f, protocol=2)


@pytest.mark.parametrize("how", ["os.system", "builtins.eval", "builtins.exec"])
def test_reader_refuses_a_pickle_that_would_run_code(tmp_path, how):
    import builtins

    marker = tmp_path / "pwned"
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').write('x')"
    fn = {"os.system": (os.system, cmd), "builtins.eval": (builtins.eval, code),
          "builtins.exec": (builtins.exec, code)}[how]
    bad = tmp_path / "evil.pth"
    _legacy_file(bad, {"_conv_stem.weight": _RunsCode(*fn)})
    with pytest.raises(T.CheckpointError) as err:
        T.load_state_dict(bad)
    msg = str(err.value)
    assert str(bad) in msg and "Refused" in msg
    assert f".{how.split('.')[1]}'" in msg  # the refused global is named
    assert not marker.exists(), "code from the checkpoint ran"
    assert isinstance(err.value, tl_kit.errors.UserError)


def test_reader_refuses_code_in_the_header_and_bad_files(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "header.pth"
    with open(bad, "wb") as f:
        pickle.dump(_RunsCode(os.system, f"touch {marker}"), f, protocol=2)
    with pytest.raises(T.CheckpointError, match="header"):
        T.load_state_dict(bad)
    assert not marker.exists()
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(T.CheckpointError, match="zip format"):
        T.load_state_dict(zipped)
    real = E.checkpoint_path("efficientnet_lite0")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(open(real, "rb").read()[:1_000_000])
    with pytest.raises(T.CheckpointError, match="truncated"):
        T.load_state_dict(cut)


def test_reader_reads_a_handmade_state_dict(tmp_path):
    """A tiny legacy file written here (storage, offset and strides): the format as torch writes it."""
    import collections

    class _Storage:
        pass

    class _Rebuild:
        """Reduces to torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)."""

        def __init__(self, *args):
            self.args = args

        def __reduce__(self):
            return (_rebuild_stub, (*self.args, False, collections.OrderedDict()))

    def tensor(storage, offset, size, stride):
        return _Rebuild(storage, offset, size, stride)

    storage = _Storage()
    state = collections.OrderedDict(w=tensor(storage, 0, (2, 3), (3, 1)),
                                    t=tensor(storage, 1, (2, 2), (1, 3)))
    path = tmp_path / "small.pth"
    with open(path, "wb") as f:
        for obj in (T.MAGIC_NUMBER, T.PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        buf = _pickle_with_globals(state, storage)
        f.write(buf)
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", 6))
        f.write(np.arange(6, dtype="<f4").tobytes())
    out = T.load_state_dict(path)
    np.testing.assert_array_equal(out["w"], np.arange(6, dtype="float32").reshape(2, 3))
    np.testing.assert_array_equal(out["t"], np.array([[1, 4], [2, 5]], "float32"))


def _rebuild_stub(*args):  # pragma: no cover - only its qualified name is pickled
    raise AssertionError


def _pickle_with_globals(state, storage) -> bytes:
    """Pickle ``state`` so that the stubs appear as torch's globals (as torch.save writes)."""
    import io

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is storage:
                return ("storage", _FloatStorage, "0", "cpu", 6, None)
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(state)
    raw = buf.getvalue()
    here = __name__.encode()
    raw = raw.replace(b"c" + here + b"\n_rebuild_stub\n", b"ctorch._utils\n_rebuild_tensor_v2\n")
    raw = raw.replace(b"c" + here + b"\n_FloatStorage\n", b"ctorch\nFloatStorage\n")
    assert b"_rebuild_tensor_v2" in raw and b"FloatStorage" in raw
    return raw


class _FloatStorage:  # pickled by reference, renamed to torch.FloatStorage above
    pass
