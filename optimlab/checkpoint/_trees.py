"""``save_tree`` and ``load_tree``: nests of containers and arrays (private)."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ._archive import MANIFEST as _MANIFEST
from ._archive import SCHEMA_VERSION as SCHEMA_VERSION
from ._archive import Archive, CheckpointError, check_shape, encoded_dtype, field, parse_dtype
from ._args import check_metadata, check_path
from ._files import atomic_write, decode_array, encode_array, manifest_array

__all__ = ["load_tree", "save_tree"]


def _encode_tree(
    obj: Any, arrays: dict[str, np.ndarray], where: str, active: set[int] | None = None
) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (dict, list, tuple)):
        active = set() if active is None else active
        if id(obj) in active:
            raise ValueError(f"save_tree: the tree contains a reference cycle at {where}.")
        active.add(id(obj))
        try:
            return _encode_container(obj, arrays, where, active)
        finally:
            active.discard(id(obj))
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    if hasattr(obj, "shape") and hasattr(obj, "dtype") or isinstance(obj, np.generic):
        if type(obj).__module__.startswith("torch"):
            # A torch tensor, recognised without importing torch (so unknown to the checker).
            obj = obj.detach().cpu().numpy()  # pyright: ignore[reportAttributeAccessIssue]
        raw, name = encode_array(obj, where, "save_tree")
        key = f"t{len(arrays)}"
        arrays[key] = raw
        return {"__array__": key, "dtype": name, "shape": list(raw.shape)}
    raise TypeError(
        f"save_tree: unsupported value of type {type(obj).__name__} at {where}; "
        "only arrays, numbers, strings, None, lists, tuples and dicts are stored."
    )


def _encode_container(
    obj: dict | list | tuple, arrays: dict[str, np.ndarray], where: str, active: set[int]
) -> Any:
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_encode_key(k, where), _encode_tree(v, arrays, f"{where}[{k!r}]", active)]
                for k, v in obj.items()
            ]
        }
    items = [_encode_tree(v, arrays, f"{where}[{i}]", active) for i, v in enumerate(obj)]
    return {"__tuple__": items} if isinstance(obj, tuple) else items


def _encode_key(k: Any, where: str) -> Any:
    if isinstance(k, bool) or not isinstance(k, (int, str)):
        raise TypeError(f"save_tree: dict key {k!r} at {where} must be an int or a str.")
    return k


def _tree_keys(path: Any, tree: Any) -> list[str]:
    """The array keys a tree manifest references (walked without recursion), each once."""
    keys: list[str] = []
    stack = [tree]
    while stack:
        obj = stack.pop()
        if isinstance(obj, list):
            stack.extend(obj)
        elif isinstance(obj, dict):
            if "__array__" in obj:
                keys.append(obj["__array__"])
            else:
                stack.extend(obj.values())
    for key in keys:
        if not isinstance(key, str) or keys.count(key) > 1:
            raise CheckpointError(
                f"{path}: the manifest references array {key!r:.80} more than once or by a "
                "key that is not a string (damaged manifest)."
            )
    return keys


def _decode_tree(obj: Any, archive: Archive, where: str) -> Any:
    path = archive.path
    if isinstance(obj, list):
        return [_decode_tree(v, archive, f"{where}[{i}]") for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj  # None, bool, int, float, str
    if len(obj) == 1 and "__dict__" in obj:
        pairs = field(path, obj, where, "__dict__", list)
        out = {}
        for pair in pairs:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or isinstance(pair[0], bool)
                or not isinstance(pair[0], (int, str))
            ):
                raise CheckpointError(
                    f"{path}: malformed dict item {pair!r:.80} at {where} in the manifest."
                )
            out[pair[0]] = _decode_tree(pair[1], archive, f"{where}[{pair[0]!r}]")
        return out
    if len(obj) == 1 and "__tuple__" in obj:
        items = field(path, obj, where, "__tuple__", list)
        return tuple(_decode_tree(v, archive, f"{where}[{i}]") for i, v in enumerate(items))
    if len(obj) == 1 and "__float__" in obj:
        text = field(path, obj, where, "__float__", str)
        try:
            return float(text)
        except ValueError:
            raise CheckpointError(f"{path}: {where} is not a float ({text!r:.80}).") from None
    if "__array__" in obj and set(obj) <= {"__array__", "dtype", "shape"}:
        dtype = parse_dtype(path, f"the dtype of {where}", field(path, obj, where, "dtype", str))
        shape = check_shape(path, f"the shape of {where}", obj["shape"]) if "shape" in obj else None
        raw = archive.read(obj["__array__"], where, encoded_dtype(dtype), shape)
        if raw.dtype != dtype and raw.dtype.itemsize != dtype.itemsize:
            raise CheckpointError(f"{path}: the array for {where} cannot hold {dtype}.")
        return decode_array(raw, dtype)
    raise CheckpointError(
        f"{path}: malformed entry {sorted(obj)!r:.80} at {where} in the manifest."
    )


def save_tree(
    path: str | os.PathLike, tree: Any, *, metadata: dict[str, Any] | None = None
) -> pathlib.Path:
    """Saves nested dicts/lists/tuples of arrays, numbers and strings, atomically, without pickle.

    Use it for an ``optimlab.optim`` ``state_dict()`` (integer dict keys, tuples
    such as ``betas`` and array leaves are preserved). torch tensors are stored
    as NumPy arrays.

    Args:
        path: the file to write.
        tree: the nested containers.
        metadata: optional dict with str keys of JSON values (str, int, finite
            float, bool, None, lists, dicts) stored in the manifest.

    Returns:
        The path written.

    Raises:
        TypeError: ``path`` is not a str or os.PathLike, an unsupported value
            in ``tree``, or ``metadata`` is not such a dict (naming the key path).
        ValueError: ``path`` is empty, ``tree`` contains a reference cycle or is
            nested too deeply, or ``metadata`` holds a non-finite float.
        IsADirectoryError: ``path`` is a directory.

    Examples:
        >>> import tempfile, pathlib, numpy as np
        >>> from optimlab import checkpoint
        >>> sd = {"state": {0: {"step": np.float32(3)}}, "param_groups": [{"lr": 0.1,
        ...       "betas": (0.9, 0.999), "params": [0]}]}
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sd.npz"
        >>> _ = checkpoint.save_tree(path, sd)
        >>> checkpoint.load_tree(path)["param_groups"][0]["betas"]
        (0.9, 0.999)
    """
    path = check_path("save_tree", path, writing=True)
    metadata = check_metadata("save_tree", metadata)
    arrays: dict[str, np.ndarray] = {}
    try:
        encoded = _encode_tree(tree, arrays, "<root>")
    except RecursionError:
        raise ValueError("save_tree: the tree is nested too deeply.") from None
    manifest = {
        "format": "optimlab-tree",
        "schema_version": SCHEMA_VERSION,
        "tree": encoded,
        "metadata": metadata,
    }
    arrays[_MANIFEST] = manifest_array(manifest)
    atomic_write(path, arrays)
    return path


def load_tree(path: str | os.PathLike) -> Any:
    """Loads what :func:`save_tree` wrote (arrays come back as NumPy arrays).

    Args:
        path: the file.

    Returns:
        The nested containers.

    Raises:
        CheckpointError: an unreadable or damaged file.
    """
    with Archive(check_path("load_tree", path, writing=False)) as archive:
        manifest = archive.manifest
        if manifest["format"] != "optimlab-tree":
            raise CheckpointError(f"{path} holds an optimizer state (use restore), not a tree.")
        if "tree" not in manifest:
            raise CheckpointError(f"{path}: the manifest has no 'tree' field (damaged manifest).")
        try:
            archive.check_members(_tree_keys(path, manifest["tree"]))
            return _decode_tree(manifest["tree"], archive, "<root>")
        except RecursionError:
            raise CheckpointError(f"{path}: the manifest is nested too deeply.") from None
