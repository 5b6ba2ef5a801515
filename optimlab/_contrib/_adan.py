"""Adan: ``scale_by_adan`` and the ``adan`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import torch_style

__all__ = ["ScaleByAdanState", "scale_by_adan", "adan"]


@never_negative("n")
class ScaleByAdanState(NamedTuple):
    """State of :func:`scale_by_adan`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        m: first moment of the gradients.
        v: first moment of the gradient differences.
        n: second moment of the Nesterov-extrapolated gradient.
        g: the previous gradient.
    """

    count: jax.Array | None
    m: Updates
    v: Updates
    n: Updates
    g: Updates


def _check(b1: Any, b2: Any, b3: Any, eps: Any, eps_root: Any) -> None:
    """Adan's numbers, in torch's wording (the betas by index), for the primitive and the alias."""
    for i, b in enumerate((b1, b2, b3)):
        _validate.beta(b, i)
    _validate.eps(eps)
    _validate.non_negative(eps_root, "eps_root")


@_validate.checked_arguments
def scale_by_adan(
    b1: ArrayLike = 0.98,
    b2: ArrayLike = 0.92,
    b3: ArrayLike = 0.99,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike = 0.0,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by Adan's Nesterov-momentum estimate.

    See :func:`adan` for the update rule; same numerics as ``optax.scale_by_adan``
    (whose counter ``t`` is the ``count`` here). Complex parameters are optimized as
    optax does (:math:`n` is a moment of :math:`|\cdot|^2`, stored real).

    Args:
        b1: :math:`\beta_1`, decay of the gradient average.
        b2: :math:`\beta_2`, decay of the gradient-difference average.
        b3: :math:`\beta_3`, decay of the second moment.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_r`, added inside it.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdanState`.
    """
    numbers = dict(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root)
    _check(**numbers)
    _rules.check_args("scale_by_adan", **numbers)

    def prepare(count):
        # Once per update, for every leaf (the lifter computes them once).
        return {
            "first": count == 0,
            "one_minus_b2": 1 - jnp.asarray(b2),
            "bc1": _tree.bias_correction(b1, count),
            "bc2": _tree.bias_correction(b2, count),
            "bc3": _tree.bias_correction(b3, count),
        }

    def rule(g, m, v, n, g_prev, first, one_minus_b2, bc1, bc2, bc3):
        # select_n on the scalar predicate: no broadcast, no nested jit per leaf.
        diff = jax.lax.select_n(first, g - g_prev, jnp.zeros_like(g))
        m_new = _tree.ema(g, m, b1)
        v_new = _tree.ema(diff, v, b2)
        om2 = _tree.scalar_like(one_minus_b2, g)
        extrapolated = g + om2 * diff
        sq = _tree.abs_sq(extrapolated)  # |.|^2 for complex, as optax: n is real
        n_new = _tree.ema(sq, n, b3)
        m_hat = m_new / _tree.scalar_like(bc1, g)
        v_hat = v_new / _tree.scalar_like(bc2, g)
        n_hat = n_new / _tree.scalar_like(bc3, sq)
        denom = jnp.sqrt(n_hat + _tree.scalar_like(eps_root, sq)) + _tree.scalar_like(eps, sq)
        return (m_hat + om2 * v_hat) / denom.astype(m_hat.dtype), m_new, v_new, n_new, g

    return lift(
        "scale_by_adan",
        rule,
        ScaleByAdanState,
        (Slot(), Slot(), Slot(real=True), Slot()),
        step=step,
        prepare=prepare,
    )


@_validate.checked_arguments
def adan(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.98,
    b2: ScalarOrSchedule = 0.92,
    b3: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adan: adaptive Nesterov momentum from averaged gradients and gradient differences.

    With :math:`\Delta_t = g_t - g_{t-1}` (zero at the first step):

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \Delta_t \\
        n_t &= \beta_3 n_{t-1} + (1-\beta_3)\, \big(g_t + (1-\beta_2)\Delta_t\big)^2 \\
        u_t &= -\eta\, \Big(\frac{\hat m_t + (1-\beta_2)\, \hat v_t}
            {\sqrt{\hat n_t + \epsilon_r} + \epsilon} + \lambda\, p_{t-1}\Big)

    where hats are bias corrections :math:`x_t / (1-\beta^t)`. Same arguments and
    defaults as ``optax.adan`` (the decoupled decay is optax's form, not the
    paper's proximal :math:`p / (1 + \eta\lambda)`). Every numeric argument lives
    in the state, ``weight_decay`` too when it is ``0.0`` (settable later); ``None``
    leaves the decay out. Complex parameters are optimized as optax does (moments of
    :math:`|\cdot|^2`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        b3: :math:`\beta_3 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        eps_root: :math:`\epsilon_r \ge 0`.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        A jump of the gradient (1 to 3) enters through :math:`\Delta_t`:

        >>> x = jnp.zeros(2)
        >>> tx = optimlab.adan(learning_rate=0.1)
        >>> state = tx.init(x)
        >>> for g in ([1.0, 1.0], [1.0, 3.0]):
        ...     updates, state = tx.update(jnp.array(g), state, x)
        ...     print([round(float(u), 4) for u in updates])
        [-0.1, -0.1]
        [-0.1, -0.0891]

    References:
        Xie et al., `Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
        Deep Models <https://arxiv.org/abs/2208.06677>`_, 2022.
    """
    _validate.lr(learning_rate)
    numbers: dict[str, Any] = dict(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root)
    _check(**numbers)
    _validate.weight_decay(weight_decay)
    _rules.check_args("adan", learning_rate=learning_rate, **numbers, weight_decay=weight_decay)
    return torch_style(  # scale_by_adan's numbers, in its order
        lambda step, h: scale_by_adan(*[h[k] for k in numbers], step=step),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled=True,
        mask=mask,
        **numbers,
    )
