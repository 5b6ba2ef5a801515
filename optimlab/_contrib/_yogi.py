"""Yogi: ``scale_by_yogi`` and the ``yogi`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._adam_like import adam_like, check_optax_adam

__all__ = ["ScaleByYogiState", "scale_by_yogi", "yogi"]


@never_negative("nu")
class ScaleByYogiState(NamedTuple):
    """State of :func:`scale_by_yogi`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment.
        nu: Yogi's additive second moment.
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


@_validate.checked_arguments
def scale_by_yogi(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-3,
    eps_root: ArrayLike = 0.0,
    initial_accumulator_value: ArrayLike = 1e-6,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by Yogi's additively updated second moment.

    See :func:`yogi` for the update rule; same numerics and defaults as
    ``optax.scale_by_yogi``. Both moments start at ``initial_accumulator_value``
    (read once, by ``init``). Complex parameters are optimized as optax does (the
    second moment tracks :math:`|g|^2` and is stored real).

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_r`, added inside it.
        initial_accumulator_value: :math:`v_0` (and :math:`m_0`).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByYogiState`.
    """
    moments: dict[str, Any] = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_optax_adam("scale_by_yogi", {}, moments)
    _validate.non_negative(initial_accumulator_value, "initial_accumulator_value")
    _rules.check_args("scale_by_yogi", initial_accumulator_value=initial_accumulator_value)

    def prepare(count):
        # Once per update, for every leaf (the lifter computes them once).
        return {
            "bc1": _tree.bias_correction(b1, count),
            "bc2": _tree.bias_correction(b2, count),
            "one_minus_b2": 1 - jnp.asarray(b2),
        }

    def rule(g, m, v, bc1, bc2, one_minus_b2):
        m_new = _tree.ema(g, m, b1)
        sq = _tree.abs_sq(g)  # |g|^2 for complex g, as optax: the second moment is real
        v_new = v - _tree.scalar_like(one_minus_b2, sq) * jnp.sign(v - sq) * sq
        m_hat = m_new / _tree.scalar_like(bc1, g)
        v_hat = v_new / _tree.scalar_like(bc2, sq)
        denom = jnp.sqrt(v_hat + _tree.scalar_like(eps_root, sq)) + _tree.scalar_like(eps, sq)
        return m_hat / denom.astype(m_hat.dtype), m_new, v_new

    return lift(
        "scale_by_yogi",
        rule,
        ScaleByYogiState,
        (Slot(fill=initial_accumulator_value), Slot(real=True, fill=initial_accumulator_value)),
        step=step,
        prepare=prepare,
    )


@_validate.checked_arguments
def yogi(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-3,
) -> GradientTransformation:
    r"""Yogi: Adam whose second moment moves additively, by at most :math:`(1-\beta_2) g^2`.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad m_0 = 10^{-6} \\
        v_t &= v_{t-1} - (1-\beta_2)\, \operatorname{sign}(v_{t-1} - g_t^2)\, g_t^2,
            \qquad v_0 = 10^{-6} \\
        u_t &= -\eta\, \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    Same arguments and defaults as ``optax.yogi``; every numeric argument lives in
    the state. As both moments start at :math:`10^{-6}` (as in optax), a zero
    gradient still gives a tiny non-zero first step. Complex parameters are optimized
    as optax does (moments of :math:`|g|^2`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0` (default ``1e-3``, larger than Adam's, as in the paper).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        Adam's first step is :math:`-\eta\operatorname{sign}(g)` for every gradient;
        Yogi's larger :math:`\epsilon` and its :math:`v_0` shorten small gradients' steps:

        >>> tx = optimlab.yogi(learning_rate=0.1)
        >>> x = jnp.zeros(3)
        >>> updates, _ = tx.update(jnp.array([1e-3, 1e-2, 1.0]), tx.init(x), x)
        >>> [round(float(u), 4) for u in updates]
        [-0.0031, -0.0293, -0.0999]

    References:
        Zaheer et al., `Adaptive Methods for Nonconvex Optimization
        <https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization>`_,
        2018.
    """
    _validate.lr(learning_rate)
    check_optax_adam("yogi", dict(learning_rate=learning_rate), dict(b1=b1, b2=b2, eps=eps))
    return adam_like(scale_by_yogi, learning_rate, b1, b2, eps, None, maximize=False)
