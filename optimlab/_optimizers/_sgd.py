"""Stochastic gradient descent: the ``trace`` momentum primitive and the ``sgd`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, matches_params, torch_prefix
from .._transforms._scale import scale_by_learning_rate

__all__ = ["TraceState", "trace", "sgd"]


class TraceState(NamedTuple):
    """State of :func:`trace`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        trace: the momentum buffer (torch's ``momentum_buffer``).
    """

    count: jax.Array | None
    trace: Updates


@checked_arguments
def trace(
    decay: ArrayLike,
    nesterov: bool = False,
    accumulator_dtype: DType | None = None,
    *,
    dampening: ArrayLike = 0.0,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Momentum with torch's first-step initialisation, dampening and Nesterov.

    .. math::
        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \\
        u_t = g_t + \mu\, b_t \ \text{(Nesterov)}, \qquad u_t = b_t \ \text{(otherwise)}

    Unlike optax's ``trace``, the buffer starts as the first gradient (no
    dampening on the first step), as in ``torch.optim.SGD``.

    Args:
        decay: the momentum :math:`\mu`.
        dampening: :math:`\tau`.
        nesterov: use Nesterov momentum.
        accumulator_dtype: dtype of the buffer (default: the params' dtype).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`TraceState`.

    Examples:
        >>> tx = optimlab.trace(0.9)
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u
        Array([1.9], dtype=float32)
    """
    _validate.at_least_zero(decay, "decay")
    _rules.check_args("trace", decay=decay, dampening=dampening)
    _validate.finite(dampening, "dampening")

    def prepare(count):
        # Once per update: ``1 - dampening`` in the hyperparameter's precision (torch
        # forms it in Python doubles); the lifter computes these once for all leaves.
        return {
            "first": count == 0,
            "mu": jnp.asarray(decay),
            "undamped": 1 - jnp.asarray(dampening),
        }

    def rule(g, buf, first, mu, undamped):
        mu, undamped = _tree.scalar_like(mu, g), _tree.scalar_like(undamped, g)
        o = _tree.ops_for(buf, g)
        # select_n on the scalar predicate: no broadcast, no nested jit per leaf.
        new = jax.lax.select_n(first, o.add(o.mul(buf, mu), o.mul(g, undamped)), g)
        out = o.add(g, o.mul(mu, new)) if nesterov else new
        return out, new

    return lift(
        "trace",
        rule,
        TraceState,
        (Slot(accumulator_dtype, "accumulator_dtype"),),
        step=step,
        prepare=prepare,
    )


def _is_zero(value: Any) -> bool:
    v = _validate.concrete(value)
    return v is not None and v == 0.0


@checked_arguments
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    accumulator_dtype: DType | None = None,
    *,
    dampening: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
) -> GradientTransformation:
    r"""Stochastic gradient descent with torch's momentum, dampening, Nesterov and decay.

    With :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``):

    .. math::
        d_t &= g_t + \lambda\, p_{t-1} \\
        b_1 &= d_1, \quad b_t = \mu\, b_{t-1} + (1-\tau)\, d_t \\
        u_t &= -\eta\,(d_t + \mu\, b_t) \ \text{(Nesterov)}, \quad
        u_t = -\eta\, b_t \ \text{(otherwise; } u_t = -\eta\, d_t \text{ if } \mu = 0)

    optax's ``sgd`` when ``dampening``, ``weight_decay`` and ``maximize`` keep their
    defaults, and numerically identical to ``torch.optim.SGD``. The positional
    arguments are optax's; torch's ``dampening``, ``weight_decay`` and
    ``maximize`` are keyword arguments. Every numeric argument lives in
    the state (read it with :func:`~optimlab.hyperparams`). A ``momentum`` or
    ``weight_decay`` of ``None`` (their defaults) leaves that term (and the
    momentum buffer) out of the optimizer; any number, ``0.0`` included, keeps
    it in the state, where :func:`~optimlab.set_hyperparams` can change it later.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        momentum: :math:`\mu \ge 0`, or ``None`` for none.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and zero dampening).
        accumulator_dtype: dtype of the momentum buffer (default: the params').
        dampening: :math:`\tau` (torch's).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (torch's).
        maximize: maximise the objective instead of minimising it (torch's).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.sgd(learning_rate=0.1, momentum=0.9)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = tx.init(params)
        >>> updates, state = tx.update(2 * params, state, params)
        >>> optimlab.apply_updates(params, updates)
        Array([ 0.8, -1.6], dtype=float32)

    References:
        Sutskever et al., `On the importance of initialization and momentum in deep
        learning <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013.
    """
    _validate.lr(learning_rate)
    _validate.momentum(momentum)
    _validate.weight_decay(weight_decay)
    _validate.finite(dampening, "dampening")  # checked even when momentum is zero
    if nesterov and (momentum is None or _is_zero(momentum) or not _is_zero(dampening)):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    _rules.check_args(
        "sgd",
        learning_rate=learning_rate,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
    )
    use_momentum = _validate.present(momentum)
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = [] if use_momentum else [matches_params("sgd")]
        txs += torch_prefix(h, maximize=maximize, decay=use_decay)
        if use_momentum:
            txs.append(
                trace(
                    h["momentum"],
                    dampening=h["dampening"],
                    nesterov=nesterov,
                    accumulator_dtype=accumulator_dtype,
                    step=step,
                )
            )
        txs.append(scale_by_learning_rate(h["learning_rate"]))
        return chain(*txs)

    hps: dict[str, Any] = {"learning_rate": learning_rate}
    if use_decay:
        hps["weight_decay"] = weight_decay
    if use_momentum:
        hps["momentum"] = momentum
        hps["dampening"] = dampening
    return alias_hyperparams(build, "sgd", **hps)
