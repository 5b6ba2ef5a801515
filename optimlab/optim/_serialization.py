"""torch's checkpoint file format, read and written without torch (private).

``torch.save`` (since torch 1.6) writes a zip archive: ``<prefix>/data.pkl`` is a
pickle of the object in which every tensor is a call to
``torch._utils._rebuild_tensor_v2`` on a persistent storage reference, and each
storage's raw bytes are the record ``<prefix>/data/<key>``; ``version``,
``byteorder`` and a few small records complete it. :func:`save` writes that
format from NumPy/JAX arrays, and :func:`load` reads it back into NumPy arrays
with an unpickler that resolves only the few globals such a file needs, as
torch's own ``weights_only`` loader does.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

__all__ = ["CheckpointFormatError", "SavableArray", "load", "savable", "save"]

# torch's legacy storage classes, by the NumPy dtype they hold.
_STORAGES = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
    "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage",
}
_DTYPES = {v: k for k, v in _STORAGES.items()}
_PREFIX = "archive"


class CheckpointFormatError(ValueError):
    """A file that is not a torch checkpoint :func:`~optimlab.optim.load` can read safely.

    Raised for a file that is not a zip archive of torch's format, a pickle that
    names a global outside the allowed few (the file could run code), or storages
    and tensors that do not fit their records (truncated or forged files). The
    message names the file.
    """


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # a JAX dependency; imported only for bfloat16 data

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class SavableArray(np.ndarray):
    """A NumPy array that ``torch.save`` writes as a CPU tensor.

    :meth:`Optimizer.state_dict() <optimlab.optim.Optimizer.state_dict>` returns
    its arrays as this subclass of :class:`numpy.ndarray` (a view, no copy), so
    that the torch idiom ``torch.save(opt.state_dict(), f)`` writes a file that
    torch's default ``torch.load(f)`` (``weights_only=True``) reads: pickled by
    ``torch.save``, the array reduces to the tensor ``torch.from_numpy`` would
    give. Pickled by anything else (:mod:`pickle`, :mod:`copy`,
    :func:`~optimlab.optim.save`) it is a plain ``ndarray``, and torch is
    never imported.
    """

    def __reduce_ex__(self, protocol: Any) -> Any:
        plain = self.view(np.ndarray)
        torch = sys.modules.get("torch")
        if torch is None or not _inside_torch_save():
            return plain.__reduce_ex__(protocol)
        data = np.array(plain, order="C", copy=True)
        if data.dtype.name == "bfloat16":  # NumPy has no bfloat16; torch reads the bits
            tensor = torch.from_numpy(data.view(np.uint16)).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(data)
        return tensor.__reduce_ex__(protocol)


def _inside_torch_save() -> bool:
    """Whether the pickler running is ``torch.save``'s (its caller's frames say so)."""
    frame = sys._getframe(2)  # the pickler's caller: pickling runs in C below it
    for _ in range(8):
        if frame is None:
            return False
        code = frame.f_code
        if frame.f_globals.get("__name__") == "torch.serialization" and code.co_name in (
            "_save",
            "_legacy_save",
        ):
            return True
        frame = frame.f_back
    return False


def savable(obj: Any) -> Any:
    """``obj`` with each NumPy array in its dicts, lists and tuples a :class:`SavableArray`."""
    if isinstance(obj, np.ndarray):
        return obj.view(SavableArray)
    if isinstance(obj, dict):
        return {k: savable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(savable(v) for v in obj)
    return obj


# ------------------------------------------------------------------ writing
class _Global:
    """A ``module.name`` reference written as a pickle GLOBAL without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> Any:  # pickle requires a reducer to be callable
        raise TypeError(f"{self.module}.{self.name} is a reference for pickling only")


class _Storage:
    def __init__(self, key: str, data: np.ndarray):
        self.key, self.data = key, data


_REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")


# The pure-Python pickler, whose ``save`` can be extended (typeshed does not declare it).
_PurePickler: Any = pickle._Pickler  # pyright: ignore[reportAttributeAccessIssue]


class _Pickler(_PurePickler):
    def __init__(self, file: IO[bytes]):
        super().__init__(file, protocol=2)
        self.storages: list[_Storage] = []

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _Storage):
            name = _STORAGES[obj.data.dtype.name]
            return ("storage", _Global("torch", name), obj.key, "cpu", obj.data.size)
        return None

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)

    def reducer_override(self, obj: Any) -> Any:
        arr = _as_array(obj)
        if arr is None:
            return NotImplemented
        if arr.dtype.name not in _STORAGES:
            raise TypeError(
                f"optim.save: arrays of dtype {arr.dtype} have no torch storage type "
                f"(supported: {', '.join(_STORAGES)})"
            )
        arr = np.array(arr, order="C", copy=True)
        storage = _Storage(str(len(self.storages)), arr)
        self.storages.append(storage)
        itemsize = arr.dtype.itemsize
        stride = tuple(s // itemsize for s in arr.strides) if arr.size else (1,) * arr.ndim
        return (_REBUILD, (storage, 0, arr.shape, stride, False, OrderedDict()))


def _as_array(obj: Any) -> np.ndarray | None:
    if isinstance(obj, (np.ndarray, np.generic)):
        return np.asarray(obj)
    if type(obj).__module__.startswith("jax") and hasattr(obj, "__array__"):
        return np.asarray(obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "numpy"):
        return obj.detach().cpu().numpy()  # a torch tensor
    return None


def save(obj: Any, f: str | os.PathLike[str] | IO[bytes]) -> None:
    """Writes ``obj`` in torch's checkpoint format, without torch.

    The file loads with plain ``torch.load(f)`` (its default ``weights_only=True``
    included) into CPU tensors, and with :func:`load` into NumPy arrays. ``obj``
    may nest dicts, lists, tuples, strings, numbers, ``None`` and arrays (NumPy,
    JAX, or torch tensors), as an optimizer's :meth:`~Optimizer.state_dict` does.
    ``torch.save(opt.state_dict(), f)`` writes NumPy arrays as pickled NumPy
    objects, which ``torch.load``'s safe default refuses: save with this function
    instead.

    Args:
        obj: the object to save.
        f: a path, or a binary file object open for writing.

    Raises:
        TypeError: an array whose dtype torch has no storage for, an object
            that is none of the above, or ``f`` neither a path nor a writable file.

    Examples:
        >>> import io
        >>> from optimlab import optim
        >>> buf = io.BytesIO()
        >>> optim.save({"state": {0: {"step": np.float32(3.0)}}, "param_groups": []}, buf)
        >>> _ = buf.seek(0)
        >>> optim.load(buf)
        {'state': {0: {'step': array(3., dtype=float32)}}, 'param_groups': []}
    """
    if not isinstance(f, (str, os.PathLike)) and not callable(getattr(f, "write", None)):
        raise TypeError(
            f"save: f must be a path (str or os.PathLike) or a binary file object open for "
            f"writing, got {type(f).__name__}"
        )
    obj = _plain(obj, "obj")
    data = io.BytesIO()
    pickler = _Pickler(data)
    pickler.dump(obj)
    records = [
        ("data.pkl", data.getvalue()),
        (".format_version", b"1"),
        (".storage_alignment", b"64"),
        ("byteorder", b"little"),
    ]
    for s in pickler.storages:
        records.append((f"data/{s.key}", s.data.astype(s.data.dtype.newbyteorder("<")).tobytes()))
    records.append(("version", b"3\n"))
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write_zip(fh, records)
    else:
        _write_zip(f, records)


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with only the builtin types torch's safe loader knows.

    Subclasses (a parameter name that is a ``str`` subclass, a NamedTuple, a custom
    mapping) become their builtin base, so the pickle names no other global.
    """
    if obj is None or isinstance(obj, bool):
        return obj
    for base in (int, float, str):
        if isinstance(obj, base):
            return obj if type(obj) is base else base(obj)
    if _as_array(obj) is not None:
        return obj
    if isinstance(obj, Mapping):
        out = {
            _plain(k, f"{where} key {k!r}"): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()
        }
        return OrderedDict(out) if isinstance(obj, OrderedDict) else out
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"optim.save: {where} is a {type(obj).__name__}; a torch checkpoint holds "
        "dicts, lists, tuples, strings, numbers, None and arrays"
    )


def _write_zip(fh: IO[bytes], records: list[tuple[str, bytes]]) -> None:
    # Stored (uncompressed), as torch writes: readers may map storages in place.
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as z:
        for name, payload in records:
            info = zipfile.ZipInfo(f"{_PREFIX}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, payload)


# ------------------------------------------------------------------ reading
class _StorageType:
    """Stands for one of torch's storage classes (``torch.FloatStorage``...) while loading."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _dtype(_DTYPES[name])


class _Unpickler(pickle.Unpickler):
    """Resolves only what an optimizer state dict needs; everything else is refused."""

    def __init__(self, data: bytes, storage: Any):
        super().__init__(io.BytesIO(data))
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(
            f"the pickle names the global {module}.{name}, which a torch optimizer "
            "checkpoint does not need (only torch._utils._rebuild_tensor_v2, "
            "torch.*Storage and collections.OrderedDict are allowed)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError(f"malformed storage reference {pid!r}")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise pickle.UnpicklingError(f"storage {key!r} has an invalid size {numel!r}")
        return self._storage(kind, key, numel)


def _rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    hooks: Any = None,
    metadata: Any = None,
) -> np.ndarray:
    del requires_grad, hooks, metadata
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise pickle.UnpicklingError("a tensor's storage is not a storage reference")
    ints = (offset, *size, *stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        raise pickle.UnpicklingError("a tensor's offset, size and stride must be integers")
    if len(size) != len(stride) or offset < 0 or any(v < 0 for v in (*size, *stride)):
        raise pickle.UnpicklingError(
            f"a tensor has an invalid view: offset {offset}, size {size}, stride {stride}"
        )
    if 0 in size:
        return np.zeros(tuple(size), storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"a tensor (offset {offset}, size {tuple(size)}, stride {tuple(stride)}) "
            f"reads past the end of its storage of {storage.size} elements"
        )
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
    )
    return np.array(view, copy=True)


def _name(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return str(getattr(f, "name", f"<{type(f).__name__}>"))


def load(f: str | os.PathLike[str] | IO[bytes]) -> Any:
    """Reads a torch checkpoint (``torch.save``'s zip format) into NumPy arrays, without torch.

    Tensors become NumPy arrays (on the host, with their dtype); dicts, lists,
    tuples, strings and numbers are returned as they were saved. The pickle inside
    is read by a restricted unpickler that resolves only
    ``torch._utils._rebuild_tensor_v2``, torch's storage classes and
    ``collections.OrderedDict``, and every storage and tensor view is checked
    against the bytes in the archive, so a forged file cannot run code or read
    out of bounds. A state dict loaded here continues training with
    :meth:`Optimizer.load_state_dict`.

    Args:
        f: a path, or a binary file object open for reading.

    Returns:
        The saved object.

    Raises:
        CheckpointFormatError: not a zip checkpoint of torch's format, a
            disallowed global, or storages and views that do not fit the archive
            (the message names the file).

    Examples:
        >>> import io
        >>> from optimlab import optim
        >>> opt = optim.Adam({"w": jnp.ones(2)}, lr=0.1)
        >>> opt.step({"w": jnp.ones(2)})
        >>> buf = io.BytesIO()
        >>> optim.save(opt.state_dict(), buf)
        >>> _ = buf.seek(0)
        >>> sd = optim.load(buf)
        >>> sd["state"][0]["exp_avg"].round(3)
        array([0.1, 0.1], dtype=float32)
        >>> opt.load_state_dict(sd)
    """
    name = _name(f)
    try:
        if isinstance(f, (str, os.PathLike)):
            with open(f, "rb") as fh:
                return _load(fh)
        return _load(f)
    except CheckpointFormatError as e:
        raise CheckpointFormatError(f"optim.load({name!r}): {e}") from None
    except (
        zipfile.BadZipFile,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        struct.error,
        OverflowError,
        MemoryError,
    ) as e:
        raise CheckpointFormatError(
            f"optim.load({name!r}): not a valid torch checkpoint: {e}"
        ) from None


def _load(fh: IO[bytes]) -> Any:
    if not zipfile.is_zipfile(fh):
        raise CheckpointFormatError(
            "not a zip archive (torch.save's format since torch 1.6; files written "
            "with _use_new_zipfile_serialization=False are not supported)"
        )
    fh.seek(0)
    with zipfile.ZipFile(fh) as z:
        infos = {i.filename: i for i in z.infolist()}
        pkl = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise CheckpointFormatError("the archive has no (or several) <prefix>/data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in infos:
            order = z.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointFormatError(f"unknown byteorder {order!r}")
        if prefix + "version" in infos:
            version = z.read(prefix + "version").decode("ascii", "replace").strip()
            if version not in ("1", "2", "3"):
                raise CheckpointFormatError(f"unsupported format version {version!r}")
        cache: dict[str, np.ndarray] = {}

        def storage(kind: _StorageType, key: str, numel: int) -> np.ndarray:
            hit = cache.get(key)
            if hit is not None:
                if hit.dtype != kind.dtype or hit.size != numel:
                    raise CheckpointFormatError(f"storage {key!r} is referenced with two types")
                return hit
            info = infos.get(f"{prefix}data/{key}")
            if info is None:
                raise CheckpointFormatError(f"the archive has no record for storage {key!r}")
            nbytes = numel * kind.dtype.itemsize
            if info.file_size != nbytes:
                raise CheckpointFormatError(
                    f"storage {key!r} declares {numel} elements ({nbytes} bytes), but its "
                    f"record holds {info.file_size} bytes"
                )
            raw = z.read(info)
            if len(raw) != nbytes:
                raise CheckpointFormatError(f"storage {key!r} is truncated")
            dt = kind.dtype.newbyteorder("<" if order == "little" else ">")
            arr = np.frombuffer(raw, dtype=dt).astype(kind.dtype)
            cache[key] = arr
            return arr

        return _Unpickler(z.read(pkl[0]), storage).load()
