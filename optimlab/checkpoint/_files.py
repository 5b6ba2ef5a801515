"""Checkpoint files: array encoding and atomic, crash-safe writes (private)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._archive import SCHEMA_VERSION as SCHEMA_VERSION
from ._archive import encoded_dtype, manifest_digest

__all__ = [
    "alive",
    "atomic_write",
    "clean_stale",
    "decode_array",
    "encode_array",
    "is_prng_key",
    "manifest_array",
]


def encode_array(x: Any, where: str, fn: str = "save") -> tuple[np.ndarray, str]:
    """A NumPy array numpy can store without pickle, and the dtype name to restore."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufcV" or arr.dtype.hasobject or arr.dtype.names is not None:
        raise TypeError(
            f"{fn}: the leaf at {where or '<root>'} has dtype {arr.dtype} "
            f"({type(x).__name__}); only numeric arrays and numbers are stored."
        )
    # Extension dtypes (bfloat16, float8...) are stored as their raw bits.
    raw = np.array(arr, order="C")
    stored = encoded_dtype(arr.dtype)
    return (raw if stored == arr.dtype else raw.view(stored)), str(arr.dtype)


def is_prng_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def decode_array(raw: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return raw if raw.dtype == dtype else raw.view(dtype)


STALE_AGE_S = 3600.0  # temporaries without a process id (older versions): age to clean


def clean_stale(path: pathlib.Path) -> None:
    """Removes temporaries an interrupted save of ``path`` left behind.

    A temporary names the process that writes it; it is stale when that process is
    gone (or, for names without one, when it is over an hour old).
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:pid(\d+)\.)?[^/]*\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        tmp = path.parent / name
        try:
            if m.group(1) is not None:
                if int(m.group(1)) == os.getpid() or alive(int(m.group(1))):
                    continue
            elif time.time() - tmp.stat().st_mtime < STALE_AGE_S:
                continue
            tmp.unlink()
        except OSError:
            continue


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def atomic_write(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            # numpy's stub matches ``**arrays`` against the ``allow_pickle: bool`` keyword.
            np.savez(f, **arrays)  # pyright: ignore[reportArgumentType]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def manifest_array(manifest: dict) -> np.ndarray:
    """The manifest's bytes, its :func:`manifest_digest` included."""
    full = {**manifest, "digest": manifest_digest(manifest)}
    return np.frombuffer(json.dumps(full, sort_keys=True).encode(), dtype=np.uint8)
