"""D-Adaptation for AdamW: a learning rate estimated from a lower bound on the distance."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._step_count import next_count
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._distance_adaptation import (
    adam_ratio,
    decayed_direction,
    grown,
    initial,
    step_count,
)
from .._transforms._norms import l1_norm

__all__ = ["DAdaptAdamWState", "dadapt_adamw"]


@never_negative("exp_avg_sq")
class DAdaptAdamWState(NamedTuple):
    r"""State of :func:`dadapt_adamw`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        exp_avg: first moment of :math:`\hat\eta_t g_t`.
        exp_avg_sq: second moment of :math:`g_t`.
        grad_sum: :math:`s_t`, the :math:`\sqrt{\beta_2}`-average of :math:`\hat\eta_t g_t`.
        estim_lr: :math:`d_t`, the lower bound on the distance to the solution.
        numerator_weighted: :math:`r_t`, the numerator of the bound.
    """

    count: jax.Array | None
    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array


def _scale_by_dadapt_adamw(learning_rate, beta1, beta2, eps, estim_lr0, weight_decay, *, step=None):
    """The whole D-Adapt AdamW step; see :func:`dadapt_adamw`."""

    def init_fn(params):
        count, moments, d0, r0 = initial("dadapt_adamw", params, estim_lr0, step)
        return DAdaptAdamWState(count, *moments, d0, r0)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        count = step_count("dadapt_adamw", updates, state, params, step)
        sd = state.estim_lr.dtype
        # Scalar math on the hyperparameters (1 - beta, sqrt(beta2), the bias correction)
        # stays in their own precision (float64 under x64, as optax's Python floats);
        # results are cast to the statistics' dtype where they meet them.
        b1, b2 = jnp.asarray(beta1), jnp.asarray(beta2)
        lr, wd = (jnp.asarray(x).astype(sd) for x in (learning_rate, weight_decay))
        sb2 = jnp.sqrt(b2)
        dlr = state.estim_lr * lr * adam_ratio(count, b1, b2, sd)
        num = _tree.tree_sum(
            lambda g, s, v: (
                _tree.upcast(g)
                * (
                    _tree.upcast(s)
                    / (jnp.sqrt(_tree.upcast(v)) + _tree.scalar_like(eps, _tree.upcast(v)))
                )
            ),
            sd,
            updates,
            state.grad_sum,
            state.exp_avg_sq,
        )

        def moments(g, m, v, s):
            gc = _tree.upcast(g)
            sc = lambda x: _tree.scalar_like(x, gc)
            m_new = sc(b1) * m.astype(gc.dtype) + sc(1 - b1) * sc(dlr) * gc
            v_new = sc(b2) * v.astype(gc.dtype) + sc(1 - b2) * gc * gc
            s_new = sc(sb2) * s.astype(gc.dtype) + sc(1 - sb2) * sc(dlr) * gc
            return m_new.astype(m.dtype), v_new.astype(v.dtype), s_new.astype(s.dtype)

        m, v, s = _tree.tree_map_multi(
            moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum
        )
        l1 = l1_norm(s, sd)
        sb2_, one_minus_sb2 = sb2.astype(sd), (1 - sb2).astype(sd)
        nw = sb2_ * state.numerator_weighted + one_minus_sb2 * dlr * num
        d_new = grown(state.estim_lr, nw, one_minus_sb2 * l1)
        out = decayed_direction(
            lambda m_, v_, sc: -m_ / (jnp.sqrt(v_) + sc(eps)), wd, dlr, updates, m, v, params
        )
        count = next_count(step, state)
        return out, DAdaptAdamWState(count, m, v, s, d_new, nw)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    estim_lr0: ArrayLike = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
) -> GradientTransformation:
    r"""D-Adaptation AdamW: AdamW whose step size :math:`d_t` is a growing distance bound.

    With :math:`\hat\eta_t = d_t\,\eta\,\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and
    :math:`\sqrt{\beta_2}` as the accumulation decay:

    .. math::
        r_t &= \sqrt{\beta_2}\, r_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t\,
            \Big\langle g_t, \frac{s_{t-1}}{\sqrt{v_{t-1}} + \epsilon}\Big\rangle \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,\hat\eta_t g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \quad
        s_t = \sqrt{\beta_2}\, s_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t g_t \\
        d_{t+1} &= \max\Big(d_t,\ \frac{r_t}{(1-\sqrt{\beta_2})\lVert s_t\rVert_1}\Big),
        \qquad u_t = -\frac{m_t}{\sqrt{v_t} + \epsilon} - \lambda\,\hat\eta_t\, x_t

    Matches optax's ``contrib.dadapt_adamw``, except that a zero
    :math:`\lVert s_t\rVert_1` keeps :math:`d_t` where optax produces NaN. The betas
    are stored in the state as ``beta1``/``beta2``.

    Args:
        learning_rate: :math:`\eta`, a multiplier of the estimated step (keep 1).
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`.
        estim_lr0: the initial estimate :math:`d_0 > 0`.
        weight_decay: decoupled decay :math:`\lambda`.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.dadapt_adamw(estim_lr0=0.1)
        >>> x = jnp.array([1.0, -2.0])
        >>> updates, state = tx.update(jnp.array([2.0, -4.0]), tx.init(x), x)
        >>> [round(float(u), 4) for u in updates]  # AdamW's first step -sign(g), times d_0
        [-0.1, 0.1]

    References:
        Defazio & Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
        <https://arxiv.org/abs/2301.07733>`_, 2023.
    """
    beta1, beta2 = betas
    _validate.lr(learning_rate)
    _validate.beta(beta1, 0)
    _validate.beta(beta2, 1)
    _validate.eps(eps)
    _validate.positive(estim_lr0, "estim_lr0")
    _validate.weight_decay(weight_decay)
    # the state's numbers, in _scale_by_dadapt_adamw's order
    numbers = dict(
        learning_rate=learning_rate, beta1=beta1, beta2=beta2, eps=eps, estim_lr0=estim_lr0
    )
    _rules.check_args("dadapt_adamw", **numbers, weight_decay=weight_decay)

    def build(step, h):
        wd = h.get("weight_decay", 0.0)
        return _scale_by_dadapt_adamw(*[h[k] for k in numbers], weight_decay=wd, step=step)

    return alias_hyperparams(build, **numbers, **optional(weight_decay=weight_decay))
