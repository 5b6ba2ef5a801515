"""Applying updates: the new parameters from the updates, keeping each one's dtype (private)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._base import NUMBERS
from ._types import Params, Updates

__all__ = ["apply_updates", "check_structure"]


def check_structure(
    name: str,
    updates: Any,
    reference: Any,
    what: str = "state",
    fix: str = "Pass updates with the structure of the params given to init.",
    *,
    subject: str = "updates'",
) -> None:
    """Raises ``ValueError`` naming ``name`` and the first key path where the trees differ.

    ``None`` is a leaf of both trees. Returns when the structures are the same.
    ``subject`` names the first tree in the message (``"updates'"``, ``"model's"``).
    """
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates, is_leaf=_is_none)
    r_leaves, r_def = jax.tree_util.tree_flatten_with_path(reference, is_leaf=_is_none)
    if u_def == r_def:
        return
    u_paths = [p for p, _ in u_leaves]
    r_paths = [p for p, _ in r_leaves]
    verb = "have" if what.endswith("s") else "has"
    for up, rp in zip(u_paths, r_paths, strict=False):
        if up != rp:
            raise ValueError(
                f"{name}: the {subject} tree structure differs from the {what} at "
                f"{_keystr(up)} (the {what} {verb} {_keystr(rp)}). {fix}"
            )
    noun = subject[:-2] if subject.endswith("'s") else subject.rstrip("'")
    mine = f"{noun} {'have' if noun.endswith('s') else 'has'}"
    longer, kind = (u_paths, mine) if len(u_paths) > len(r_paths) else (r_paths, f"{what} {verb}")
    idx = min(len(u_paths), len(r_paths))
    where = _keystr(longer[idx]) if idx < len(longer) else "<root>"
    raise ValueError(
        f"{name}: the {subject} tree structure differs from the {what}: the {kind} an "
        f"extra entry at {where}. {fix}"
    )


def _is_none(x: Any) -> bool:
    return x is None


def _keystr(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


_SAME_TREE = "Pass updates with the params' structure (None where a parameter is not updated)."


class _Mismatch(Exception):
    """An update whose shape or dtype does not fit its parameter (reported with its path)."""


def _apply_one(p, u):
    if p is None:
        return None
    if u is None:
        return p
    if not (hasattr(u, "dtype") or isinstance(u, NUMBERS)):
        raise _Mismatch
    p = jnp.asarray(p)
    u = jnp.asarray(u)
    if p.dtype == u.dtype and p.shape == u.shape:
        return jax.lax.add(p, u)  # no promotion: skips jnp.add's dispatch (thousands of leaves)
    if p.shape != u.shape or (
        jnp.issubdtype(u.dtype, jnp.complexfloating)
        and not jnp.issubdtype(p.dtype, jnp.complexfloating)
    ):
        raise _Mismatch
    with jax.numpy_dtype_promotion("standard"):  # the lattice's join, even under strict mode
        dtype = jnp.promote_types(p.dtype, u.dtype)
    return (p.astype(dtype) + u.astype(dtype)).astype(p.dtype)


def apply_updates(params: Params, updates: Updates) -> Params:
    r"""Adds updates to parameters, keeping each parameter's dtype.

    .. math:: p \leftarrow \operatorname{cast}_{\mathrm{dtype}(p)}(p + u)

    The sum is computed in the wider of the two dtypes (so f32 updates to bf16
    parameters are added in f32) and cast back. ``None`` leaves pass through. An
    update whose shape is not its parameter's, or a complex update of a real
    parameter, is refused: broadcasting would change the parameter's shape, and
    the cast would drop the imaginary part.

    Args:
        params: the parameter pytree.
        updates: a pytree of the same structure.

    Returns:
        The new parameters.

    Raises:
        ValueError: the updates' tree structure, or an update's shape, differs from
            the params' (naming the key path).
        TypeError: a complex update of a real parameter, or an update that is neither
            an array nor a number (naming the key path).

    Examples:
        >>> p = {"w": jnp.ones(2, jnp.bfloat16)}
        >>> optimlab.apply_updates(p, {"w": jnp.full(2, 0.5)})["w"].dtype
        dtype(bfloat16)
    """
    try:
        return jax.tree.map(_apply_one, params, updates, is_leaf=_is_none)
    except _Mismatch:
        pass
    except ValueError:
        check_structure("apply_updates", updates, params, "params", _SAME_TREE)
        raise
    # Find the leaf again, with its key path (shapes and dtypes are static: jit-safe).
    pairs = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]
    u_leaves = jax.tree.structure(params, is_leaf=_is_none).flatten_up_to(updates)
    for (path, p), u in zip(pairs, u_leaves, strict=True):
        if p is None or u is None:
            continue
        where = jax.tree_util.keystr(path)
        if not (hasattr(u, "dtype") or isinstance(u, NUMBERS)):
            raise TypeError(
                f"apply_updates: the update at {where} is a {type(u).__name__}, not an array "
                "or a number."
            )
        if jnp.shape(p) != jnp.shape(u):
            raise ValueError(
                f"apply_updates: the update at {where} has shape {jnp.shape(u)} but the "
                f"parameter has shape {jnp.shape(p)}; broadcasting would change the "
                "parameter's shape."
            )
        raise TypeError(
            f"apply_updates: the update at {where} is complex ({jnp.result_type(u)}) but the "
            f"parameter is real ({jnp.result_type(p)}); the imaginary part would be dropped."
        )
    raise AssertionError("unreachable")  # pragma: no cover
