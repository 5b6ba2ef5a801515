"""COCOB-Backprop: parameter-free training by coin betting."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._scale import add_decayed_weights, scale

__all__ = ["COCOBState", "scale_by_cocob", "cocob"]


@never_negative("scale", "subgradients")
class COCOBState(NamedTuple):
    r"""State of :func:`scale_by_cocob` (every tree in at least float32).

    Attributes:
        init_particles: the initial parameters :math:`x_0`.
        cumulative_gradients: :math:`\theta_t = -\sum_i g_i`.
        scale: :math:`L_t = \max(\epsilon, \max_i |g_i|)`.
        subgradients: :math:`G_t = \sum_i |g_i|`.
        reward: :math:`R_t`, the betting reward.
    """

    init_particles: Updates
    cumulative_gradients: Updates
    scale: Updates
    subgradients: Updates
    reward: Updates


@_validate.checked_arguments
def scale_by_cocob(alpha: ArrayLike = 100.0, eps: ArrayLike = 1e-8) -> GradientTransformation:
    r"""The COCOB-Backprop step, returned as an update of the parameters.

    See :func:`cocob` for the rule. The statistics are kept in at least float32
    (optax keeps them in the params' dtype, where ``eps=1e-8`` underflows to zero
    in float16), and a zero :math:`L_t (G_t + L_t)` gives a zero step instead of NaN.

    Args:
        alpha: :math:`\alpha > 0`, bounds the fraction of wealth bet early on.
        eps: :math:`\epsilon`, the initial :math:`L_0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`COCOBState`.
    """
    _validate.positive(alpha, "alpha")
    _validate.eps(eps)
    _rules.check_args("scale_by_cocob", alpha=alpha, eps=eps)

    def rule(g, p, p0, c, lmax, gsum, r):
        lmax = jnp.maximum(lmax, jnp.abs(g))
        gsum = gsum + jnp.abs(g)
        r = jnp.maximum(r - g * (p - p0), 0)
        c = c - g
        den = lmax * jnp.maximum(gsum + lmax, _tree.scalar_like(alpha, c) * lmax)
        bet = c / jnp.where(den > 0, den, 1) * (lmax + r)
        return p0 + bet - p, p0, c, lmax, gsum, r

    def stat(fill):  # kept in at least float32
        return Slot(fill=lambda p: fill(_tree.upcast(jnp.asarray(p))))

    zero = stat(jnp.zeros_like)
    slots = (
        stat(jnp.array),
        zero,
        stat(lambda p: jnp.full_like(p, 1) * _tree.scalar_like(eps, p)),
        zero,
        zero,
    )
    return lift(
        "cocob",
        rule,
        COCOBState,
        slots,
        counter=False,
        check_params=functools.partial(_tree.reject_complex, "cocob"),
        with_params=True,
    )


@_validate.checked_arguments
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: ScalarOrSchedule = 100.0,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""COCOB-Backprop: each coordinate bets a fraction of its winnings, no step size to tune.

    With :math:`g_t = \eta\,(\nabla f(x_t) + \lambda x_t)` (the learning rate only
    rescales the gradients):

    .. math::
        L_t &= \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
        R_t = \max\big(R_{t-1} - g_t (x_t - x_0), 0\big), \quad
        \theta_t = \theta_{t-1} - g_t \\
        x_{t+1} &= x_0 + \frac{\theta_t}{L_t \max(G_t + L_t,\ \alpha L_t)}\,(L_t + R_t)

    Matches optax's ``contrib.cocob`` (see :func:`scale_by_cocob` for the state dtype).

    Args:
        learning_rate: :math:`\eta`, a gradient multiplier (keep 1).
        alpha: :math:`\alpha`.
        eps: :math:`\epsilon`, the initial scale :math:`L_0`.
        weight_decay: L2 penalty :math:`\lambda` added to the gradient.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.cocob()
        >>> params = jnp.zeros(3)
        >>> updates, _ = tx.update(jnp.array([2.0, -0.5, 1e3]), tx.init(params), params)
        >>> updates  # the first bet: -sign(g) / alpha, whatever the gradient's size
        Array([-0.01,  0.01, -0.01], dtype=float32)

    References:
        Orabona & Tommasi, `Training Deep Networks without Learning Rates Through
        Coin Betting <https://arxiv.org/abs/1705.07795>`_, 2017.
    """
    _validate.lr(learning_rate)
    _validate.positive(alpha, "alpha")
    _validate.eps(eps)
    _validate.weight_decay(weight_decay)
    numbers: dict[str, Any] = dict(learning_rate=learning_rate, alpha=alpha, eps=eps)
    _rules.check_args("cocob", **numbers, weight_decay=weight_decay)
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        del step
        txs = [add_decayed_weights(h["weight_decay"], mask)] if use_decay else []
        return chain(*txs, scale(h["learning_rate"]), scale_by_cocob(h["alpha"], h["eps"]))

    return alias_hyperparams(build, "cocob", **numbers, **optional(weight_decay=weight_decay))
