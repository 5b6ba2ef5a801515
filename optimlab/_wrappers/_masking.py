"""Masking: ``masked``, ``freeze`` and ``set_to_zero``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _tree
from .._core._base import (
    EmptyState,
    GradientTransformation,
    _update_with_extra_args,
    require_transformation,
)
from .._core._paths import (
    is_function_spec,
    is_pattern_spec,
    leaves_with_paths,
    resolve,
    subset_scope,
    unique_paths,
)
from .._core._types import OptState
from .._core._validate import checked_arguments

__all__ = ["MaskedState", "masked", "freeze", "set_to_zero"]


def mask_values(tree: Any, mask: Any, what: str) -> list[bool | None]:
    """One Python bool per leaf of ``tree`` (``None`` for ``None`` leaves).

    ``mask`` is a tree of bools with the structure of ``tree`` (or a prefix of
    it), a callable ``params -> mask tree``, a list of path patterns (``True``
    where one matches) or a dict ``{pattern: bool}`` (every leaf must match).
    """
    values = _mask_leaves(tree, mask, what)
    flat, _ = leaves_with_paths(tree)
    out: list[bool | None] = []
    for (path, leaf), v in zip(flat, values, strict=True):
        if leaf is None:
            out.append(None)
            continue
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(
                f"{what}: the mask value at {path!r} is {type(v).__name__}, not a Python bool; "
                "the mask decides which leaves the inner state holds, so it must be static."
            )
        out.append(bool(v))
    return out


class MaskedState(NamedTuple):
    """State of :func:`masked`.

    Attributes:
        inner_state: the inner transformation's state, holding only the selected
            leaves (in a flat dict keyed by path).
    """

    inner_state: OptState


@checked_arguments
def masked(
    inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False
) -> GradientTransformation:
    """Applies ``inner`` to the selected leaves only; the others pass through unchanged.

    The mask is one of: a tree of Python bools with the params' structure (or a
    prefix of it); a callable ``params -> mask tree`` (as optax's ``masked``); a
    list of path patterns, selecting the leaves one matches; or a dict
    ``{pattern: bool}`` resolved with :func:`~optimlab.partition`'s precedence
    (most literal segments wins, a tie or an unmatched leaf is a ``ValueError``).
    Patterns glob over ``'/'``-joined key paths (``"**/bias"``, ``"encoder/*"``).

    A callable that is itself a pytree with the params' key paths (a mask built
    by mapping over an Equinox module) is a mask tree, not a function. A mask
    tree with a leaf the params lack, or lacking one of theirs, is a
    ``ValueError`` naming the key paths.

    The inner transformation sees, and its state holds, only the selected leaves
    (a flat dict keyed by path), so an all-false mask is the identity with an
    empty inner state. Masks and label trees inside it (a nested ``masked``) may
    be written for the whole params: they are matched by key path.

    Extra arguments of ``update`` (``value``, a loss function) reach the inner
    transformation unchanged. With ``mask_compatible_extra_args=True`` (as in
    optax), an extra argument that is a tree with the updates' structure (per-leaf
    tags, a second gradient) is masked like the updates: the inner transformation
    sees only its selected leaves, in the same flat dict.

    Args:
        inner: the transformation applied to the selected leaves.
        mask: the selection (tree, callable or patterns).
        mask_compatible_extra_args: also mask the extra arguments that have the
            updates' tree structure.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`MaskedState`.

    Examples:
        >>> params = {"w": jnp.ones(2), "bias": jnp.ones(2)}
        >>> tx = optimlab.masked(optimlab.scale(-0.5), ["**/bias"])
        >>> updates, _ = tx.update(params, tx.init(params), params)
        >>> updates["w"], updates["bias"]
        (Array([1., 1.], dtype=float32), Array([-0.5, -0.5], dtype=float32))
    """
    require_transformation(inner, "masked: inner")
    inner_update = _update_with_extra_args(inner)

    def selected(tree):
        flat, treedef = leaves_with_paths(tree)
        unique_paths(flat, "masked")
        return flat, treedef, mask_values(tree, mask, "masked")

    def pick(flat, keep):
        return {p: leaf for (p, leaf), k in zip(flat, keep, strict=True) if k}

    def init_fn(params):
        flat, _, keep = selected(params)
        with subset_scope(flat):
            return MaskedState(inner.init(pick(flat, keep)))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MaskedState):
            raise ValueError(
                f"masked: expected a MaskedState, got {type(state).__name__}; pass the state "
                "returned by this masked transformation's init."
            )
        u_flat, treedef = leaves_with_paths(updates)
        if params is not None and _structure(updates) != _structure(params):
            _tree.check_match("masked", updates, params, what="params")
        _, _, keep = selected(updates if params is None else params)
        p_sel = None if params is None else pick(leaves_with_paths(params)[0], keep)
        if mask_compatible_extra_args:
            extra_args = masked_extra_args(extra_args, updates, keep, pick)
        with subset_scope(u_flat):
            new_sel, inner_state = inner_update(
                pick(u_flat, keep), state.inner_state, p_sel, **extra_args
            )
        out = [new_sel[p] if k else leaf for (p, leaf), k in zip(u_flat, keep, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, out), MaskedState(inner_state)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def set_to_zero() -> GradientTransformation:
    """Replaces every update by zeros (of the same shape and dtype).

    Used for frozen parameters: in a :func:`~optimlab.partition` group, or through
    :func:`freeze`. ``None`` leaves pass through.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.set_to_zero()
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([0., 0.], dtype=float32)
    """

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return _tree.tree_map(jnp.zeros_like, updates), state

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def freeze(mask: Any) -> GradientTransformation:
    """Zeroes the updates of the selected (frozen) leaves: ``masked(set_to_zero(), mask)``.

    Chain it with an optimizer that is itself :func:`masked` to the trainable
    leaves, or use :func:`~optimlab.partition` with a ``set_to_zero()`` group, so
    that no optimizer state is kept for frozen leaves.

    Args:
        mask: the frozen leaves, as for :func:`masked` (tree, callable or patterns).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`MaskedState`.

    Examples:
        >>> params = {"encoder": {"w": jnp.ones(2)}, "head": jnp.ones(2)}
        >>> tx = optimlab.chain(optimlab.freeze(["encoder"]), optimlab.sgd(0.1))
        >>> updates, _ = tx.update(params, tx.init(params), params)
        >>> updates["encoder"]["w"], updates["head"]
        (Array([-0., -0.], dtype=float32), Array([-0.1, -0.1], dtype=float32))
    """
    return masked(set_to_zero(), mask)


def masked_extra_args(
    extra_args: dict[str, Any], updates: Any, keep: Any, pick: Any
) -> dict[str, Any]:
    """``extra_args`` with each value that has ``updates``' structure replaced by ``pick``.

    ``pick(flat, keep)`` selects from the value's ``(path, leaf)`` list what the
    inner transformation sees of the updates; other values pass unchanged (optax's
    ``mask_compatible_extra_args``).
    """
    structure = _structure(updates)
    return {
        k: pick(leaves_with_paths(v)[0], keep) if _structure(v) == structure else v
        for k, v in extra_args.items()
    }


def _structure(tree: Any) -> Any:
    return jax.tree.structure(tree, is_leaf=_tree.is_none)


def mask_tree(params: Any, mask: Any, what: str) -> Any:
    """The mask's value for each leaf, as a tree with ``params``' structure.

    ``mask`` is anything :func:`masked` takes; its values may also be boolean
    arrays (for transformations that select with ``jnp.where``).
    """
    return jax.tree_util.tree_unflatten(
        leaves_with_paths(params)[1], _mask_leaves(params, mask, what)
    )


def _mask_leaves(tree: Any, mask: Any, what: str) -> list[Any]:
    """The mask's value for each leaf of ``tree`` (the one reading of every mask form)."""
    if is_function_spec(mask, tree):
        mask = mask(tree)
    pattern_list = isinstance(mask, (list, tuple)) and is_pattern_spec(mask)
    return resolve(
        tree, mask, what, default=False, required=not pattern_list, noun="mask", patterns_first=True
    )
