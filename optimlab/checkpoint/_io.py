"""Checkpoint reading and writing (private; see :mod:`optimlab.checkpoint`)."""

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

from ._archive import MANIFEST as _MANIFEST
from ._archive import SCHEMA_VERSION as SCHEMA_VERSION
from ._archive import Archive, CheckpointError, check_shape, encoded_dtype, field, parse_dtype
from ._values import check_values

__all__ = ["CheckpointError", "load_tree", "read_manifest", "restore", "save", "save_tree"]


# --------------------------------------------------------------------------- writing


def _encode_array(x: Any, where: str, fn: str = "save") -> tuple[np.ndarray, str]:
    """A NumPy array numpy can store without pickle, and the dtype name to restore."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biufcV" or arr.dtype.hasobject or arr.dtype.names is not None:
        raise TypeError(
            f"{fn}: the leaf at {where} has dtype {arr.dtype} ({type(x).__name__}); only "
            "numeric arrays and numbers are stored."
        )
    # Extension dtypes (bfloat16, float8...) are stored as their raw bits.
    raw = np.array(arr, order="C")
    stored = encoded_dtype(arr.dtype)
    return (raw if stored == arr.dtype else raw.view(stored)), str(arr.dtype)


def _is_prng_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _decode_array(raw: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return raw if raw.dtype == dtype else raw.view(dtype)


_STALE_AGE_S = 3600.0  # temporaries without a process id (older versions): age to clean


def _clean_stale(path: pathlib.Path) -> None:
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
                if int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
                    continue
            elif time.time() - tmp.stat().st_mtime < _STALE_AGE_S:
                continue
            tmp.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _atomic_write(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(path)
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
            raw, dtype_name = _encode_array(jax.random.key_data(leaf), entry["path"])
            entry["key_impl"] = str(jax.random.key_impl(leaf))
            dtype_name = str(leaf.dtype)
        else:
            raw, dtype_name = _encode_array(leaf, entry["path"])
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


def _state_entries(path: Any, manifest: dict) -> list[dict[str, Any]]:
    """The manifest's leaf entries of a state checkpoint, every field checked."""
    leaves = field(path, manifest, "the manifest", "leaves", list)
    field(path, manifest, "the manifest", "treedef", str)
    step = manifest.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise CheckpointError(
            f"{path}: the manifest's 'step' must be a non-negative int or null, got {step!r:.80}."
        )
    keys = set()
    for i, e in enumerate(leaves):
        where = f"manifest['leaves'][{i}]"
        if not isinstance(e, dict):
            raise CheckpointError(f"{path}: {where} must be an object, got {type(e).__name__}.")
        field(path, e, where, "path", str)
        key = field(path, e, where, "key", str)
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", key) or key in keys or key == _MANIFEST:
            raise CheckpointError(f"{path}: {where}['key'] is invalid or repeated ({key!r:.80}).")
        keys.add(key)
        check_shape(path, f"{where}['shape']", e.get("shape"))
        field(path, e, where, "dtype", str)
        if "key_impl" in e:
            field(path, e, where, "key_impl", str)
    return leaves


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Returns a checkpoint's manifest (schema version, leaves, step, metadata).

    Args:
        path: the checkpoint file.

    Returns:
        The manifest as a dict.

    Raises:
        CheckpointError: an unreadable, damaged or foreign file.
        FileNotFoundError: no such file.
    """
    with Archive(path) as archive:
        if archive.manifest["format"] == "optimlab-state":
            _state_entries(path, archive.manifest)
        return archive.manifest


def _sharding_of(leaf: Any) -> Any:
    return getattr(leaf, "sharding", None)


def restore(path: str | os.PathLike, template: Any) -> Any:
    """Restores a state saved by :func:`save` into the structure of ``template``.

    Everything is validated before anything is returned: the manifest (every
    field present and of its type), the tree structure (key paths), every shape
    and every dtype must match the template, so a checkpoint of another
    optimizer, or of other parameters, is refused with a message naming the first
    differing key path. Only the archive members the manifest lists are read
    (extra members are refused), each after its header's dtype, shape and size
    are checked, so reading allocates no more than the template's arrays. The
    values are checked as :func:`~optimlab.set_hyperparams` checks them (the
    same rule table, by hyperparameter name), and step counts must be
    non-negative: a checkpoint never restores a state the API would refuse.
    Leaves are placed with the template's sharding when it has one.

    Args:
        path: the checkpoint file.
        template: the ``init`` state, or ``jax.eval_shape`` of it.

    Returns:
        The restored state, with the template's structure.

    Raises:
        CheckpointError: an unreadable, damaged or hostile file, or a mismatch
            with the template.
        FileNotFoundError: no such file.
    """
    with Archive(path) as archive:
        return _restore(archive, path, template)


def _restore(archive: Archive, path: Any, template: Any) -> Any:
    manifest = archive.manifest
    if manifest["format"] != "optimlab-state":
        raise CheckpointError(f"{path} holds a {manifest['format']} (use load_tree), not a state.")
    entries = _state_entries(path, manifest)
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
    # Every expected encoding is known from the template before any array is read.
    plan = [_plan_leaf(path, e, kp, leaf) for e, (kp, leaf) in zip(entries, t_leaves, strict=True)]
    archive.check_members([e["key"] for e in entries])
    values = []
    for e, (where, stored, shape, decode) in zip(entries, plan, strict=True):
        values.append(decode(archive.read(e["key"], where, stored, shape)))
    check_values(path, jax.tree_util.tree_unflatten(treedef, values))
    out = []
    for value, (_, leaf) in zip(values, t_leaves, strict=True):
        sharding = _sharding_of(leaf)
        out.append(jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, out)


def _plan_leaf(path: Any, e: dict, kp: Any, leaf: Any) -> tuple[str, np.dtype, tuple, Any]:
    """``(where, stored dtype, stored shape, decode)`` of one leaf, checked against the template."""
    where = jax.tree_util.keystr(kp)
    shape = tuple(e["shape"])
    t_shape = tuple(np.shape(leaf))
    if "key_impl" in e:
        if not _is_prng_key(leaf):
            raise CheckpointError(
                f"{path}: {where} is a PRNG key ({e['dtype']}) in the "
                f"checkpoint but {getattr(leaf, 'dtype', type(leaf).__name__)} "
                "in the template."
            )
        if str(leaf.dtype) != e["dtype"]:
            raise CheckpointError(
                f"{path}: {where} has dtype {e['dtype']} in the checkpoint "
                f"but {leaf.dtype} in the template."
            )
        if shape != t_shape:
            raise CheckpointError(
                f"{path}: {where} has shape {shape} in the checkpoint but {t_shape} in the "
                "template."
            )
        data = jax.eval_shape(jax.random.key_data, leaf)
        impl = e["key_impl"]

        def decode_key(raw: np.ndarray) -> Any:
            try:
                # wrap_key_data takes any uint32 array-like; its annotation says jax.Array.
                return jax.random.wrap_key_data(raw, impl=impl)  # pyright: ignore[reportArgumentType]
            except (TypeError, ValueError, KeyError) as err:
                raise CheckpointError(
                    f"{path}: cannot decode the PRNG key at {where}: {err}"
                ) from err

        return where, np.dtype(data.dtype), tuple(data.shape), decode_key
    dtype = parse_dtype(path, f"the dtype of {where}", e["dtype"])
    if _is_prng_key(leaf):
        raise CheckpointError(
            f"{path}: {where} is a PRNG key in the template but {e['dtype']} in the checkpoint."
        )
    t_dtype = jnp.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
    if shape != t_shape:
        raise CheckpointError(
            f"{path}: {where} has shape {shape} in the checkpoint but {t_shape} in the template."
        )
    if dtype != t_dtype:
        raise CheckpointError(
            f"{path}: {where} has dtype {dtype} in the checkpoint but {t_dtype} in the template."
        )
    return where, encoded_dtype(dtype), shape, lambda raw: _decode_array(raw, dtype)


def _structure_difference(saved: str, template: str) -> str:
    """Says how two tree structures with the same key paths differ."""
    # The hyperparameter names are the static part of each packed Hyperparams node.
    pattern = r"Hyperparams\[(\([^\]]*\))\]"
    for a, b in zip(re.findall(pattern, saved), re.findall(pattern, template), strict=False):
        if a != b:
            return f"the hyperparameters are {a} in the checkpoint but {b} in the template."
    return "the tree structures differ."


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
        raw, name = _encode_array(obj, where, "save_tree")
        key = f"t{len(arrays)}"
        arrays[key] = raw
        return {"__array__": key, "dtype": name, "shape": list(raw.shape)}
    raise TypeError(
        f"save_tree: unsupported value of type {type(obj).__name__} at {where}; "
        "only arrays, numbers, strings, None, lists, tuples and dicts are stored."
    )


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
        return _decode_array(raw, dtype)
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
    with Archive(path) as archive:
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
