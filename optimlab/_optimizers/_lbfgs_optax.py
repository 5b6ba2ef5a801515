"""optax's L-BFGS: ``scale_by_lbfgs`` and the ``lbfgs`` alias with a zoom line search."""

from __future__ import annotations

import functools
import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._core import _rules
from .._core._base import GradientTransformation, chain, identity, safe_increment
from .._core._types import ScalarOrSchedule
from .._core._validate import checked_arguments
from .._transforms._linesearch import scale_by_zoom_linesearch
from .._transforms._scale import scale, scale_by_learning_rate

__all__ = ["ScaleByLBFGSState", "scale_by_lbfgs", "lbfgs"]


def _vdot(x: Any, y: Any) -> jax.Array:
    """``sum_i <conj(x_i), y_i>`` over the leaves, left to right from 0 (optax's order)."""
    terms = []
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
        if jnp.issubdtype(a.dtype, jnp.complexfloating):
            a = jnp.conj(a)
        terms.append(jnp.tensordot(a, b, a.ndim, precision=lax.Precision.HIGHEST))
    return functools.reduce(operator.add, terms)  # 0 + t equals t: optax's sum from 0


def _sq_norm(x: Any) -> jax.Array:
    sums = [jnp.sum(jnp.square(v.real) + jnp.square(v.imag)) for v in jax.tree.leaves(x)]
    return functools.reduce(operator.add, sums)


def _real_dtype(params: Any) -> jnp.dtype:
    return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


class ScaleByLBFGSState(NamedTuple):
    r"""State of :func:`scale_by_lbfgs` (optax's ``ScaleByLBFGSState``).

    Attributes:
        count: the updates made (int32, saturating).
        params: the params of the last update.
        updates: the incoming updates (gradients) of the last update.
        diff_params_memory: the last ``memory_size`` params differences
            :math:`\delta w`, stacked on a leading axis (a ring buffer).
        diff_updates_memory: the matching updates differences :math:`\delta u`.
        weights_memory: :math:`\rho = 1 / \delta u^\top \delta w` per slot
            (0 where the product is 0).
    """

    count: jax.Array
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _two_loop(updates, dw_mem, du_mem, rhos, gamma, newest):
    """Nocedal & Wright's Algorithm 7.4: the inverse-Hessian estimate times ``updates``."""
    m = rhos.shape[0]
    # Slots from the oldest pair to the newest; the two scans run it both ways.
    order = (newest + jnp.arange(m, dtype=newest.dtype)) % m

    def backward(q, i):
        dw, du = jax.tree.map(lambda x: x[i], (dw_mem, du_mem))
        alpha = rhos[i] * jnp.real(_vdot(dw, q))
        new = jax.tree.map(lambda a, b: (a + (-alpha).astype(b.dtype) * b).astype(a.dtype), q, du)
        return new, alpha

    q, alphas = lax.scan(backward, updates, order, reverse=True)
    r = jax.tree.map(lambda a: jnp.asarray(gamma).astype(a.dtype) * a, q)

    def forward(r, i_alpha):
        i, alpha = i_alpha
        dw, du = jax.tree.map(lambda x: x[i], (dw_mem, du_mem))
        beta = rhos[i] * jnp.real(_vdot(du, r))
        new = jax.tree.map(
            lambda a, b: (a + (alpha - beta).astype(b.dtype) * b).astype(a.dtype), r, dw
        )
        return new, beta

    r, _ = lax.scan(forward, r, (order, alphas))
    return r


@checked_arguments
def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    r"""Multiplies the updates by an L-BFGS estimate of the inverse Hessian (optax's rule).

    With :math:`w_k` the params and :math:`u_k` the incoming updates (gradients)
    at update :math:`k`, the pair :math:`\delta w_{k-1} = w_k - w_{k-1}`,
    :math:`\delta u_{k-1} = u_k - u_{k-1}` and :math:`\rho_{k-1} = 1/(\delta
    u_{k-1}^\top \delta w_{k-1})` (0 when the product is 0) replaces the oldest of
    the ``memory_size`` pairs kept, and the output is :math:`P_k u_k` with

    .. math::
        P_{k,j+1} &= V_j^\top P_{k,j} V_j + \rho_j\, \delta w_j \delta w_j^\top,\quad
            V_j = I - \rho_j\, \delta u_j \delta w_j^\top,\quad j = k-m \dots k-1 \\
        P_{k,k-m} &= \gamma_k I,\qquad
            \gamma_k = \frac{\delta w_{k-1}^\top \delta u_{k-1}}{\delta u_{k-1}^\top
            \delta u_{k-1}}\ \text{(1 if that is 0 or without scale_init_precond)}

    computed by the two-loop recursion. At the first update there are no pairs
    and :math:`\gamma_0 = \min(1, 1/\|u_0\|)` (with ``scale_init_precond``), so the
    first step stays within a unit ball. The output is a direction: chain it with
    a negative scale and a line search, as :func:`lbfgs` does.

    Args:
        memory_size: :math:`m`, the number of pairs kept.
        scale_init_precond: use :math:`\gamma_k` above rather than 1.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Raises:
        TypeError: if ``memory_size`` is not an int.
        ValueError: if ``memory_size < 1``.

    Examples:
        >>> tx = optimlab.scale_by_lbfgs(memory_size=5)
        >>> params = jnp.array([1.0, 2.0])
        >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
        >>> updates  # scaled to unit norm at the first update
        Array([0.6, 0.8], dtype=float32)

    References:
        Nocedal & Wright, `Numerical Optimization
        <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006, Algorithms 7.4
        and 7.5. Liu & Nocedal, `On the limited memory BFGS method for large scale
        optimization <https://doi.org/10.1007/BF01589116>`_, 1989.
    """
    _rules.check_args("scale_by_lbfgs", memory_size=memory_size)

    def init_fn(params):
        stacked = jax.tree.map(lambda p: jnp.zeros((memory_size, *jnp.shape(p)), p.dtype), params)
        return ScaleByLBFGSState(
            count=jnp.asarray(0, jnp.int32),
            params=jax.tree.map(jnp.zeros_like, params),
            updates=jax.tree.map(jnp.zeros_like, params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros(memory_size, _real_dtype(params)),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("scale_by_lbfgs: update needs params.")
        newest = state.count % memory_size
        slot = (state.count - 1) % memory_size
        dw = jax.tree.map(lambda a, b: a - b, params, state.params)
        du = jax.tree.map(lambda a, b: a - b, updates, state.updates)
        curvature = jnp.real(_vdot(du, dw))
        rho = jnp.where(curvature == 0.0, 0.0, 1.0 / curvature)
        first = state.count == 0
        dw, du, rho = jax.tree.map(lambda x: jnp.where(first, jnp.zeros_like(x), x), (dw, du, rho))
        dw_mem, du_mem, rhos = jax.tree.map(
            lambda mem, x: mem.at[slot].set(x),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (dw, du, rho),
        )
        if scale_init_precond:
            num = jnp.real(_vdot(du, dw))
            den = _sq_norm(du)
            gamma = jnp.where(den > 0.0, num / den, 1.0)
            norm = jnp.sqrt(_sq_norm(lax.stop_gradient(updates)))
            gamma = jnp.where(first, jnp.minimum(1.0, 1.0 / norm), gamma)
        else:
            gamma = 1.0
        direction = _two_loop(updates, dw_mem, du_mem, rhos, gamma, newest)
        new_state = ScaleByLBFGSState(
            count=safe_increment(state.count),
            params=params,
            updates=updates,
            diff_params_memory=dw_mem,
            diff_updates_memory=du_mem,
            weights_memory=rhos,
        )
        return direction, jax.tree.map(
            lambda t, o: t.astype(o.dtype) if hasattr(o, "dtype") else t, new_state, state
        )

    return GradientTransformation(init_fn, update_fn)


_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one"
)


@checked_arguments
def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = _DEFAULT_LINESEARCH,
) -> GradientTransformation:
    r"""optax's L-BFGS: an L-BFGS direction, a descent sign and a zoom line search.

    The chain ``scale_by_lbfgs(memory_size, scale_init_precond)``, then
    ``scale(-1)`` (or ``scale_by_learning_rate(learning_rate)``), then
    ``linesearch`` (by default :func:`scale_by_zoom_linesearch` with at most 20
    evaluations and a first guess of 1). The params move as

    .. math:: w_{k+1} = w_k - \eta_k\, \alpha\, P_k \nabla f(w_k)

    with :math:`P_k` the inverse-Hessian estimate of :func:`scale_by_lbfgs`,
    :math:`\alpha` the learning rate (1 when ``None``) and :math:`\eta_k` the
    line search's step. Each ``update(grad, state, params, value=value,
    grad=grad, value_fn=f)`` needs the objective's value and gradient at
    ``params`` (:func:`value_and_grad_from_state` reuses those the search kept)
    and the objective itself. For torch's L-BFGS see :func:`torch_lbfgs`.

    Args:
        learning_rate: :math:`\alpha`, a scalar or schedule; ``None`` for 1.
        memory_size: the number of curvature pairs kept.
        scale_init_precond: scale the initial inverse-Hessian estimate (see
            :func:`scale_by_lbfgs`).
        linesearch: a line search transformation, or ``None`` for none.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> def f(x):
        ...     return jnp.sum(x**2)
        >>> solver = optimlab.lbfgs()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> opt_state = solver.init(params)
        >>> value_and_grad = optimlab.value_and_grad_from_state(f)
        >>> for _ in range(2):
        ...     value, grad = value_and_grad(params, state=opt_state)
        ...     updates, opt_state = solver.update(
        ...         grad, opt_state, params, value=value, grad=grad, value_fn=f)
        ...     params = optimlab.apply_updates(params, updates)
        ...     print(f"{float(f(params)):.2E}")
        7.52E+00
        7.46E-14

    References:
        Nocedal & Wright, `Numerical Optimization
        <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006, Algorithms
        3.5, 3.6, 7.4 and 7.5. Liu & Nocedal, `On the limited memory BFGS method for
        large scale optimization <https://doi.org/10.1007/BF01589116>`_, 1989.
    """
    _rules.check_args("lbfgs", learning_rate=learning_rate, memory_size=memory_size)
    sign = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        sign,
        identity() if linesearch is None else linesearch,
    )
