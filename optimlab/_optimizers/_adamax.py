"""Adamax family: ``scale_by_adamax`` with the ``adamax`` and ``adamaxw`` aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._base import GradientTransformation, never_negative
from .._core._lift import lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import adam_like_alias
from .._transforms._moments import check_moments, moment_slots

__all__ = ["ScaleByAdamaxState", "scale_by_adamax", "adamax", "adamaxw"]


@never_negative("nu")
class ScaleByAdamaxState(NamedTuple):
    """State of :func:`scale_by_adamax`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment (torch's ``exp_avg``).
        nu: exponentially weighted infinity norm (torch's ``exp_inf``).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


@checked_arguments
def scale_by_adamax(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    *,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    step: jax.Array | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Rescales updates by Adamax's bias-corrected first moment over the infinity norm.

    See :func:`adamax` for the update rule. As in ``torch.optim.Adamax``, epsilon
    is added to :math:`|g_t|` inside the maximum. Complex leaves are optax's by
    default (a real infinity norm of :math:`|g_t|`); ``componentwise=True``
    treats their real and imaginary parts as separate reals (torch's
    ``view_as_real``). Math is done in at least float32; moments are stored in
    ``mu_dtype``/``nu_dtype`` (default: the params').

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`, the decay of the infinity norm.
        eps: :math:`\epsilon`, added to :math:`|g_t|`.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the infinity norm.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.
        componentwise: complex leaves as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdamaxState`.

    Examples:
        >>> tx = optimlab.scale_by_adamax()
        >>> updates, state = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
        >>> jnp.round(updates, 4)
        Array([ 1., -1.], dtype=float32)
    """
    check_moments("scale_by_adamax", b1, b2, eps)

    def prepare(count):
        # 1 / (1 - b1^t) in the hyperparameters' precision, as torch's Python double.
        return {"inv_bc1": 1 / _tree.bias_correction(b1, count)}

    def rule(g, m, u, inv_bc1):
        m_new = _tree.update_moment(g, m, b1, 1)
        u_new = jnp.maximum(u * _tree.scalar_like(b2, u), jnp.abs(g) + _tree.scalar_like(eps, u))
        return _tree.scalar_like(inv_bc1, g) * m_new / u_new.astype(g.dtype), m_new, u_new

    return lift(
        "scale_by_adamax",
        rule,
        ScaleByAdamaxState,
        moment_slots(mu_dtype, nu_dtype, real=not componentwise),
        step=step,
        prepare=prepare,
        componentwise=componentwise,
    )


@checked_arguments
def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
    *,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Adamax, numerically identical to ``torch.optim.Adamax``.

    Adam with the second moment replaced by an exponentially weighted infinity
    norm. With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty
    added to the gradient, sign flipped by ``maximize``):

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        p_t &= p_{t-1} - \frac{\eta}{1-\beta_1^t}\, \frac{m_t}{u_t}

    Every numeric argument lives in the state and may be a schedule. A
    ``weight_decay`` of ``None`` (the default) leaves the term out; any number,
    ``0.0`` included, keeps it in the state, settable later. Complex parameters
    are optimized as optax does (a real infinity norm), or componentwise as torch
    does with ``componentwise=True``. optax's ``adamax`` is the same
    algorithm without weight decay.

    Args:
        learning_rate: :math:`\eta` (default ``2e-3``, torch's).
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added to :math:`|g_t|` inside the maximum.
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (torch's
            Adamax). For decoupled decay use :func:`adamaxw`.
        maximize: maximise the objective.
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nu_dtype: storage dtype of the infinity norm.
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adamax(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(2 * params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.9, -0.9]

    References:
        Kingma & Ba, `Adam: A Method for Stochastic Optimization
        <https://arxiv.org/abs/1412.6980>`_ (section 7.1), 2014.
    """
    return adam_like_alias(
        "adamax",
        scale_by_adamax,
        (learning_rate, b1, b2, eps, weight_decay),
        maximize=maximize,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        componentwise=componentwise,
    )


@checked_arguments
def adamaxw(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    maximize: bool = False,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""AdamaxW: :func:`adamax` with decoupled weight decay (optax's ``adamaxw``).

    The rule of :func:`adamax` without the L2 term, plus the decay applied to the
    parameters directly, as :func:`~optimlab.adamw` does for Adam:

    .. math:: p_t = p_{t-1} - \eta\,\Big(\frac{m_t}{(1-\beta_1^t)\, u_t}
        + \lambda\, p_{t-1}\Big)

    torch has no decoupled Adamax; this is optax's ``adamaxw`` (same placement
    of the decay), with optax's default ``weight_decay=1e-4``.

    .. note::
        torch has no AdamaxW; ``maximize`` is torch's (optax's ``adamaxw`` has none).

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        weight_decay: decoupled decay :math:`\lambda`.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        maximize: maximise the objective.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the infinity norm.
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adamaxw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.85]

    References:
        Loshchilov & Hutter, `Decoupled Weight Decay Regularization
        <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    return adam_like_alias(
        "adamaxw",
        scale_by_adamax,
        (learning_rate, b1, b2, eps, weight_decay),
        decoupled=True,
        mask=mask,
        maximize=maximize,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        componentwise=componentwise,
    )
