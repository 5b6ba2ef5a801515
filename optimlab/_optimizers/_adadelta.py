"""Adadelta: ``scale_by_adadelta`` with the ``adadelta`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import torch_style

__all__ = ["ScaleByAdadeltaState", "scale_by_adadelta", "adadelta"]


@never_negative("square_avg", "acc_delta")
class ScaleByAdadeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`.

    Attributes:
        square_avg: running average of squared gradients (torch's ``square_avg``).
        acc_delta: running average of squared updates (torch's ``acc_delta``).
    """

    square_avg: Updates
    acc_delta: Updates


@checked_arguments
def scale_by_adadelta(
    rho: ArrayLike = 0.9,
    eps: ArrayLike = 1e-6,
    *,
    accumulator_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Rescales updates by Adadelta's ratio of running RMS values.

    See :func:`adadelta` for the update rule. Complex leaves are optax's by
    default (real averages of :math:`|g|^2` and :math:`|\Delta|^2`);
    ``componentwise=True`` treats their real and imaginary parts as separate
    reals (torch's ``view_as_real``). Math is done in at least float32;
    both averages are stored in ``accumulator_dtype`` (default: the params').

    Args:
        rho: :math:`\rho`, the decay of both running averages.
        eps: :math:`\epsilon`, added inside both square roots.
        accumulator_dtype: storage dtype of the averages.
        componentwise: complex leaves as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdadeltaState`.

    Examples:
        >>> tx = optimlab.scale_by_adadelta(rho=0.0, eps=1e-6)
        >>> updates, state = tx.update(jnp.array([1e-3]), tx.init(jnp.zeros(1)))
        >>> jnp.round(updates, 6)  # sqrt(eps) / sqrt(g^2 + eps) * g
        Array([0.000707], dtype=float32)
    """
    _validate.unit_interval(rho, "rho")
    _validate.eps(eps)
    _rules.check_args("scale_by_adadelta", rho=rho, eps=eps)

    def rule(g, sq, acc):
        e = _tree.scalar_like(eps, sq)
        sq_new = _tree.update_moment(g, sq, rho, 2)
        delta = (jnp.sqrt(acc + e) / jnp.sqrt(sq_new + e)).astype(g.dtype) * g
        return delta, sq_new, _tree.update_moment(delta, acc, rho, 2)

    acc = Slot(accumulator_dtype, "accumulator_dtype", real=not componentwise)
    return lift(
        "scale_by_adadelta",
        rule,
        ScaleByAdadeltaState,
        (acc, acc),
        counter=False,
        componentwise=componentwise,
    )


@checked_arguments
def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule | None = 0.0,
    weight_decay_mask: Any = None,
    *,
    maximize: bool = False,
    accumulator_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Adadelta: optax's arguments and defaults; ``torch.optim.Adadelta`` with ``lr``.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty added
    to the gradient, sign flipped by ``maximize``):

    .. math::
        s_t &= \rho\, s_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}}\, g_t \\
        a_t &= \rho\, a_{t-1} + (1-\rho)\, \Delta_t^2 \\
        p_t &= p_{t-1} - \eta\, \Delta_t

    This is optax's ``adadelta``. As in optax, ``learning_rate=None`` (the default)
    applies no learning rate at all: the update is :math:`+\Delta_t`, with no sign
    flip, so it *ascends* the objective; pass a learning rate (torch's default is
    ``1.0``) for the descent step above. Every numeric argument lives in the state
    and may be a schedule. A ``weight_decay`` of ``None`` leaves the term out; any
    number, ``0.0`` included (the default, as optax), keeps it in the state,
    settable later. Complex parameters are optimized as optax does (real averages
    of squared magnitudes), or componentwise as torch does with
    ``componentwise=True``.

    .. note::
        ``torch.optim.Adadelta`` is ``adadelta(lr, rho, eps, weight_decay,
        maximize=..., componentwise=True)`` with torch's ``lr=1.0`` by default, the call
        :class:`optimlab.optim.Adadelta` makes. ``maximize`` is torch's; optax's
        ``adadelta`` has none.

    Args:
        learning_rate: :math:`\eta`, or ``None`` (optax's default) for no
            learning-rate scaling and no sign flip.
        rho: :math:`\rho \in [0, 1]`.
        eps: :math:`\epsilon \ge 0`, added inside both square roots.
        weight_decay: L2 penalty :math:`\lambda` added to the gradient.
        weight_decay_mask: a pytree of bools (or ``params -> mask``) selecting the
            leaves to decay (optax's).
        maximize: maximise the objective.
        accumulator_dtype: storage dtype of both averages (math stays in float32 or
            wider).
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adadelta(learning_rate=1.0, rho=0.0)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.999, -0.999]

    References:
        Zeiler, `ADADELTA: An Adaptive Learning Rate Method
        <https://arxiv.org/abs/1212.5701>`_, 2012.
    """
    # torch.optim.Adadelta's order, so the first failing check is the same.
    if learning_rate is not None:
        _validate.lr(learning_rate)
    _validate.unit_interval(rho, "rho")
    _validate.eps(eps)
    _validate.weight_decay(weight_decay)
    numbers: dict[str, Any] = dict(rho=rho, eps=eps)
    _rules.check_args("adadelta", learning_rate=learning_rate, **numbers, weight_decay=weight_decay)
    return torch_style(
        lambda step, h: scale_by_adadelta(
            *[h[k] for k in numbers],
            accumulator_dtype=accumulator_dtype,
            componentwise=componentwise,
        ),
        learning_rate=learning_rate,
        learning_rate_optional=True,
        weight_decay=weight_decay,
        maximize=maximize,
        mask=weight_decay_mask,
        **numbers,
    )
