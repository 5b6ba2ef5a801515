"""Value and gradient from the state: ``value_and_grad_from_state`` reuses a search's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._core._types import ArrayLike
from .._core._validate import checked_arguments

__all__ = ["value_and_grad_from_state"]


def _find_value_and_grad(state: Any) -> list[tuple[Any, Any]]:
    found = []

    def visit(node):
        fields = getattr(node, "_fields", None)
        if fields is not None and "value" in fields and "grad" in fields:
            found.append((node.value, node.grad))
            return
        if isinstance(node, (tuple, list)):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)
        elif hasattr(node, "inner_state"):
            visit(node.inner_state)

    visit(state)
    return found


@checked_arguments
def value_and_grad_from_state(
    value_fn: Callable[..., ArrayLike],
) -> Callable[..., tuple[jax.Array, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search kept.

    The returned function is called as ``f(params, *args, state=opt_state, **kwargs)``.
    When the optimizer state holds a finite ``value`` (with its ``grad``), as
    :func:`scale_by_zoom_linesearch` keeps for the params it moved to, those are
    returned without evaluating ``value_fn``; otherwise (the first step) it calls
    ``jax.value_and_grad(value_fn)(params, *args, **kwargs)``.

    Args:
        value_fn: the objective, a function of the params (and further arguments).

    Returns:
        The function ``(params, *args, state, **kwargs) -> (value, grad)``.

    Raises:
        ValueError: (when called) if the state holds no ``value`` and ``grad``, or
            more than one pair.

    Examples:
        >>> f = lambda x: jnp.sum(x**2)
        >>> state = optimlab.lbfgs().init(jnp.ones(2))
        >>> optimlab.value_and_grad_from_state(f)(jnp.ones(2), state=state)
        (Array(2., dtype=float32), Array([2., 2.], dtype=float32))
    """
    if not callable(value_fn):
        raise TypeError(
            f"value_and_grad_from_state: value_fn must be a function of the params, got "
            f"{type(value_fn).__name__}."
        )

    def value_and_grad(params, *fn_args, state, **fn_kwargs):
        found = _find_value_and_grad(state)
        if len(found) != 1:
            raise ValueError(
                "value_and_grad_from_state: expected exactly one `value` and `grad` in "
                f"the optimizer state, found {len(found)}. Use a state with a line search "
                "such as scale_by_zoom_linesearch."
            )
        value, grad = found[0]
        if grad is None:
            raise ValueError(
                "value_and_grad_from_state: the optimizer state keeps no gradient; "
                "build scale_by_backtracking_linesearch with store_grad=True."
            )
        return lax.cond(
            ~jnp.isinf(value) & ~jnp.isnan(value),
            lambda *_: (value, grad),
            lambda p, a, kw: jax.value_and_grad(value_fn)(p, *a, **kw),
            params,
            fn_args,
            fn_kwargs,
        )

    return value_and_grad
