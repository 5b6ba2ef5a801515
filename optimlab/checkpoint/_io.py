"""Checkpoint reading and writing (private; see :mod:`optimlab.checkpoint`)."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import tempfile
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SCHEMA_VERSION = 1
_MANIFEST = "__manifest__"
_FORMATS = ("optimlab-state", "optimlab-tree")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the template."""


# --------------------------------------------------------------------------- writing


def _encode_array(x: Any) -> tuple[np.ndarray, str]:
    """A NumPy array numpy can store without pickle, and the dtype name to restore."""
    arr = np.asarray(x)
    name = str(arr.dtype)
    if arr.dtype.kind in "biufc" and arr.dtype.names is None and name in np.sctypeDict:
        return np.array(arr, order="C"), name
    # Extension dtypes (bfloat16, float8...): store the raw bits.
    width = arr.dtype.itemsize
    return np.array(arr, order="C").view(np.dtype(f"uint{8 * width}")), name


def _is_prng_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _decode_array(raw: np.ndarray, name: str) -> np.ndarray:
    dtype = jnp.dtype(name)
    return raw if raw.dtype == dtype else raw.view(dtype)


def _atomic_write(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def _manifest_array(manifest: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8)


def save(
    path: str | os.PathLike,
    state: Any,
    *,
    step: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Saves an optimizer state (any pytree of arrays) atomically.

    The file is an ``.npz`` archive holding one entry per leaf and a JSON
    manifest (schema version, key paths, shapes, dtypes, step, metadata). It is
    written to a temporary file in the same directory, flushed and fsynced, then
    renamed over ``path``: a crash mid-save leaves the previous checkpoint intact.
    No pickle is used in either direction.

    Args:
        path: the file to write (conventionally ending in ``.npz``).
        state: the pytree to save. ``None`` leaves are recorded by the tree
            structure; every other leaf must be an array or a number.
        step: optional training step stored in the manifest (by default the
            state's ``count`` when it has exactly one).
        metadata: optional JSON-serialisable dict stored in the manifest.

    Returns:
        The path written.

    Examples:
        >>> import tempfile, pathlib, jax.numpy as jnp
        >>> import optimlab
        >>> from optimlab import checkpoint
        >>> tx = optimlab.adam(1e-3)
        >>> state = tx.init({"w": jnp.ones(3)})
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "opt.npz"
        >>> _ = checkpoint.save(path, state)
        >>> restored = checkpoint.restore(path, tx.init({"w": jnp.zeros(3)}))
        >>> float(optimlab.hyperparams(restored)["learning_rate"])  # doctest: +ELLIPSIS
        0.001...
    """
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays: dict[str, np.ndarray] = {}
    entries = []
    counts = []
    for i, (kp, leaf) in enumerate(leaves):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(
                f"save: the leaf at {jax.tree_util.keystr(kp)} is abstract "
                "(a ShapeDtypeStruct); save concrete arrays."
            )
        key = f"a{i}"
        entry = {"path": jax.tree_util.keystr(kp), "key": key, "shape": list(np.shape(leaf))}
        if _is_prng_key(leaf):  # typed PRNG keys (noisy_sgd...): their raw key data
            raw, dtype_name = _encode_array(jax.random.key_data(leaf))
            entry["key_impl"] = str(jax.random.key_impl(leaf))
            dtype_name = str(leaf.dtype)
        else:
            raw, dtype_name = _encode_array(leaf)
        arrays[key] = raw
        entry["dtype"] = dtype_name
        entries.append(entry)
        if getattr(kp[-1], "name", None) == "count" and np.ndim(leaf) == 0:
            counts.append(int(np.asarray(leaf)))
    if step is None and len(counts) == 1:
        step = counts[0]
    manifest = {
        "format": "optimlab-state",
        "schema_version": SCHEMA_VERSION,
        "treedef": str(jax.tree.structure(state)),
        "leaves": entries,
        "step": step,
        "metadata": metadata or {},
    }
    json.dumps(manifest)  # fail early, before touching the file, if metadata is not JSON
    arrays[_MANIFEST] = _manifest_array(manifest)
    path = pathlib.Path(path)
    _atomic_write(path, arrays)
    return path


# --------------------------------------------------------------------------- reading


def _open(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(
            f"{path} is not a readable optimlab checkpoint (corrupted or truncated: "
            f"{type(e).__name__}: {e})."
        ) from e
    if _MANIFEST not in arrays:
        raise CheckpointError(f"{path} has no manifest: it was not written by optimlab.checkpoint.")
    try:
        manifest = json.loads(arrays.pop(_MANIFEST).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: the manifest is corrupted ({e}).") from e
    if manifest.get("format") not in _FORMATS:
        raise CheckpointError(f"{path}: unknown checkpoint format {manifest.get('format')!r}.")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise CheckpointError(
            f"{path}: schema version {version!r} is newer than this optimlab reads "
            f"({SCHEMA_VERSION}); upgrade optimlab."
        )
    return manifest, arrays


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Returns a checkpoint's manifest (schema version, leaves, step, metadata).

    Args:
        path: the checkpoint file.

    Returns:
        The manifest as a dict.
    """
    return _open(path)[0]


def _sharding_of(leaf: Any) -> Any:
    return getattr(leaf, "sharding", None)


def restore(path: str | os.PathLike, template: Any) -> Any:
    """Restores a state saved by :func:`save` into the structure of ``template``.

    Everything is validated before anything is returned: the tree structure
    (key paths), every shape and every dtype must match the template, so a
    checkpoint of another optimizer, or of other parameters, is refused with a
    message naming the first differing key path. Leaves are placed with the
    template's sharding when it has one.

    Args:
        path: the checkpoint file.
        template: the ``init`` state, or ``jax.eval_shape`` of it.

    Returns:
        The restored state, with the template's structure.

    Raises:
        CheckpointError: unreadable file or a mismatch with the template.
        FileNotFoundError: no such file.
    """
    manifest, arrays = _open(path)
    if manifest["format"] != "optimlab-state":
        raise CheckpointError(f"{path} holds a {manifest['format']} (use load_tree), not a state.")
    entries = manifest["leaves"]
    t_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    saved_paths = [e["path"] for e in entries]
    t_paths = [jax.tree_util.keystr(kp) for kp, _ in t_leaves]
    if saved_paths != t_paths or manifest.get("treedef") != str(treedef):
        for i, (a, b) in enumerate(zip(saved_paths, t_paths, strict=False)):
            if a != b:
                raise CheckpointError(
                    f"{path}: the checkpoint does not match the template (another optimizer "
                    f"or other params?): leaf {i} is {a} in the checkpoint but {b} in the "
                    "template."
                )
        if len(saved_paths) != len(t_paths):
            raise CheckpointError(
                f"{path}: the checkpoint has {len(saved_paths)} leaves but the template has "
                f"{len(t_paths)} (another optimizer or other params?)."
            )
        raise CheckpointError(
            f"{path}: the checkpoint does not match the template (another optimizer or other "
            f"params?): {_structure_difference(str(manifest.get('treedef')), str(treedef))}"
        )
    out = []
    for e, (kp, leaf) in zip(entries, t_leaves, strict=True):
        where = jax.tree_util.keystr(kp)
        if e["key"] not in arrays:
            raise CheckpointError(f"{path}: the array for {where} is missing (truncated file?).")
        raw = arrays[e["key"]]
        if "key_impl" in e:
            value = _restore_key(path, where, raw, e, leaf)
            out.append(
                value if _sharding_of(leaf) is None else jax.device_put(value, _sharding_of(leaf))
            )
            continue
        try:
            value = _decode_array(raw, e["dtype"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: cannot decode {where} as {e['dtype']}: {err}") from err
        if _is_prng_key(leaf):
            raise CheckpointError(
                f"{path}: {where} is a PRNG key in the template but {e['dtype']} in the checkpoint."
            )
        shape, dtype = (
            tuple(np.shape(leaf)),
            jnp.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype,
        )
        if tuple(value.shape) != tuple(e["shape"]):
            raise CheckpointError(
                f"{path}: the array for {where} is damaged: shape "
                f"{value.shape} but the manifest says {tuple(e['shape'])}."
            )
        if value.shape != shape:
            raise CheckpointError(
                f"{path}: {where} has shape {value.shape} in the checkpoint "
                f"but {shape} in the template."
            )
        if jnp.dtype(value.dtype) != dtype:
            raise CheckpointError(
                f"{path}: {where} has dtype {value.dtype} in the checkpoint "
                f"but {dtype} in the template."
            )
        sharding = _sharding_of(leaf)
        out.append(jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, out)


def _structure_difference(saved: str, template: str) -> str:
    """Says how two tree structures with the same key paths differ."""
    # The hyperparameter names are the static part of each packed Hyperparams node.
    pattern = r"Hyperparams\[(\([^\]]*\))\]"
    for a, b in zip(re.findall(pattern, saved), re.findall(pattern, template), strict=False):
        if a != b:
            return f"the hyperparameters are {a} in the checkpoint but {b} in the template."
    return "the tree structures differ."


def _restore_key(path: Any, where: str, raw: np.ndarray, entry: dict, leaf: Any) -> Any:
    """A typed PRNG key array from its saved key data, checked against the template."""
    if not _is_prng_key(leaf):
        raise CheckpointError(
            f"{path}: {where} is a PRNG key ({entry['dtype']}) in the "
            f"checkpoint but {getattr(leaf, 'dtype', type(leaf).__name__)} "
            "in the template."
        )
    if str(leaf.dtype) != entry["dtype"]:
        raise CheckpointError(
            f"{path}: {where} has dtype {entry['dtype']} in the checkpoint "
            f"but {leaf.dtype} in the template."
        )
    try:
        # wrap_key_data takes any uint32 array-like; its annotation says jax.Array.
        value = jax.random.wrap_key_data(raw, impl=entry["key_impl"])  # pyright: ignore[reportArgumentType]
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot decode the PRNG key at {where}: {err}") from err
    if tuple(value.shape) != tuple(entry["shape"]):
        raise CheckpointError(
            f"{path}: the array for {where} is damaged: shape "
            f"{value.shape} but the manifest says {tuple(entry['shape'])}."
        )
    if value.shape != tuple(np.shape(leaf)):
        raise CheckpointError(
            f"{path}: {where} has shape {value.shape} in the checkpoint "
            f"but {tuple(np.shape(leaf))} in the template."
        )
    return value


# --------------------------------------------------------------------------- containers


def _encode_tree(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_encode_key(k, where), _encode_tree(v, arrays, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode_tree(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode_tree(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "shape") and hasattr(obj, "dtype") or isinstance(obj, np.generic):
        if type(obj).__module__.startswith("torch"):
            # A torch tensor, recognised without importing torch (so unknown to the checker).
            obj = obj.detach().cpu().numpy()  # pyright: ignore[reportAttributeAccessIssue]
        raw, name = _encode_array(obj)
        key = f"t{len(arrays)}"
        arrays[key] = raw
        return {"__array__": key, "dtype": name}
    raise TypeError(
        f"save_tree: unsupported value of type {type(obj).__name__} at {where}; "
        "only arrays, numbers, strings, None, lists, tuples and dicts are stored."
    )


def _encode_key(k: Any, where: str) -> Any:
    if isinstance(k, bool) or not isinstance(k, (int, str)):
        raise TypeError(f"save_tree: dict key {k!r} at {where} must be an int or a str.")
    return k


def _decode_tree(obj: Any, arrays: dict[str, np.ndarray], path: Any) -> Any:
    if isinstance(obj, list):
        return [_decode_tree(v, arrays, path) for v in obj]
    if isinstance(obj, dict):
        if "__dict__" in obj:
            return {k: _decode_tree(v, arrays, path) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_decode_tree(v, arrays, path) for v in obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__array__" in obj:
            if obj["__array__"] not in arrays:
                raise CheckpointError(f"{path}: array {obj['__array__']} is missing.")
            return _decode_array(arrays[obj["__array__"]], obj["dtype"])
        raise CheckpointError(f"{path}: malformed entry {sorted(obj)} in the manifest.")
    return obj


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
        metadata: optional JSON-serialisable dict stored in the manifest.

    Returns:
        The path written.

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
    arrays: dict[str, np.ndarray] = {}
    encoded = _encode_tree(tree, arrays, "<root>")
    manifest = {
        "format": "optimlab-tree",
        "schema_version": SCHEMA_VERSION,
        "tree": encoded,
        "metadata": metadata or {},
    }
    arrays[_MANIFEST] = _manifest_array(manifest)
    path = pathlib.Path(path)
    _atomic_write(path, arrays)
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
    manifest, arrays = _open(path)
    if manifest["format"] != "optimlab-tree":
        raise CheckpointError(f"{path} holds an optimizer state (use restore), not a tree.")
    return _decode_tree(manifest["tree"], arrays, path)
