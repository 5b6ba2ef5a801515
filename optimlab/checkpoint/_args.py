"""Checks of the arguments of save, restore, save_tree and load_tree (private)."""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any

import numpy as np

__all__ = ["check_metadata", "check_path", "check_step"]


def check_path(fn: str, path: Any, *, writing: bool) -> pathlib.Path:
    """The checked ``path`` of ``fn`` as a :class:`pathlib.Path`.

    Raises:
        TypeError: not a str or os.PathLike (to a str).
        ValueError: empty.
        IsADirectoryError: an existing directory.
    """
    name = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(name, str):
        raise TypeError(f"{fn}: path must be a str or os.PathLike, got {type(path).__name__}.")
    if not name:
        raise ValueError(f"{fn}: path is empty.")
    out = pathlib.Path(name)
    if out.is_dir():
        what = "write a checkpoint to" if writing else "read a checkpoint from"
        raise IsADirectoryError(f"{fn}: {name!r} is a directory; pass a file to {what}.")
    return out


def check_step(fn: str, step: Any) -> int | None:
    """``step`` as a Python int (or ``None``): an integer, NumPy integer or 0-d integer array."""
    if step is None:
        return None
    dtype = getattr(step, "dtype", None)
    integral = isinstance(step, (int, np.integer)) or (
        dtype is not None and np.ndim(step) == 0 and np.dtype(dtype).kind in "iu"
    )
    if isinstance(step, (bool, np.bool_)) or not integral:
        raise TypeError(
            f"{fn}: step must be a non-negative integer or None, got {type(step).__name__}."
        )
    value = int(step)
    if value < 0:
        raise ValueError(f"{fn}: step must be a non-negative integer, got {value}.")
    return value


def check_metadata(fn: str, metadata: Any) -> dict[str, Any]:
    """``metadata`` (``{}`` for ``None``), checked to be a dict that JSON stores as it is.

    Raises:
        TypeError: not a dict, a key that is not a str, or a value JSON does not store.
        ValueError: a non-finite float, or a reference cycle.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"{fn}: metadata must be a dict, got {type(metadata).__name__}.")
    _check_value(fn, metadata, "metadata", set())
    return metadata


def _check_value(fn: str, value: Any, where: str, active: set[int]) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{fn}: {where} is {value}; JSON stores finite numbers only.")
        return
    if not isinstance(value, (dict, list, tuple)):
        raise TypeError(
            f"{fn}: {where} is a {type(value).__name__}; metadata holds only str, int, "
            "float, bool, None, lists and dicts with str keys (JSON)."
        )
    if id(value) in active:
        raise ValueError(f"{fn}: metadata contains a reference cycle at {where}.")
    active.add(id(value))
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{fn}: the key {k!r} in {where} is a {type(k).__name__}; metadata keys "
                    "must be str (JSON)."
                )
            _check_value(fn, v, f"{where}[{k!r}]", active)
    else:
        for i, v in enumerate(value):
            _check_value(fn, v, f"{where}[{i}]", active)
    active.discard(id(value))
