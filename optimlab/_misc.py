"""Small transformations: centralisation, schedules, conditions, naming and monitoring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _elementwise, _tree
from ._accumulate import select
from ._base import GradientTransformation, _update_with_extra_args, safe_increment
from ._scale import ScaleByScheduleState
from ._types import OptState, Schedule

__all__ = [
    "centralize",
    "scale_by_schedule",
    "ConditionallyTransformState",
    "conditionally_transform",
    "named_chain",
    "MonitorState",
    "monitor",
    "monitored",
]


def centralize() -> GradientTransformation:
    r"""Gradient centralisation: removes the mean over all axes but the first.

    .. math:: u \leftarrow u - \operatorname{mean}_{\text{axes } 1..}(u)

    Leaves of rank 0 or 1 are unchanged. Same as ``optax.centralize``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.centralize()
        >>> tx.update(jnp.array([[1.0, 3.0]]), tx.init(jnp.zeros((1, 2))))[0]
        Array([[-1.,  1.]], dtype=float32)

    References:
        Yong et al., `Gradient Centralization: A New Optimization Technique for Deep
        Neural Networks <https://arxiv.org/abs/2004.01461>`_, 2020.
    """
    from ._base import EmptyState

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            if u.ndim <= 1:
                return u
            x = _tree.upcast(u)
            return (x - x.mean(tuple(range(1, x.ndim)), keepdims=True)).astype(u.dtype)

        return _tree.tree_map(one, updates), state

    return GradientTransformation(init_fn, update_fn)


def scale_by_schedule(
    step_size_fn: Schedule, *, step: jax.Array | None = None
) -> GradientTransformation:
    r"""Multiplies the updates by a schedule of the step.

    .. math:: u_t \leftarrow s(t)\, u_t

    with :math:`t` the 0-based step count. Unlike :func:`~optimlab.scale_by_learning_rate`
    the sign is kept. Same as ``optax.scale_by_schedule``.

    Args:
        step_size_fn: the schedule :math:`s`, a pure function of the int32 step.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a
        :class:`~optimlab.ScaleByScheduleState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.scale_by_schedule(lambda t: 0.5 ** t)
        >>> state = tx.init(jnp.zeros(1))
        >>> _, state = tx.update(jnp.ones(1), state)
        >>> tx.update(jnp.ones(1), state)[0]
        Array([0.5], dtype=float32)
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"scale_by_schedule: step_size_fn must be callable, got {type(step_size_fn).__name__}."
        )

    def init_fn(params):
        del params
        return ScaleByScheduleState(None if step is not None else jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = step if step is not None else state.count
        s = step_size_fn(count)
        out = _tree.tree_map(lambda u: u * _tree.hp(s, u).astype(u.dtype), updates)
        return out, ScaleByScheduleState(None if step is not None else safe_increment(count))

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


class ConditionallyTransformState(NamedTuple):
    """State of :func:`conditionally_transform`.

    Attributes:
        inner_state: the inner transformation's state (unchanged on skipped steps).
        step: int32 number of calls so far (the argument of the condition).
    """

    inner_state: OptState
    step: jax.Array


def conditionally_transform(
    inner: Any,
    should_transform_fn: Callable[..., Any],
    forward_extra_args: bool = False,
) -> GradientTransformation:
    """Applies ``inner`` only at the steps where ``should_transform_fn(step)`` is true.

    Elsewhere the updates pass through unchanged and the inner state is kept
    as is. The inner update is computed at every step and selected element-wise
    (fused, no copy). Same semantics as ``optax.conditionally_transform``.

    Args:
        inner: the transformation to apply conditionally.
        should_transform_fn: ``step -> bool scalar`` (traceable), ``step`` the 0-based
            number of calls; with ``forward_extra_args``, also given ``update``'s
            keyword arguments.
        forward_extra_args: pass ``update``'s extra keyword arguments to the condition.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a
        :class:`ConditionallyTransformState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.conditionally_transform(optimlab.scale(0.0), lambda t: t >= 1)
        >>> state = tx.init(jnp.ones(1))
        >>> u0, state = tx.update(jnp.ones(1), state)
        >>> u1, state = tx.update(jnp.ones(1), state)
        >>> u0, u1
        (Array([1.], dtype=float32), Array([0.], dtype=float32))
    """
    if not callable(should_transform_fn):
        raise TypeError(
            "conditionally_transform: should_transform_fn must be callable, got "
            f"{type(should_transform_fn).__name__}."
        )
    inner_update = _update_with_extra_args(inner)

    def init_fn(params):
        return ConditionallyTransformState(inner.init(params), jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra_args):
        kw = extra_args if forward_extra_args else {}
        on = jnp.asarray(should_transform_fn(state.step, **kw), bool)
        new_updates, new_inner = inner_update(updates, state.inner_state, params, **extra_args)
        out = select(on, new_updates, updates)
        return out, ConditionallyTransformState(
            select(on, new_inner, state.inner_state), safe_increment(state.step)
        )

    return GradientTransformation(init_fn, update_fn)


def named_chain(*transforms: tuple[str, Any]) -> GradientTransformation:
    """:func:`~optimlab.chain` whose state is a dict keyed by the given names.

    The names then prefix :func:`~optimlab.hyperparams` keys
    (``"<name>/learning_rate"``) and select a ``group`` in
    :func:`~optimlab.set_hyperparams`.

    Args:
        *transforms: ``(name, transformation)`` pairs, applied left to right.

    Returns:
        A :class:`~optimlab.GradientTransformation` whose state is ``{name: state}``.

    Raises:
        ValueError: a repeated name.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.named_chain(("clip", optimlab.clip(1.0)), ("opt", optimlab.sgd(0.1)))
        >>> state = tx.init(jnp.zeros(2))
        >>> sorted(state), list(optimlab.hyperparams(state))
        (['clip', 'opt'], ['learning_rate'])
    """
    names = []
    for i, item in enumerate(transforms):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"named_chain: argument {i} must be a (name, transformation) pair.")
        names.append(item[0])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"named_chain: repeated names {dup}.")
    txs = [t for _, t in transforms]
    for name, t in transforms:
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(
                f"named_chain: {name!r} is {type(t).__name__}, not a gradient transformation."
            )
    fns = [_update_with_extra_args(t) for t in txs]

    def init_fn(params):
        return {n: t.init(params) for n, t in zip(names, txs, strict=True)}

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, dict) or set(state) != set(names):
            raise ValueError(f"named_chain: expected a state dict with keys {names}.")
        new_state = {}
        for n, fn in zip(names, fns, strict=True):
            updates, new_state[n] = fn(updates, state[n], params, **extra_args)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)


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
        zero = jnp.zeros([], _norm_dtype(params))
        return MonitorState(zero, zero, zero, inner.init(params))

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
    from ._hyperparams import _path_name

    is_leaf = lambda x: isinstance(x, MonitorState)  # noqa: E731
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
