"""Mechanic: a learned scale for any base optimizer's updates (the ``mechanize`` wrapper)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._types import ArrayLike, OptState, Updates
from .._transforms._alias import alias_hyperparams
from .._transforms._norms import sq_norm

__all__ = ["MechanicState", "mechanize"]


class MechanicState(NamedTuple):
    """State of :func:`mechanize` (inside its hyperparameter state).

    Attributes:
        base_optimizer_state: the wrapped optimizer's state.
        r: per-beta reward, shape ``[num_betas]``.
        m: per-beta running maximum of :math:`|h_t|`.
        v: per-beta second moment of :math:`h_t`.
        s: per-beta scale; the total scale is their sum.
        x0: the reference point :math:`x_0`.
    """

    base_optimizer_state: OptState
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Updates


def _mechanic(base_optimizer, weight_decay, eps, s_init, num_betas, step):
    base_update = _update_with_extra_args(base_optimizer)

    def init_fn(params):
        _tree.reject_complex("mechanize", params)
        sd = _tree.scalar_dtype(params)
        s = jnp.ones([num_betas], sd) * jnp.asarray(s_init).astype(sd)
        z1, z2, z3 = (jnp.zeros([num_betas], sd) for _ in range(3))
        return MechanicState(base_optimizer.init(params), z1, z2, z3, s, _tree.copy(params))

    def update_fn(updates, state, params=None, **extra_args):
        _tree.check_match("mechanize", updates, state.x0)
        _validate.require_params("mechanize", params)
        sd = state.s.dtype
        c = lambda x: jnp.asarray(x).astype(sd)
        wd, e, s0 = c(weight_decay), c(eps), c(s_init)
        base_u, base_state = base_update(updates, state.base_optimizer_state, params, **extra_args)
        x0 = _tree.tree_map(
            lambda a, p: jnp.where(step == 0, jnp.asarray(p).astype(a.dtype), a), state.x0, params
        )
        s_sum = jnp.sum(state.s)
        grad_norm, param_norm = jnp.sqrt(sq_norm(updates, sd)), jnp.sqrt(sq_norm(params, sd))
        k = wd * s_sum * grad_norm / (param_norm + e)
        g_wd = _tree.tree_map(
            lambda g, p: _tree.upcast(g) + _tree.scalar_like(k, _tree.upcast(g)) * _tree.upcast(p),
            updates,
            params,
        )
        delta_prev = _tree.tree_map(
            lambda a, p: (
                (_tree.upcast(a) - _tree.upcast(p)) / _tree.scalar_like(s_sum + e, _tree.upcast(p))
            ),
            x0,
            params,
        )
        h = _tree.tree_sum(lambda a, b: a * b.astype(a.dtype), sd, g_wd, delta_prev)
        clipped = jnp.clip(h, -state.m, state.m)
        betas = (1 - jnp.asarray([0.1**i for i in range(1, num_betas + 1)])).astype(sd)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + e)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped * state.s
        wealth = s0 / num_betas * m + jnp.maximum(r, 0)
        s = wealth / (jnp.sqrt(v) + e)
        total = jnp.sum(s)

        def one(g, a, dp, u, p):
            ac = _tree.upcast(a)
            delta = dp.astype(ac.dtype) - _tree.upcast(u).astype(ac.dtype)
            new = ac - _tree.scalar_like(total, ac) * delta
            return (new - _tree.upcast(p).astype(ac.dtype)).astype(g.dtype)

        out = _tree.tree_map(one, updates, x0, delta_prev, base_u, params)
        return out, MechanicState(base_state, r, m, v, s, x0)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def mechanize(
    base_optimizer: Any,
    weight_decay: ArrayLike = 0.01,
    eps: ArrayLike = 1e-8,
    s_init: ArrayLike = 1e-6,
    num_betas: int = 6,
) -> GradientTransformation:
    r"""Mechanic: learns by online betting a scale :math:`s_t` for a base optimizer's updates.

    With :math:`\Delta_t = \sum_{i \le t} u_i` the base optimizer's accumulated
    updates, the parameters are :math:`x_{t+1} = x_0 + s_{t+1}\,\Delta_t`. With
    :math:`\delta_{t-1} = (x_0 - x_t)/(s_t + \epsilon)` and
    :math:`h_t = \langle g_t + \lambda s_t \frac{\lVert g_t\rVert}{\lVert x_t\rVert +
    \epsilon} x_t,\ \delta_{t-1}\rangle`, for each :math:`\beta_j = 1 - 10^{-j}`:

    .. math::
        m_{j} &\leftarrow \max(\beta_j m_j, |h_t| + \epsilon), \quad
        v_j \leftarrow \beta_j^2 v_j + h_t^2, \quad
        r_j \leftarrow \beta_j r_j + \operatorname{clip}(h_t, \pm m_j^{\text{old}})\, s_j \\
        s_j &\leftarrow \frac{s_{\text{init}} m_j / n + \max(r_j, 0)}{\sqrt{v_j} + \epsilon},
        \qquad s_{t+1} = \textstyle\sum_j s_j

    The wrapper's own numbers (``weight_decay``, ``eps``, ``s_init``) live in its
    hyperparameter state; the base optimizer keeps its own state (and, for an
    optimlab alias, its own step counter). Matches optax's ``contrib.mechanize``.

    Args:
        base_optimizer: any transformation (optimlab or optax).
        weight_decay: :math:`\lambda`, scaled as above.
        eps: :math:`\epsilon`.
        s_init: :math:`s_{\text{init}} > 0`, the initial scale of each beta.
        num_betas: :math:`n`, the number of betas (a structure flag).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.mechanize(optimlab.sgd(1.0), s_init=0.01)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(params), params)
        >>> [round(float(u), 4) for u in updates]  # the base step -g, scaled by s_init
        [-0.01, 0.02]

    References:
        Cutkosky, Defazio & Mehta, `Mechanic: A Learning Rate Tuner
        <https://arxiv.org/abs/2306.00144>`_, 2023.
    """
    if not (hasattr(base_optimizer, "init") and hasattr(base_optimizer, "update")):
        raise TypeError(
            f"mechanize: base_optimizer is {type(base_optimizer).__name__}, not a "
            "gradient transformation."
        )
    _validate.weight_decay(weight_decay)
    _validate.eps(eps)
    _validate.positive(s_init, "s_init")
    _validate.positive_int(num_betas, "num_betas")
    numbers = dict(weight_decay=weight_decay, eps=eps, s_init=s_init)  # the state's
    _rules.check_args("mechanize", **numbers, num_betas=num_betas)

    def build(step, h):
        return _mechanic(base_optimizer, h["weight_decay"], h["eps"], h["s_init"], num_betas, step)

    return alias_hyperparams(build, **numbers)
