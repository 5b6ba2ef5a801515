"""Adagrad: ``scale_by_adagrad`` with the ``adagrad`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional, torch_prefix
from .._transforms._scale import scale_by_learning_rate

__all__ = ["ScaleByAdagradState", "scale_by_adagrad", "adagrad"]


@never_negative("sum_of_squares")
class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`.

    Attributes:
        sum_of_squares: the running sum of squared gradients (torch's ``sum``).
    """

    sum_of_squares: Updates


def _initial_sum(p: jax.Array, value: ArrayLike, dtype: DType | None) -> jax.Array:
    dtype = jnp.dtype(p.dtype if dtype is None else dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        # torch starts complex accumulators at value + value*1j (componentwise).
        v = jnp.asarray(value).astype(jnp.finfo(dtype).dtype)
        return jnp.full_like(p, jax.lax.complex(v, v), dtype=dtype)
    return jnp.full_like(p, jnp.asarray(value).astype(dtype), dtype=dtype)


@checked_arguments
def scale_by_adagrad(
    initial_accumulator_value: ArrayLike = 0.0,
    eps: ArrayLike = 1e-10,
    *,
    eps_in_sqrt: bool = False,
    accumulator_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Divides updates by the root of the running sum of squared gradients.

    See :func:`adagrad` for the update rule. By default epsilon is added outside
    the square root, as in ``torch.optim.Adagrad``; ``eps_in_sqrt=True`` gives
    optax's ``scale_by_rss`` rule, :math:`g_t / \sqrt{s_t + \epsilon}` (zero where
    :math:`s_t = 0`).
    Complex leaves are optax's by default (a real sum of :math:`|g|^2`);
    ``componentwise=True`` treats their real and imaginary parts as separate
    reals, torch's ``view_as_real`` (the sum then starts at ``v + v*1j``). Math
    is done in at least float32; the sum is stored in ``accumulator_dtype``
    (default: the params', real for optax's complex rule).

    Args:
        initial_accumulator_value: the starting value :math:`s_0 \ge 0` of the sum.
        eps: :math:`\epsilon`, added to :math:`\sqrt{s_t}` (or to :math:`s_t` with
            ``eps_in_sqrt``).
        eps_in_sqrt: add epsilon inside the square root (optax's placement).
        accumulator_dtype: storage dtype of the sum.
        componentwise: complex leaves as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdagradState`.

    Examples:
        >>> tx = optimlab.scale_by_adagrad()
        >>> updates, state = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
        >>> jnp.round(updates, 4)
        Array([ 1., -1.], dtype=float32)
    """
    _validate.at_least_zero(initial_accumulator_value, "initial_accumulator_value")
    _validate.eps(eps)
    _rules.check_args(
        "scale_by_adagrad", initial_accumulator_value=initial_accumulator_value, eps=eps
    )

    def rule(g, s):
        s_new = s + _tree.abs_sq(g)
        if eps_in_sqrt:
            inv = jax.lax.rsqrt(s_new + _tree.scalar_like(eps, s_new))
            inv = jax.lax.select_n(s_new > 0, jnp.zeros_like(inv), inv)  # no nested jit
            direction = inv.astype(g.dtype) * g
        else:
            direction = g / (jnp.sqrt(s_new) + _tree.scalar_like(eps, s_new)).astype(g.dtype)
        return direction, s_new

    def initial(p):
        dtype = accumulator_dtype if componentwise else _tree.real_dtype(p, accumulator_dtype)
        return _initial_sum(p, initial_accumulator_value, dtype)

    return lift(
        "scale_by_adagrad",
        rule,
        ScaleByAdagradState,
        (Slot(accumulator_dtype, "accumulator_dtype", real=not componentwise, fill=initial),),
        counter=False,
        componentwise=componentwise,
    )


@checked_arguments
def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    initial_accumulator_value: ScalarOrSchedule = 0.1,
    eps: ScalarOrSchedule = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    lr_decay: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
    accumulator_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Adagrad, optax's by default; torch's through explicit arguments.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty added
    to the gradient, sign flipped by ``maximize``):

    .. math::
        s_t &= s_{t-1} + g_t^2 \\
        \eta_t &= \frac{\eta}{1 + (t-1)\,\delta} \\
        p_t &= p_{t-1} - \eta_t\, \frac{g_t}{\sqrt{s_t + \epsilon}}
        \quad \Big(\text{or } \frac{g_t}{\sqrt{s_t} + \epsilon}
        \text{ with } \texttt{eps\_in\_sqrt=False}\Big)

    Every numeric argument lives in the state and may be a schedule;
    ``initial_accumulator_value`` is read once, by ``init``. A ``weight_decay``
    of ``None`` (the default) leaves the term out; any number, ``0.0`` included,
    keeps it in the state, settable later. Complex parameters are optimized as
    optax does (a real sum of :math:`|g|^2`), or componentwise as torch does with
    ``componentwise=True``. The defaults are optax's (the sum starts at
    ``0.1``, ``eps=1e-7`` inside the square root, where the rule is zero while
    :math:`s_t = 0`); ``torch.optim.Adagrad`` is
    ``adagrad(lr, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False,
    componentwise=True)``,
    which :class:`optimlab.optim.Adagrad` passes.

    .. note::
        ``lr_decay``, ``weight_decay`` and ``maximize`` are torch's; optax's
        ``adagrad`` has none of them.

    Args:
        learning_rate: :math:`\eta` (default ``1e-2``, torch's).
        initial_accumulator_value: :math:`s_0 \ge 0` (optax's ``0.1``; torch's ``0``).
        eps: :math:`\epsilon \ge 0` (optax's ``1e-7``; torch's ``1e-10``).
        eps_in_sqrt: add :math:`\epsilon` inside the square root (optax's
            placement); ``False`` adds it to the root (torch's).
        lr_decay: :math:`\delta \ge 0`, torch's learning-rate decay.
        weight_decay: L2 penalty :math:`\lambda` added to the gradient.
        maximize: maximise the objective.
        accumulator_dtype: storage dtype of the sum (math stays in float32 or wider).
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adagrad(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.9047, -0.9047]

    References:
        Duchi et al., `Adaptive Subgradient Methods for Online Learning and Stochastic
        Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011.
    """
    # torch.optim.Adagrad's order, so the first failing check is the same.
    _validate.lr(learning_rate)
    _validate.at_least_zero(lr_decay, "lr_decay")
    _validate.weight_decay(weight_decay)
    _validate.at_least_zero(initial_accumulator_value, "initial_accumulator_value")
    _validate.eps(eps)
    numbers: dict[str, Any] = dict(
        learning_rate=learning_rate,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
        lr_decay=lr_decay,
    )
    _rules.check_args("adagrad", **numbers, weight_decay=weight_decay)
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = torch_prefix(h, maximize=maximize, decay=use_decay)
        txs.append(
            scale_by_adagrad(
                h["initial_accumulator_value"],
                h["eps"],
                eps_in_sqrt=eps_in_sqrt,
                accumulator_dtype=accumulator_dtype,
                componentwise=componentwise,
            )
        )
        # torch: clr = lr / (1 + (t - 1) * lr_decay), with t - 1 the steps taken.
        decay = h["lr_decay"]
        txs.append(
            scale_by_learning_rate(
                h["learning_rate"] / (1 + step.astype(jnp.asarray(decay).dtype) * decay)
            )
        )
        return chain(*txs)

    return alias_hyperparams(build, **numbers, **optional(weight_decay=weight_decay))
