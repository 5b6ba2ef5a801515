"""ADOPT: Adam with the second moment taken from previous steps, convergent for any beta2."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, RealDType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import adam_like, check_optax_adam
from .._transforms._moments import check_moments

__all__ = ["ScaleByAdoptState", "scale_by_adopt", "adopt"]


def _quarter_power(count: jax.Array) -> jax.Array:
    return count.astype(jnp.result_type(float)) ** 0.25


@never_negative("nu")
class ScaleByAdoptState(NamedTuple):
    """State of :func:`scale_by_adopt`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: momentum of the normalised gradients.
        nu: second moment of the gradients.
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


@checked_arguments
def scale_by_adopt(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.9999,
    eps: ArrayLike = 1e-6,
    *,
    mu_dtype: RealDType | None = None,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by ADOPT's momentum of previously normalised gradients.

    See :func:`adopt` for the rule.

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, the floor of :math:`\sqrt{v}`.
        mu_dtype: storage dtype of the momentum.
        nesterov: Nesterov momentum.
        use_clipping: clip the normalised gradient to :math:`\pm c(t)`.
        clip_value_fn: :math:`c`, a function of the 0-based step count.
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdoptState`.
    """
    check_moments("scale_by_adopt", b1, b2, eps)

    def check_params(params):
        _tree.reject_complex("adopt", params)

    def prepare(count):
        return {"first": count == 0, "clip": clip_value_fn(count) if use_clipping else None}

    def rule(g, m, v, first, clip):
        v_new = jnp.where(first, g * g, _tree.update_moment(g, v, b2, 2))
        normed = g / jnp.maximum(jnp.sqrt(v), _tree.scalar_like(eps, g))
        if clip is not None:
            normed = jnp.clip(normed, -_tree.scalar_like(clip, g), _tree.scalar_like(clip, g))
        m_new = jnp.where(first, m, _tree.update_moment(normed, m, b1, 1))
        out = jnp.where(first, m, _tree.update_moment(normed, m_new, b1, 1)) if nesterov else m_new
        return out, m_new, v_new

    return lift(
        "scale_by_adopt",
        rule,
        ScaleByAdoptState,
        (Slot(mu_dtype), Slot()),
        step=step,
        prepare=prepare,
        check_params=check_params,
    )


@checked_arguments
def adopt(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: ScalarOrSchedule = 1e-6,
    mu_dtype: RealDType | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
) -> GradientTransformation:
    r"""ADOPT: normalise each gradient by the second moment of the *previous* steps.

    The first step only initialises :math:`v_0 = g_0^2` (and returns a zero update);
    then, for :math:`t \ge 1`:

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,
            \operatorname{clip}\Big(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)},\ c(t)\Big) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad u_t = -\eta\, m_t

    with :math:`c(t) = t^{1/4}` by default (``clip_value_fn``, of the 0-based step).
    Matches optax's ``contrib.adopt``.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        mu_dtype: storage dtype of the momentum.
        nesterov: Nesterov momentum.
        use_clipping: clip the normalised gradients (recommended by the authors).
        clip_value_fn: the clipping bound :math:`c` as a function of the step count.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        The first step only records :math:`v_0`; the second moves by
        :math:`\eta (1-\beta_1)` times the clipped, normalised gradient:

        >>> tx = optimlab.adopt(learning_rate=1.0)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update(jnp.array([2.0, -4.0]), state, params)
        ...     print([round(float(u), 4) for u in updates])
        [-0.0, -0.0]
        [-0.1, 0.1]

    References:
        Taniguchi, Harada, Minegishi, Oshima, Jeong, Nagahara, Iiyama, Suzuki, Iwasawa &
        Matsuo, `ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate
        <https://arxiv.org/abs/2411.02853>`_, 2024.
    """
    _validate.lr(learning_rate)
    check_optax_adam("adopt", dict(learning_rate=learning_rate), dict(b1=b1, b2=b2, eps=eps))
    return adam_like(
        scale_by_adopt,
        learning_rate,
        b1,
        b2,
        eps,
        None,  # no weight decay
        maximize=False,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
        use_clipping=use_clipping,
        clip_value_fn=clip_value_fn,
    )
