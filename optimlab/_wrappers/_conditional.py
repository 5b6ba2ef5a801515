"""Conditional transformations (private)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _validate
from .._core._base import GradientTransformation, _update_with_extra_args, safe_increment
from .._core._tree import select
from .._core._types import OptState
from .._core._validate import checked_arguments

__all__ = ["ConditionallyTransformState", "conditionally_transform"]


class ConditionallyTransformState(NamedTuple):
    """State of :func:`conditionally_transform`.

    Attributes:
        inner_state: the inner transformation's state (unchanged on skipped steps).
        step: int32 number of calls so far (the argument of the condition).
    """

    inner_state: OptState
    step: jax.Array


@checked_arguments
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
        _validate.state_type("conditionally_transform", state, ConditionallyTransformState)
        kw = extra_args if forward_extra_args else {}
        on = jnp.asarray(should_transform_fn(state.step, **kw), bool)
        new_updates, new_inner = inner_update(updates, state.inner_state, params, **extra_args)
        out = select(on, new_updates, updates)
        return out, ConditionallyTransformState(
            select(on, new_inner, state.inner_state), safe_increment(state.step)
        )

    return GradientTransformation(init_fn, update_fn)
