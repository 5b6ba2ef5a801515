r"""Backtracking line search: optax's Armijo backtracking search as a gradient transformation.

Starting from the last accepted step times ``increase_factor`` (capped), the step
is multiplied by ``decrease_factor`` until the sufficient decrease (Armijo)
condition holds, as ``optax.scale_by_backtracking_linesearch`` does.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._core._base import GradientTransformation
from .._core._types import ArrayLike
from .._core._validate import checked_arguments
from ._linesearch import _real_dtype, _split_kwargs, tree_add_scale, tree_cast_like, tree_vdot

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "scale_by_backtracking_linesearch",
]


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did.

    Attributes:
        num_linesearch_steps: the function evaluations it made (int32).
        decrease_error: how far the accepted step is from sufficient decrease (0 when met).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`.

    Attributes:
        learning_rate: the step the last search accepted.
        value: the objective at the accepted step (``inf`` before the first update).
        grad: the gradient there with ``store_grad=True``, else ``None``.
        info: a :class:`BacktrackingLinesearchInfo`.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: BacktrackingLinesearchInfo


class _Carry(NamedTuple):
    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Any
    decrease_error: jax.Array
    iter_num: jax.Array


@checked_arguments
def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: ArrayLike = 1e-4,
    decrease_factor: ArrayLike = 0.8,
    increase_factor: ArrayLike = 1.5,
    max_learning_rate: ArrayLike = 1.0,
    atol: ArrayLike = 0.0,
    rtol: ArrayLike = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales updates by a step with sufficient decrease, found by backtracking (optax's rule).

    With :math:`f` the objective (``value_fn``), :math:`w` the params and :math:`u`
    the incoming updates, the search starts from :math:`\eta_0 = \min(\gamma
    \eta_{\text{prev}}, \eta_{\max})` (:math:`\gamma` = ``increase_factor``) and
    multiplies the step by ``decrease_factor`` until the decrease error

    .. math::
        \max\bigl(0,\; f(w + \eta u) - (1 + r) f(w) - c_1 \eta\,
            \nabla f(w)^\top u\bigr)

    (NaN counting as :math:`\infty`) is at most ``atol``, or after
    ``max_backtracking_steps`` reductions (:math:`c_1` = ``slope_rtol``,
    :math:`r` = ``rtol``). A step whose objective is not finite is replaced by 0.
    The update is :math:`\eta u`.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)``
    needs the objective's ``value`` and ``grad`` at ``params`` and ``value_fn``;
    extra keyword arguments are passed to ``value_fn`` when it names them.
    With ``store_grad=True`` the gradient at the accepted step is kept, for
    :func:`value_and_grad_from_state`.

    Args:
        max_backtracking_steps: the most step reductions per search.
        slope_rtol: :math:`c_1`.
        decrease_factor: the factor each reduction multiplies the step by.
        increase_factor: :math:`\gamma`.
        max_learning_rate: :math:`\eta_{\max}`.
        atol: the tolerance on the decrease error.
        rtol: :math:`r`, the relative slack on the value.
        store_grad: keep the gradient at the accepted step in the state.
        verbose: accepted for optax's signature; no diagnostics are printed.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> def f(x):
        ...     return jnp.sum((x - 1.0) ** 2)
        >>> tx = optimlab.chain(
        ...     optimlab.sgd(1.0),
        ...     optimlab.scale_by_backtracking_linesearch(max_backtracking_steps=15),
        ... )
        >>> params = jnp.zeros(2)
        >>> state = tx.init(params)
        >>> value, grad = jax.value_and_grad(f)(params)
        >>> updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        >>> float(f(params + updates)) < float(value)
        True

    References:
        Nocedal & Wright, `Numerical Optimization
        <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006, Algorithm 3.1.
    """
    del verbose

    def init_fn(params):
        dtype = _real_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=jax.tree.map(jnp.zeros_like, params) if store_grad else None,
            info=BacktrackingLinesearchInfo(jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, dtype)),
        )

    def decrease_error(stepsize, slope, value, new_value):
        err = new_value - (1.0 + rtol) * value - stepsize * slope_rtol * slope
        return jnp.maximum(jnp.where(jnp.isnan(err), jnp.inf, err), 0.0)

    def update_fn(updates, state, params=None, *, value, grad, value_fn, **extra_args):
        if params is None:
            raise ValueError("scale_by_backtracking_linesearch: update needs params.")
        fn_kwargs, unused = _split_kwargs(value_fn, extra_args)
        if unused:
            raise TypeError(
                "scale_by_backtracking_linesearch: keyword arguments not taken by "
                f"value_fn: {unused}. Pass only arguments value_fn accepts."
            )
        slope = jnp.real(tree_vdot(updates, jax.tree.map(jnp.conj, grad)))
        fun = functools.partial(value_fn, **fn_kwargs)
        dtype = _real_dtype(params)

        def going(c: _Carry):
            return ~(c.decrease_error <= atol) & (c.iter_num <= max_backtracking_steps)

        def body(c: _Carry) -> _Carry:
            lr = jnp.where(c.iter_num > 0, decrease_factor * c.learning_rate, c.learning_rate)
            trial = tree_add_scale(params, lr, updates)
            new_grad = c.new_grad
            if store_grad:
                new_value, jvp = jax.linearize(fun, trial)
                err = decrease_error(lr, slope, value, new_value)
                new_grad = lax.cond(
                    (err <= atol) | (c.iter_num == max_backtracking_steps),
                    lambda p: jax.linear_transpose(jvp, p)(1.0)[0],
                    lambda *_: c.new_grad,
                    trial,
                )
            else:
                new_value = fun(trial)
                err = decrease_error(lr, slope, value, new_value)
            return tree_cast_like(_Carry(lr, new_value, new_grad, err, c.iter_num + 1), c)

        start = _Carry(
            learning_rate=jnp.minimum(increase_factor * state.learning_rate, max_learning_rate),
            new_value=jnp.asarray(value, dtype),
            new_grad=jax.tree.map(jnp.zeros_like, params),
            decrease_error=jnp.asarray(jnp.inf, dtype),
            iter_num=jnp.asarray(0, jnp.int32),
        )
        end = lax.while_loop(going, body, start)
        lr = jnp.where(jnp.isinf(end.decrease_error), 0.0, end.learning_rate)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=lr,
            value=end.new_value,
            grad=end.new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(end.iter_num, end.decrease_error),
        )
        return jax.tree.map(lambda u: lr.astype(u.dtype) * u, updates), tree_cast_like(
            new_state, state
        )

    return GradientTransformation(init_fn, update_fn)
