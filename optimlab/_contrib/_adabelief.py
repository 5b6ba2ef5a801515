"""AdaBelief: ``scale_by_belief`` and the ``adabelief`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import check_optax_adam
from .._transforms._alias import torch_style
from .._transforms._moments import corrected_mu

__all__ = ["ScaleByBeliefState", "scale_by_belief", "adabelief"]


@never_negative("nu")
class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment of the gradients.
        nu: second moment of the prediction error :math:`g_t - m_t` (``eps_root`` included).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


@checked_arguments
def scale_by_belief(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-16,
    eps_root: ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by the belief in the gradient, AdaBelief's direction.

    See :func:`adabelief` for the update rule; same numerics as
    ``optax.scale_by_belief``.

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_r`, added to the second moment at every step.
        nesterov: use Nesterov's look-ahead of the first moment.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByBeliefState`.
    """
    check_optax_adam("scale_by_belief", {}, dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root))

    def prepare(count):
        # Once per update, for every leaf (the lifter computes them once).
        d1 = jnp.asarray(b1)
        out = {"bc1": _tree.bias_correction(d1, count), "bc2": _tree.bias_correction(b2, count)}
        if nesterov:
            out["bc1_next"] = 1 - d1 ** (count.astype(d1.dtype) + 2)
        return out

    def rule(g, m, v, bc1, bc2, bc1_next=None):
        d1 = jnp.asarray(b1)
        m_new = _tree.ema(g, m, d1)
        v_new = _tree.ema(_tree.abs_sq(g - m_new).astype(g.dtype), v, b2) + _tree.scalar_like(
            eps_root, g
        )
        bc1 = _tree.scalar_like(bc1, g)
        if nesterov:
            m_hat = corrected_mu(g, m_new, d1, bc1, _tree.scalar_like(bc1_next, g))
        else:
            m_hat = m_new / bc1
        v_hat = v_new / _tree.scalar_like(bc2, g)
        return m_hat / (jnp.sqrt(v_hat) + _tree.scalar_like(eps, g)), m_new, v_new

    return lift(
        "scale_by_belief", rule, ScaleByBeliefState, (Slot(), Slot()), step=step, prepare=prepare
    )


@checked_arguments
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-16,
    eps_root: ScalarOrSchedule = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief: Adam with the second moment of the prediction error instead of the gradient.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        s_t &= \beta_2 s_{t-1} + (1-\beta_2)\, (g_t - m_t)^2 + \epsilon_r \\
        u_t &= -\eta\, \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    With ``nesterov=True``, :math:`m_t/(1-\beta_1^t)` is replaced by
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
    Same arguments and defaults as ``optax.adabelief``; every numeric argument
    lives in the state.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added outside the square root.
        eps_root: :math:`\epsilon_r \ge 0`, added to :math:`s_t` at every step.
        nesterov: use Nesterov's look-ahead of the first moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adabelief(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state, params)
        >>> [round(float(x), 4) for x in updates]
        [-0.1111, 0.1111]

    References:
        Zhuang et al., `AdaBelief Optimizer: Adapting Stepsizes by the Belief in
        Observed Gradients <https://arxiv.org/abs/2010.07468>`_, 2020.
    """
    _validate.lr(learning_rate)
    moments: dict[str, Any] = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_optax_adam("adabelief", dict(learning_rate=learning_rate), moments)

    return torch_style(
        lambda step, h: scale_by_belief(
            h["b1"], h["b2"], h["eps"], h["eps_root"], nesterov=nesterov, step=step
        ),
        learning_rate=learning_rate,
        **moments,
    )
