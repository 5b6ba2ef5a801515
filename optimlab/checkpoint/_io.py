"""Checkpoint reading and writing (private; see :mod:`optimlab.checkpoint`)."""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._archive import MANIFEST as _MANIFEST
from ._archive import SCHEMA_VERSION as SCHEMA_VERSION
from ._archive import Archive, CheckpointError, check_shape, encoded_dtype, field, parse_dtype
from ._args import check_metadata, check_path, check_step
from ._files import atomic_write, decode_array, encode_array, is_prng_key, manifest_array
from ._values import check_values

__all__ = ["CheckpointError", "read_manifest", "restore", "save"]


# --------------------------------------------------------------------------- writing


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
            state's ``count`` when it has exactly one): a non-negative Python,
            NumPy or 0-d array integer, stored as an int.
        metadata: optional dict with str keys of JSON values (str, int, finite
            float, bool, None, lists, dicts) stored in the manifest.

    Returns:
        The path written.

    Raises:
        TypeError: ``path`` is not a str or os.PathLike, ``step`` is not an
            integer, or ``metadata`` is not such a dict (naming the key path).
        ValueError: ``path`` is empty, ``step`` is negative, or ``metadata``
            holds a non-finite float.
        IsADirectoryError: ``path`` is a directory.

    Examples:
        >>> import tempfile, pathlib, jax.numpy as jnp
        >>> from optimlab import checkpoint
        >>> tx = optimlab.adam(1e-3)
        >>> state = tx.init({"w": jnp.ones(3)})
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "opt.npz"
        >>> _ = checkpoint.save(path, state)
        >>> restored = checkpoint.restore(path, tx.init({"w": jnp.zeros(3)}))
        >>> float(optimlab.hyperparams(restored)["learning_rate"])  # doctest: +ELLIPSIS
        0.001...
    """
    path = check_path("save", path, writing=True)
    step = check_step("save", step)
    metadata = check_metadata("save", metadata)
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
        if is_prng_key(leaf):  # typed PRNG keys (noisy_sgd...): their raw key data
            raw, dtype_name = encode_array(jax.random.key_data(leaf), entry["path"])
            entry["key_impl"] = str(jax.random.key_impl(leaf))
            dtype_name = str(leaf.dtype)
        else:
            raw, dtype_name = encode_array(leaf, entry["path"])
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
        "metadata": metadata,
    }
    json.dumps(manifest)  # fail early, before touching the file, if metadata is not JSON
    arrays[_MANIFEST] = manifest_array(manifest)
    atomic_write(path, arrays)
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
    with Archive(check_path("read_manifest", path, writing=False)) as archive:
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
    same rule table, by hyperparameter name), step counts must be
    non-negative, and so must every entry of a field its state class declares
    never negative (a second moment, a sum of squares, a step size): a
    checkpoint never restores a state the API would refuse.
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
    with Archive(check_path("restore", path, writing=False)) as archive:
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
        if not is_prng_key(leaf):
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
    if is_prng_key(leaf):
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
    return where, encoded_dtype(dtype), shape, lambda raw: decode_array(raw, dtype)


def _structure_difference(saved: str, template: str) -> str:
    """Says how two tree structures with the same key paths differ."""
    # The hyperparameter names are the static part of each packed Hyperparams node.
    pattern = r"Hyperparams\[(\([^\]]*\))\]"
    for a, b in zip(re.findall(pattern, saved), re.findall(pattern, template), strict=False):
        if a != b:
            return f"the hyperparameters are {a} in the checkpoint but {b} in the template."
    return "the tree structures differ."
