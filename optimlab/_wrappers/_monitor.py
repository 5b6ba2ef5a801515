"""Monitoring the norms of gradients, updates and params (private)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _paths, _tree
from .._core._base import (
    EmptyState,
    GradientTransformation,
    _update_with_extra_args,
    check_leaves,
    require_transformation,
)
from .._core._types import OptState
from .._core._validate import checked_arguments

__all__ = ["MonitorState", "MonitorMeasuresState", "monitor", "monitored"]


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


class MonitorMeasuresState(NamedTuple):
    """State of :func:`monitor` given optax's dict of measures (optax's ``MonitorState`` layout).

    Attributes:
        measurements: the last measurement of each measure, by name (zeros of the
            measurement's shape before the first update).
        measure_states: the state of each measure transformation, in the dict's order.
    """

    measurements: dict[str, Any]
    measure_states: tuple[OptState, ...]


@checked_arguments
def monitor(measures: Any = None, *, inner: Any = None) -> GradientTransformation:
    """Records the norms of the gradients, updates and params of each step in the state.

    For logging without host callbacks: the norms are scalars of the state, so a
    jitted step returns them and :func:`monitored` reads them outside. The
    reductions fuse into the step; no parameter-sized buffer is added.

    Given optax's argument instead, a dict ``{name: measure}``, this is
    ``optax.monitor``: the updates pass through unchanged, and each measure (a
    function of the updates, or a transformation whose ``update(updates, state,
    params, **extra_args)`` returns the measurement, such as
    ``optax.measure_with_ema``) is recorded by name in a
    :class:`MonitorMeasuresState`, read with ``optax.tree.get(state, name)``.
    Unlike optax's (an empty dict), the measurements are zeros before the first
    update, so the state's structure does not change.

    Args:
        measures: the transformation to monitor (an optimizer, or a chain), or
            optax's dict of measures.
        inner: the transformation to monitor, by keyword.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`MonitorState`
        (a :class:`MonitorMeasuresState` for a dict of measures).

    Examples:
        >>> tx = optimlab.monitor(optimlab.sgd(0.1))
        >>> params = jnp.zeros(2)
        >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
        >>> {k: round(float(v), 3) for k, v in optimlab.monitored(state).items()}
        {'grad_norm': 5.0, 'update_norm': 0.5, 'param_norm': 0.0}
    """
    if isinstance(measures, Mapping):
        if inner is not None:
            raise TypeError("monitor: give a dict of measures or inner, not both.")
        return _monitor_measures(measures)
    if inner is None:
        inner = measures
    elif measures is not None:
        raise TypeError("monitor: give the transformation once (measures or inner).")
    require_transformation(inner, "monitor: inner", " (or optax's dict of measures)")
    inner_update = _update_with_extra_args(inner)

    def init_fn(params):
        z1, z2, z3 = (jnp.zeros([], _norm_dtype(params)) for _ in range(3))
        return MonitorState(z1, z2, z3, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorState):
            raise ValueError(f"monitor: expected a MonitorState, got {type(state).__name__}.")
        check_leaves("monitor", updates)
        dtype = state.grad_norm.dtype
        g = _tree.global_norm(updates).astype(dtype)
        new_updates, inner_state = inner_update(updates, state.inner_state, params, **extra_args)
        u = _tree.global_norm(new_updates).astype(dtype)
        p = jnp.zeros([], dtype) if params is None else _tree.global_norm(params).astype(dtype)
        return new_updates, MonitorState(g, u, p, inner_state)

    return GradientTransformation(init_fn, update_fn)


def _monitor_measures(measures: Mapping[str, Any]) -> GradientTransformation:
    """optax's ``monitor(measures)``: the updates unchanged, each measure recorded by name."""
    txs = {}
    for name, m in measures.items():
        if hasattr(m, "init") and hasattr(m, "update"):
            txs[name] = (m.init, _update_with_extra_args(m))
        elif callable(m):
            txs[name] = (lambda params: EmptyState(), lambda u, s, p=None, m=m, **kw: (m(u), s))
        else:
            raise TypeError(
                f"monitor: the measure {name!r} is {type(m).__name__}, not a function of the "
                "updates or a gradient transformation."
            )

    def measure_all(updates, states, params, extra_args):
        out, new_states = {}, []
        for (name, (_, update)), s in zip(txs.items(), states, strict=True):
            out[name], s = update(updates, s, params, **extra_args)
            new_states.append(s)
        return out, tuple(new_states)

    def init_fn(params):
        states = tuple(init(params) for init, _ in txs.values())
        shapes = jax.eval_shape(lambda p, s: measure_all(p, s, p, {})[0], params, states)
        zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return MonitorMeasuresState(zeros, states)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorMeasuresState):
            raise ValueError(
                f"monitor: expected a MonitorMeasuresState, got {type(state).__name__}."
            )
        out, states = measure_all(updates, state.measure_states, params, extra_args)
        return updates, MonitorMeasuresState(out, states)

    return GradientTransformation(init_fn, update_fn)


def _norm_dtype(params: Any) -> jnp.dtype:
    dtype = jnp.dtype(jnp.float32)
    for leaf in jax.tree.leaves(params):
        leaf_dtype = jnp.real(jnp.zeros((), jnp.asarray(leaf).dtype)).dtype
        if jnp.issubdtype(leaf_dtype, jnp.floating):
            with jax.numpy_dtype_promotion("standard"):  # the widest, even under strict
                dtype = jnp.promote_types(dtype, _tree.compute_dtype(leaf_dtype))
    return dtype


@checked_arguments
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
    found = _paths.find_nodes(state, MonitorState)
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
