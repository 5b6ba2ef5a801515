"""Leaves of the wrong kind: integer, complex or non-numeric gradients and params (private).

Integer (and boolean) gradients are cast to the floating dtype of their parameter,
as optax's transformations effectively do (an integer times a float learning rate
is a float): left as integers, every moment and update would round to zero and
training would silently stop. Complex gradients of real parameters are refused:
dropping the imaginary part silently would be a wrong result.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["as_param_dtypes", "refuse_leaf", "reject_non_float"]

#: ``x is None`` without a Python frame (it runs once per leaf at every trace).
_is_none = functools.partial(operator.is_, None)


def as_param_dtypes(name: str, updates: Any, params: Any) -> Any:
    """``updates`` with integer leaves cast to their parameter's floating dtype.

    Without ``params`` (or when the structures differ, which the transformation
    reports itself), integer leaves become the default float dtype. Runs at trace
    time only: it reads dtypes, not values.

    Args:
        name: the function, for messages.
        updates: the gradients.
        params: the parameters, or ``None``.

    Returns:
        The updates, unchanged when no leaf is an integer.

    Raises:
        TypeError: a complex gradient of a real parameter, or a leaf that is not a
            number or an array, naming its key path.
    """
    leaves, treedef = jax.tree_util.tree_flatten(updates, is_leaf=_is_none)
    # Plain loops: this runs at every trace, and a comprehension is a Python frame.
    dtypes, exact, complex_ = [], [], []
    for g in leaves:
        d = None if g is None else getattr(g, "dtype", None) or _dtype(name, updates, g)
        dtypes.append(d)
        exact.append(
            d is not None
            and (d.kind in "biu" or d.kind == "V" and not jnp.issubdtype(d, jnp.inexact))
        )
        complex_.append(d is not None and d.kind == "c")
    if not any(exact) and (params is None or not any(complex_)):
        return updates
    p_leaves, p_treedef = jax.tree_util.tree_flatten(params, is_leaf=_is_none)
    paired = params is not None and p_treedef == treedef
    default = jnp.result_type(float)
    out = []
    for i, g in enumerate(leaves):
        p = p_leaves[i] if paired else None
        p_dtype = None if p is None else jnp.result_type(p)
        if complex_[i] and p_dtype is not None and not jnp.issubdtype(p_dtype, jnp.complexfloating):
            raise TypeError(
                f"{name}: the gradient at {_path(updates, i)} is complex ({dtypes[i]}) but its "
                f"parameter is real ({p_dtype}); taking the real part silently would be a "
                "wrong result. Pass real gradients (e.g. `jnp.real(g)`) or complex params."
            )
        if exact[i]:
            target = (
                p_dtype if p_dtype is not None and jnp.issubdtype(p_dtype, jnp.inexact) else default
            )
            g = jnp.asarray(g).astype(target)
        out.append(g)
    return jax.tree_util.tree_unflatten(treedef, out)


def _path(updates: Any, i: int) -> str:
    """The key path of leaf ``i`` of ``updates`` (``None`` leaves counted), for messages."""
    path = jax.tree_util.tree_flatten_with_path(updates, is_leaf=_is_none)[0][i][0]
    return jax.tree_util.keystr(path) or "<root>"


def _dtype(name: str, updates: Any, leaf: Any) -> Any:
    """The dtype of a leaf without one (a Python number); refuses what is not a number."""
    try:
        return jnp.result_type(leaf)
    except TypeError:
        refuse_leaf(name, updates, leaf)
        raise


def refuse_leaf(name: str, updates: Any, leaf: Any) -> None:
    """Raises ``TypeError`` naming ``name`` and the key path of ``leaf`` in ``updates``.

    For a leaf that is neither an array nor a number (a string, a function): found
    at trace time, before any arithmetic fails on it without saying where.
    """
    for path, x in jax.tree_util.tree_flatten_with_path(updates)[0]:
        if x is leaf:
            raise TypeError(
                f"{name}: the update at {jax.tree_util.keystr(path)} is a "
                f"{type(leaf).__name__}, not an array or a number."
            )


def reject_non_float(name: str, params: Any) -> None:
    """Raises ``TypeError`` naming the first leaf that is not floating-point or complex.

    Integer and boolean leaves (step counters, masks, embeddings indices...) cannot be
    optimized: their moments would be integers and every update would round to zero.
    Runs at trace time only (it reads dtypes, not values).
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            dtype = np.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.inexact):
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{name}: params must be floating-point or complex, but the leaf at "
                f"{where} is {dtype}. Cast it (e.g. `.astype(jnp.float32)`) or keep it "
                "out of the optimizer with optimlab.partition, masked or freeze."
            )
