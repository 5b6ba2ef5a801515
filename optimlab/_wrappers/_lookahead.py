"""Lookahead: fast weights from an inner optimizer, slow weights kept in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args, require_transformation
from .._core._tree import select
from .._core._types import ArrayLike, OptState, Params
from .._core._validate import UNSET, checked_arguments

__all__ = ["LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
        steps_since_sync: int32 fast steps taken since the last synchronisation.
        slow: the slow weights (read them with :func:`~optimlab.averaged_params`).
        fast_state: the fast optimizer's state.
    """

    steps_since_sync: jax.Array
    slow: Params
    fast_state: OptState


@checked_arguments
def lookahead(
    fast_optimizer: Any = UNSET,
    sync_period: int = UNSET,
    slow_step_size: ArrayLike = UNSET,
    reset_state: bool = False,
    *,
    fast: Any = None,
) -> GradientTransformation:
    r"""Lookahead: ``sync_period`` fast steps forward, then one step back toward the slow weights.

    The params are the fast weights (compute gradients at them); the slow
    weights :math:`\phi` live in the state. Every ``sync_period``-th step:

    .. math::
        \phi \leftarrow \phi + \alpha\,(\theta - \phi), \qquad \theta \leftarrow \phi

    where :math:`\theta` is the fast weights after the fast optimizer's step.
    The trajectory, and the formulas used, are those of ``optax.lookahead``;
    optax carries the slow weights in a ``LookaheadParams`` pair instead, which
    here would make the params' structure differ from the gradients'. Evaluate
    with the slow weights, read with :func:`~optimlab.averaged_params`.

    The arguments are optax's, in optax's order; ``sync_period`` and
    ``slow_step_size`` are required.

    Args:
        fast_optimizer: the fast (inner) optimizer.
        sync_period: :math:`k \ge 1`, fast steps between synchronisations.
        slow_step_size: :math:`\alpha \in [0, 1]`.
        reset_state: re-initialise the fast optimizer's state at each synchronisation.
        fast: the former name of ``fast_optimizer``, deprecated (a
            ``DeprecationWarning``); removed in the next release.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`LookaheadState`.

    Examples:
        >>> tx = optimlab.lookahead(optimlab.sgd(1.0), sync_period=2, slow_step_size=0.5)
        >>> params = jnp.array([0.0])
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update(jnp.array([-1.0]), state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> params, optimlab.averaged_params(state)
        (Array([1.], dtype=float32), Array([1.], dtype=float32))

    References:
        Zhang et al., `Lookahead Optimizer: k steps forward, 1 step back
        <https://arxiv.org/abs/1907.08610>`_, 2019.
    """
    fast = _validate.renamed("lookahead", "fast", "fast_optimizer", fast, fast_optimizer)
    for name, value in (
        ("fast_optimizer", fast),
        ("sync_period", sync_period),
        ("slow_step_size", slow_step_size),
    ):
        if value is UNSET:
            raise TypeError(f"lookahead: missing the argument {name!r}.")
    sync_period = _validate.integer("lookahead", "sync_period", sync_period, 1)
    _validate.in_range(slow_step_size, "slow_step_size", 0.0, 1.0)
    require_transformation(fast, "lookahead: fast_optimizer")
    _rules.check_args("lookahead", sync_period=sync_period, slow_step_size=slow_step_size)
    fast_update = _update_with_extra_args(fast)

    def init_fn(params):
        slow = _tree.tree_map(lambda p: jnp.array(p, copy=True), params)
        return LookaheadState(jnp.zeros([], jnp.int32), slow, fast.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(
                "lookahead: params is None; pass the current (fast) params to update()."
            )
        if not isinstance(state, LookaheadState):
            raise ValueError(
                f"lookahead: expected a LookaheadState, got {type(state).__name__}; pass the "
                "state returned by this lookahead's init."
            )
        _tree.check_match("lookahead", updates, state.slow)
        updates, fast_state = fast_update(updates, state.fast_state, params, **extra_args)
        sync = state.steps_since_sync == sync_period - 1

        def one(u, f, s):
            # optax's formulas: diff = f + u - s; the fast update moves to the new slow weights.
            # Mixed param/update dtypes (bf16 params, f32 grads) meet in the wider one.
            with jax.numpy_dtype_promotion("standard"):
                dt = jnp.promote_types(u.dtype, f.dtype)
            uw = u.astype(dt)
            diff = f.astype(dt) + uw - s.astype(dt)
            a = _tree.scalar_like(slow_step_size, diff)
            new_u = jnp.where(sync, uw - (1 - a) * diff, uw).astype(u.dtype)
            new_s = jnp.where(sync, s.astype(dt) + a * diff, s.astype(dt)).astype(s.dtype)
            return new_u, new_s

        new_updates, slow = _tree.tree_map_multi(one, 2, updates, params, state.slow)
        if reset_state:
            fast_state = select(sync, fast.init(params), fast_state)
        steps = jnp.where(sync, jnp.zeros_like(state.steps_since_sync), state.steps_since_sync + 1)
        return new_updates, LookaheadState(steps, slow, fast_state)

    return GradientTransformation(init_fn, update_fn)
