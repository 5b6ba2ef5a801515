"""Prodigy: Adam with a learning rate estimated from the distance to the solution."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._step_count import next_count
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._distance_adaptation import (
    adam_ratio,
    decayed_direction,
    grown,
    initial,
    step_count,
)
from .._transforms._norms import l1_norm

__all__ = ["ProdigyState", "prodigy"]


@never_negative("exp_avg_sq")
class ProdigyState(NamedTuple):
    r"""State of :func:`prodigy`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        exp_avg: first moment of :math:`d_t g_t`.
        exp_avg_sq: second moment of :math:`d_t g_t`.
        grad_sum: :math:`s_t`, the :math:`\beta_3`-discounted sum of the scaled gradients.
        params0: the initial parameters :math:`x_0`.
        estim_lr: :math:`d_t`, the estimated distance :math:`\lVert x_0 - x_*\rVert`.
        numerator_weighted: :math:`r_t`, the discounted, weighted sum of
            :math:`\langle g_t, x_0 - x_t\rangle`.
    """

    count: jax.Array | None
    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    params0: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array


def _scale_by_prodigy(
    learning_rate,
    beta1,
    beta2,
    eps,
    estim_lr0,
    estim_lr_coef,
    beta3,
    weight_decay,
    *,
    safeguard_warmup=False,
    step=None,
):
    """The whole Prodigy step (learning rate and decay included); see :func:`prodigy`."""

    def init_fn(params):
        count, moments, d0, r0 = initial("prodigy", params, estim_lr0, step)
        return ProdigyState(count, *moments, _tree.copy(params), d0, r0)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        count = step_count("prodigy", updates, state, params, step)
        sd = state.estim_lr.dtype
        # Scalar math on the hyperparameters (1 - beta, the bias correction) stays in
        # their own precision (float64 under x64, as optax's Python floats); results are
        # cast to the statistics' dtype where they meet them.
        b1, b2 = jnp.asarray(beta1), jnp.asarray(beta2)
        b3, d0, lr, wd = (
            jnp.asarray(x).astype(sd) for x in (beta3, estim_lr0, learning_rate, weight_decay)
        )
        d = state.estim_lr
        dlr = d * lr * adam_ratio(count, b1, b2, sd)
        num = _tree.tree_sum(
            lambda g, p0, p: _tree.upcast(g) * (_tree.upcast(p0) - _tree.upcast(p)),
            sd,
            updates,
            state.params0,
            params,
        )

        def moments(g, m, v, s):
            gc = _tree.upcast(g)
            sc = lambda x: _tree.scalar_like(x, gc)
            dg = sc(d) * gc
            m_new = sc(b1) * m.astype(gc.dtype) + sc(1 - b1) * dg
            v_new = sc(b2) * v.astype(gc.dtype) + sc(1 - b2) * dg * dg
            w = d if safeguard_warmup else dlr
            s_new = sc(b3) * s.astype(gc.dtype) + sc(w) * dg / sc(d0)
            return m_new.astype(m.dtype), v_new.astype(v.dtype), s_new.astype(s.dtype)

        m, v, s = _tree.tree_map_multi(
            moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum
        )
        nw = b3 * state.numerator_weighted + d / d0 * dlr * num
        d_new = grown(d, jnp.asarray(estim_lr_coef).astype(sd) * nw, l1_norm(s, sd))

        def direction(m_, v_, sc):
            return -sc(dlr) * m_ / (jnp.sqrt(v_) + sc(d_new) * sc(eps))

        out = decayed_direction(direction, wd, dlr, updates, m, v, params)
        count = next_count(step, state)
        return out, ProdigyState(count, m, v, s, state.params0, d_new, nw)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    beta3: ScalarOrSchedule | None = None,
    eps: ScalarOrSchedule = 1e-8,
    estim_lr0: ArrayLike = 1e-6,
    estim_lr_coef: ScalarOrSchedule = 1.0,
    weight_decay: ScalarOrSchedule = 0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformation:
    r"""Prodigy: an Adam whose step size :math:`d_t` estimates the distance to the solution.

    With :math:`\hat\eta_t = d_t\,\eta\,\sqrt{1-\beta_2^t}/(1-\beta_1^t)`:

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, d_t g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, d_t^2 g_t^2 \\
        r_t &= \beta_3 r_{t-1} + \frac{d_t}{d_0}\,\hat\eta_t\,\langle g_t, x_0 - x_t\rangle,
        \qquad s_t = \beta_3 s_{t-1} + \frac{\hat\eta_t}{d_0}\, d_t g_t \\
        d_{t+1} &= \max\Big(d_t,\ c\,\frac{r_t}{\lVert s_t\rVert_1}\Big), \qquad
        u_t = -\hat\eta_t\Big(\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon} + \lambda x_t\Big)

    (with ``safeguard_warmup``, :math:`s_t` uses :math:`d_t` instead of
    :math:`\hat\eta_t`). Matches optax's ``contrib.prodigy``, except that a zero
    :math:`\lVert s_t\rVert_1` (zero gradients so far) keeps :math:`d_t` where optax
    produces NaN. The betas are stored as ``beta1``/``beta2``; ``beta3=None``
    means :math:`\sqrt{\beta_2}` at every step.

    Args:
        learning_rate: :math:`\eta`, a multiplier of the estimated step (keep 1).
        betas: :math:`(\beta_1, \beta_2)`.
        beta3: :math:`\beta_3`, or ``None`` for :math:`\sqrt{\beta_2}`.
        eps: :math:`\epsilon`.
        estim_lr0: the initial estimate :math:`d_0 > 0`.
        estim_lr_coef: :math:`c`, a multiplier of the estimate.
        weight_decay: decoupled decay :math:`\lambda`.
        safeguard_warmup: leave the learning rate out of :math:`s_t` (for warmups).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        The estimate :math:`d_t` grows geometrically from ``estim_lr0 = 1e-6``, then
        settles once it is of the order of the distance to the solution:

        >>> f = lambda x: jnp.sum(x ** 2)
        >>> tx = optimlab.prodigy()
        >>> x = jnp.array([1.0, 2.0, 3.0])
        >>> state = tx.init(x)
        >>> for t in range(1, 51):
        ...     updates, state = tx.update(jax.grad(f)(x), state, x)
        ...     x = optimlab.apply_updates(x, updates)
        ...     if t % 10 == 0:
        ...         print(t, f"{float(state.inner_state.estim_lr):.0e}")
        10 2e-05
        20 9e-04
        30 6e-02
        40 8e-01
        50 8e-01

    References:
        Mishchenko & Defazio, `Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner <https://arxiv.org/abs/2306.06101>`_, 2023.
    """
    beta1, beta2 = betas
    _validate.lr(learning_rate)
    _validate.beta(beta1, 0)
    _validate.beta(beta2, 1)
    if beta3 is not None:
        _validate.beta(beta3, 2)
    _validate.eps(eps)
    _validate.positive(estim_lr0, "estim_lr0")
    _validate.non_negative(estim_lr_coef, "estim_lr_coef")
    _validate.weight_decay(weight_decay)
    # the state's numbers, in _scale_by_prodigy's order
    numbers = dict(learning_rate=learning_rate, beta1=beta1, beta2=beta2, eps=eps)
    numbers.update(estim_lr0=estim_lr0, estim_lr_coef=estim_lr_coef)
    _rules.check_args("prodigy", **numbers, beta3=beta3, weight_decay=weight_decay)

    def build(step, h):
        b3 = h["beta3"] if beta3 is not None else jnp.sqrt(jnp.asarray(h["beta2"]))
        wd = h.get("weight_decay", 0.0)
        return _scale_by_prodigy(
            *[h[k] for k in numbers],
            beta3=b3,
            weight_decay=wd,
            safeguard_warmup=safeguard_warmup,
            step=step,
        )

    return alias_hyperparams(build, **numbers, **optional(beta3=beta3, weight_decay=weight_decay))
