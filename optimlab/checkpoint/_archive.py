"""Reading a checkpoint archive defensively (private; see :mod:`optimlab.checkpoint`).

A checkpoint is a zip archive of ``.npy`` members, uncompressed, plus a JSON
manifest member. Everything read from it is checked before it is used: the
manifest's structure and field types, the set of members (exactly those the
manifest lists), and each member's ``.npy`` header (dtype, shape, and declared
size) before its array is allocated. So a damaged or hostile file raises
:class:`CheckpointError` naming the file and the field or key path, and reading
never allocates more than the file holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import zipfile
from typing import IO, Any, cast

import jax.numpy as jnp
import numpy as np

SCHEMA_VERSION = 2
MANIFEST = "__manifest__"
# What zipfile raises on damaged bytes: flag bits that ask for encryption or patched
# data raise NotImplementedError or RuntimeError, not BadZipFile.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    ValueError,
    OSError,
    EOFError,
    KeyError,
    NotImplementedError,
    RuntimeError,
)
FORMATS = ("optimlab-state", "optimlab-tree")
_CHUNK = 1 << 16


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the template."""


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest without its ``digest`` (canonical JSON, sorted keys).

    Schema 2 stores it in the manifest, so an edited, truncated or deleted entry
    (which would otherwise describe another valid tree) is refused on load.
    """
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def encoded_dtype(dtype: Any) -> np.dtype:
    """The dtype a leaf of ``dtype`` is stored as: itself, or raw bits for extension dtypes."""
    dtype = np.dtype(dtype)
    name = str(dtype)
    if dtype.kind in "biufc" and dtype.names is None and name in np.sctypeDict:
        return dtype
    return np.dtype(f"uint{8 * dtype.itemsize}")


def parse_dtype(path: Any, where: str, name: Any) -> np.dtype:
    """``jnp.dtype(name)`` for a dtype a checkpoint may hold, else :class:`CheckpointError`."""
    if not isinstance(name, str):
        raise CheckpointError(f"{path}: {where} must be a dtype name, got {name!r}.")
    try:
        dtype = jnp.dtype(name)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {where} is not a dtype ({name!r}).") from e
    if dtype.kind not in "biufcV" or dtype.hasobject or str(dtype) != name:
        raise CheckpointError(f"{path}: {where} is not a dtype a checkpoint holds ({name!r}).")
    return dtype


def check_shape(path: Any, where: str, shape: Any) -> tuple[int, ...]:
    ok = isinstance(shape, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**62 for d in shape
    )
    if not ok or len(shape) > 64:
        raise CheckpointError(
            f"{path}: {where} must be a list of non-negative ints (a shape), got {shape!r}."
        )
    return tuple(shape)


def field(path: Any, entry: dict, where: str, name: str, kind: type | tuple[type, ...]) -> Any:
    """``entry[name]``, checked present and of ``kind`` (bool is never an int here)."""
    if name not in entry:
        raise CheckpointError(f"{path}: {where} has no {name!r} field (damaged manifest).")
    value = entry[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        value_ok = False
    else:
        value_ok = isinstance(value, kind)
    if not value_ok:
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CheckpointError(
            f"{path}: {where}[{name!r}] must be a {want}, got {type(value).__name__} "
            f"{value!r:.80} (damaged manifest)."
        )
    return value


class Archive:
    """An open checkpoint: its validated manifest and its members, read on demand."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"checkpoint not found: {self.path}")
        self._file: IO[bytes] | None = None
        try:
            self._file = open(self.path, "rb")
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except _ZIP_ERRORS as e:
            self.close()
            raise self._unreadable(e) from e
        self.size = os.fstat(self._file.fileno()).st_size
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in self.members:
                self.close()
                raise CheckpointError(
                    f"{self.path}: the archive holds an unexpected or repeated member "
                    f"{name!r}: it was not written by optimlab.checkpoint."
                )
            self.members[name[:-4]] = info
        try:
            self.manifest = self._read_manifest()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _unreadable(self, e: BaseException) -> CheckpointError:
        return CheckpointError(
            f"{self.path} is not a readable optimlab checkpoint (corrupted or truncated: "
            f"{type(e).__name__}: {e})."
        )

    def _read_manifest(self) -> dict[str, Any]:
        if MANIFEST not in self.members:
            raise CheckpointError(
                f"{self.path} has no manifest: it was not written by optimlab.checkpoint."
            )
        raw = self.read(MANIFEST, "the manifest", np.dtype(np.uint8), None)
        if raw.ndim != 1:
            raise CheckpointError(f"{self.path}: the manifest is corrupted (not a byte string).")
        try:
            manifest = json.loads(raw.tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
            raise CheckpointError(
                f"{self.path}: the manifest is corrupted ({type(e).__name__}: {str(e):.200})."
            ) from None
        if not isinstance(manifest, dict):
            raise CheckpointError(
                f"{self.path}: the manifest is corrupted (a {type(manifest).__name__}, not an "
                "object)."
            )
        if manifest.get("format") not in FORMATS:
            raise CheckpointError(
                f"{self.path}: unknown checkpoint format {manifest.get('format')!r:.80}."
            )
        version = manifest.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(
                f"{self.path}: the manifest's schema_version must be an int >= 1, got "
                f"{version!r:.80}."
            )
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.path}: schema version {version!r} is newer than this optimlab reads "
                f"({SCHEMA_VERSION}); upgrade optimlab."
            )
        if version >= 2 and manifest.get("digest") != manifest_digest(manifest):
            raise CheckpointError(
                f"{self.path}: the manifest is damaged: its digest does not match its content."
            )
        metadata = manifest.get("metadata", {})
        if not isinstance(metadata, dict):
            raise CheckpointError(
                f"{self.path}: the manifest's 'metadata' must be an object, got "
                f"{type(metadata).__name__}."
            )
        return manifest

    def check_members(self, keys: list[str]) -> None:
        """Refuses an archive whose members are not exactly the manifest and ``keys``."""
        listed = set(keys)
        extra = sorted(set(self.members) - listed - {MANIFEST})
        if extra:
            raise CheckpointError(
                f"{self.path}: the archive holds members the manifest does not list "
                f"({extra[:5]}): the file was altered."
            )

    def read(
        self, key: str, where: str, dtype: np.dtype, shape: tuple[int, ...] | None
    ) -> np.ndarray:
        """Reads member ``key`` after checking its header: ``dtype``, ``shape`` and size.

        ``shape=None`` accepts any shape (still bounded by the member's size).
        """
        info = self.members.get(key)
        if info is None:
            raise CheckpointError(
                f"{self.path}: the array for {where} is missing (truncated file?)."
            )
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > self.size:
            raise CheckpointError(
                f"{self.path}: the member for {where} is compressed or declares "
                f"{info.file_size} bytes in a {self.size}-byte file: optimlab checkpoints "
                "are never compressed (refused, as a decompression bomb would be)."
            )
        try:
            with self._zip.open(info) as fp:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    head = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    head = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                got_shape, fortran, got_dtype = head
                if got_dtype.hasobject:
                    raise ValueError(
                        "Object arrays cannot be loaded when allow_pickle=False (never loaded)"
                    )
                if got_dtype != dtype:
                    raise CheckpointError(
                        f"{self.path}: the array for {where} is damaged: dtype {got_dtype} "
                        f"but the manifest says {dtype}."
                    )
                if shape is not None and tuple(got_shape) != tuple(shape):
                    raise CheckpointError(
                        f"{self.path}: the array for {where} is damaged: shape "
                        f"{tuple(got_shape)} but the manifest says {tuple(shape)}."
                    )
                count = math.prod(int(d) for d in got_shape)
                nbytes = count * got_dtype.itemsize
                if info.file_size != fp.tell() + nbytes:
                    raise CheckpointError(
                        f"{self.path}: the array for {where} is damaged: its member declares "
                        f"{info.file_size} bytes, its header {fp.tell() + nbytes}."
                    )
                out = np.empty(count, got_dtype)
                view = out.view(np.uint8).data
                filled = 0
                while filled < nbytes:
                    # In small chunks: ZipExtFile.readinto reads into a temporary first.
                    n = cast(Any, fp).readinto(view[filled : filled + _CHUNK])
                    if not n:
                        raise EOFError(f"the array for {where} ends early")
                    filled += n
        except CheckpointError:
            raise
        except (*_ZIP_ERRORS, TypeError) as e:
            raise self._unreadable(e) from e
        order = "F" if fortran else "C"
        return out.reshape(got_shape, order=order) if got_shape else out.reshape(())
