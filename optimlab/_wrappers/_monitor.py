"""Monitoring the norms of gradients, updates and params (private)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._types import OptState

__all__ = ["MonitorState", "monitor", "monitored"]


class MonitorState(NamedTuple):
    """State of :func:`monitor`.

    Attributes:
        grad_norm: global l2 norm of the updates given at the last step (float32 or wider).
        update_norm: global l2 norm of the updates returned at the last step.
        param_norm: global l2 norm of the params given at the last step (0 without params).
        inner_state: the inner transformation's state.
    """

    grad_norm: jax.Array
    update_norm: jax.Array
    param_norm: jax.Array
    inner_state: OptState


def monitor(inner: Any) -> GradientTransformation:
    """Records the norms of the gradients, updates and params of each step in the state.

    For logging without host callbacks: the norms are scalars of the state, so a
    jitted step returns them and :func:`monitored` reads them outside. The
    reductions fuse into the step; no parameter-sized buffer is added.

    Args:
        inner: the transformation to monitor (an optimizer, or a chain).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`MonitorState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.monitor(optimlab.sgd(0.1))
        >>> params = jnp.zeros(2)
        >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
        >>> {k: round(float(v), 3) for k, v in optimlab.monitored(state).items()}
        {'grad_norm': 5.0, 'update_norm': 0.5, 'param_norm': 0.0}
    """
    if not (hasattr(inner, "init") and hasattr(inner, "update")):
        raise TypeError(f"monitor: inner is {type(inner).__name__}, not a gradient transformation.")
    inner_update = _update_with_extra_args(inner)

    def init_fn(params):
        z1, z2, z3 = (jnp.zeros([], _norm_dtype(params)) for _ in range(3))
        return MonitorState(z1, z2, z3, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorState):
            raise ValueError(f"monitor: expected a MonitorState, got {type(state).__name__}.")
        dtype = state.grad_norm.dtype
        g = _tree.global_norm(updates).astype(dtype)
        new_updates, inner_state = inner_update(updates, state.inner_state, params, **extra_args)
        u = _tree.global_norm(new_updates).astype(dtype)
        p = jnp.zeros([], dtype) if params is None else _tree.global_norm(params).astype(dtype)
        return new_updates, MonitorState(g, u, p, inner_state)

    return GradientTransformation(init_fn, update_fn)


def _norm_dtype(params: Any) -> jnp.dtype:
    dtype = jnp.dtype(jnp.float32)
    for leaf in jax.tree.leaves(params):
        leaf_dtype = jnp.real(jnp.zeros((), jnp.asarray(leaf).dtype)).dtype
        if jnp.issubdtype(leaf_dtype, jnp.floating):
            with jax.numpy_dtype_promotion("standard"):  # the widest, even under strict
                dtype = jnp.promote_types(dtype, _tree.compute_dtype(leaf_dtype))
    return dtype


def monitored(state: Any) -> dict[str, jax.Array]:
    """Returns the norms recorded by :func:`monitor` in a state, as a flat dict.

    Keys are ``"grad_norm"``, ``"update_norm"`` and ``"param_norm"``, prefixed by
    the monitor's position (as in :func:`~optimlab.hyperparams`) when the state
    holds several monitors.

    Args:
        state: an optimizer state holding at least one :class:`MonitorState`.

    Returns:
        ``{name: scalar array}``.

    Raises:
        ValueError: the state holds no monitor.
    """
    from .._core._hyperparams import _path_name

    is_leaf = lambda x: isinstance(x, MonitorState)
    found = [
        (_path_name(p), s)
        for p, s in jax.tree_util.tree_flatten_with_path(state, is_leaf=is_leaf)[0]
        if isinstance(s, MonitorState)
    ]
    if not found:
        raise ValueError(
            "monitored: this state holds no monitor; wrap the optimizer in optimlab.monitor(...)."
        )
    out = {}
    for prefix, s in found:
        for name in ("grad_norm", "update_norm", "param_norm"):
            key = name if len(found) == 1 or not prefix else f"{prefix}/{name}"
            out[key] = getattr(s, name)
    return out
