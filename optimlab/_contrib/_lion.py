"""Lion: ``scale_by_lion`` and the ``lion`` alias."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import torch_style

__all__ = ["ScaleByLionState", "scale_by_lion", "lion"]

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`.

    Attributes:
        mu: the momentum :math:`m` (an average of past gradients with decay ``b2``).
    """

    mu: Updates


@checked_arguments
def scale_by_lion(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.99,
    mu_dtype: DType | None = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: ArrayLike = 1.0,
) -> GradientTransformation:
    r"""Lion's direction: the sign of an interpolation between momentum and gradient.

    .. math::
        x_t = (1-\beta_1)\, g_t + \beta_1 m_{t-1}, \qquad
        c_t = \operatorname{sign}(x_t), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2)\, g_t

    See :func:`lion`. optax's two softer variants replace the sign:
    ``mode="smooth"`` gives :math:`c_t = \tanh(\beta_s x_t)` (:math:`\beta_s` is
    ``smooth_beta``), and ``mode="refined"`` keeps :math:`c_t = x_t` where
    :math:`|x_t| < 1` and the sign elsewhere. Unlike ``optax.scale_by_lion`` the
    state keeps no step counter: the rule does not use one.

    Complex parameters are optimized as optax does: the sign of a complex
    :math:`x` is :math:`x / |x|` and ``"refined"`` compares :math:`|x|` with 1.
    ``mode="smooth"`` refuses them (the complex ``tanh`` has poles, so optax's
    direction there is unbounded), as does a real ``mu_dtype``.

    Args:
        b1: :math:`\beta_1`, the interpolation used for the direction.
        b2: :math:`\beta_2`, the decay of the momentum.
        mu_dtype: storage dtype of the momentum (default: the params').
        mode: ``"hard"`` (the sign, Lion's rule), ``"smooth"`` or ``"refined"``.
        smooth_beta: :math:`\beta_s`, the slope of ``tanh`` in the ``"smooth"`` mode.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByLionState`.
    """
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _rules.check_args("scale_by_lion", b1=b1, b2=b2, smooth_beta=smooth_beta)
    if mode not in _MODES:
        raise ValueError(
            f"scale_by_lion: mode must be one of {', '.join(map(repr, _MODES))}; got {mode!r}."
        )

    def sign(x):
        if mode == "smooth":
            return jnp.tanh(_tree.scalar_like(smooth_beta, x) * x)
        if mode == "refined":  # linear near zero, the sign beyond |x| = 1
            return jnp.where(jnp.abs(x) < 1, x, jnp.sign(x))
        return jnp.sign(x)

    def check_params(params):
        if mode == "smooth":  # tanh of a complex number has poles: no bounded direction
            _tree.reject_complex("scale_by_lion", params, ' with mode="smooth"')

    def rule(g, m):
        return sign(_tree.ema(g, m, b1)), _tree.ema(g, m, b2)

    return lift(
        "scale_by_lion",
        rule,
        ScaleByLionState,
        (Slot(mu_dtype, "mu_dtype"),),
        counter=False,
        check_params=check_params,
    )


@checked_arguments
def lion(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    mu_dtype: DType | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> GradientTransformation:
    r"""Lion (EvoLved Sign Momentum): a sign update with decoupled weight decay.

    .. math::
        c_t &= \operatorname{sign}\big((1-\beta_1)\, g_t + \beta_1 m_{t-1}\big) \\
        m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, g_t, \qquad m_0 = 0 \\
        u_t &= -\eta\,\big(c_t + \lambda\, p_{t-1}\big)

    Same arguments and defaults as ``optax.lion``. Every numeric argument lives in
    the state, ``weight_decay`` too when it is ``0.0``; ``None`` leaves it out. As the
    update has unit magnitude per element, the paper advises a learning rate 3-10x
    smaller than AdamW's and a weight decay 3-10x larger. Complex parameters are
    optimized as optax does (the sign of a complex :math:`x` is :math:`x / |x|`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        mu_dtype: storage dtype of the momentum (default: the params').
        weight_decay: decoupled decay :math:`\lambda \ge 0` (default ``1e-3``, as optax).
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.lion(learning_rate=0.1, weight_decay=0.0)
        >>> params = jnp.array([1.0, -2.0])
        >>> updates, _ = tx.update(jnp.array([0.3, -5.0]), tx.init(params), params)
        >>> updates
        Array([-0.1,  0.1], dtype=float32)

    References:
        Chen et al., `Symbolic Discovery of Optimization Algorithms
        <https://arxiv.org/abs/2302.06675>`_, 2023.
    """
    _validate.lr(learning_rate)
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.weight_decay(weight_decay)
    numbers: dict[str, Any] = dict(b1=b1, b2=b2)
    _rules.check_args("lion", learning_rate=learning_rate, **numbers, weight_decay=weight_decay)
    return torch_style(
        lambda step, h: scale_by_lion(*[h[k] for k in numbers], mu_dtype=mu_dtype),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled=True,
        mask=mask,
        **numbers,
    )
