"""NAdam family: ``scale_by_nadam`` with the ``nadam`` and ``nadamw`` aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _elementwise, _rules, _tree, _validate
from ._alias import torch_style, validate_adam_like
from ._base import GradientTransformation, safe_increment
from ._hyperparams import hyperparam_dtype
from ._types import ArrayLike, DType, ScalarOrSchedule, Updates

__all__ = ["ScaleByNadamState", "scale_by_nadam", "nadam", "nadamw"]


class ScaleByNadamState(NamedTuple):
    r"""State of :func:`scale_by_nadam`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu_product: the scalar product :math:`\prod_{i \le t} \mu_i` of the momentum
            coefficients so far (torch's ``mu_product``), in the hyperparameter dtype.
        mu: first moment (torch's ``exp_avg``).
        nu: second moment (torch's ``exp_avg_sq``).
    """

    count: jax.Array | None
    mu_product: jax.Array
    mu: Updates
    nu: Updates


def _momentum_coefficient(b1: ArrayLike, momentum_decay: ArrayLike, t: jax.Array) -> jax.Array:
    """``b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))`` in ``t``'s dtype."""
    dtype = t.dtype
    b1 = jnp.asarray(b1).astype(dtype)
    psi = jnp.asarray(momentum_decay).astype(dtype)
    return b1 * (1.0 - 0.5 * jnp.power(jnp.asarray(0.96, dtype), t * psi))


def scale_by_nadam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    momentum_decay: ArrayLike = 4e-3,
    *,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by NAdam's Nesterov-corrected moments, with torch's numerics.

    See :func:`nadam` for the update rule. The momentum coefficient follows
    torch's schedule :math:`\mu_t = \beta_1(1 - \frac12\, 0.96^{t\psi})` and the
    running product :math:`\prod_i \mu_i` is kept in the state (``mu_product``,
    in the hyperparameter dtype: float64 under ``jax_enable_x64``, as torch keeps
    it in its default dtype). Complex leaves are handled componentwise (torch's
    ``view_as_real``). Math is done in at least float32; moments are stored in
    ``mu_dtype``/``nu_dtype`` (default: the params').

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        momentum_decay: :math:`\psi`, the rate of the momentum schedule.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByNadamState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.scale_by_nadam()
        >>> state = tx.init(jnp.zeros(1))
        >>> updates, state = tx.update(jnp.ones(1), state)
        >>> round(float(state.mu_product), 6)
        0.450073
    """
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.eps(eps)
    _validate.at_least_zero(momentum_decay, "momentum_decay")
    _rules.check_args("scale_by_nadam", b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay)

    def init_fn(params):
        _tree.reject_complex_for_real_dtypes(
            "scale_by_nadam", params, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        )
        count = None if step is not None else jnp.zeros([], jnp.int32)
        return ScaleByNadamState(
            count,
            jnp.ones([], hyperparam_dtype()),
            _tree.zeros_like(params, mu_dtype),
            _tree.zeros_like(params, nu_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_nadam", updates, state.mu)
        count = step if step is not None else state.count
        # Scalars in the hyperparameter dtype, as torch forms them in Python doubles.
        t = _tree.step_as(count, state.mu_product.dtype)
        mu_t = _momentum_coefficient(b1, momentum_decay, t)
        mu_next = _momentum_coefficient(b1, momentum_decay, t + 1)
        mu_product = state.mu_product * mu_t
        coef_g = (1 - mu_t) / (1 - mu_product)
        coef_m = mu_next / (1 - mu_product * mu_next)
        bc2 = _tree.bias_correction(b2, count)

        def one(g, m, v):
            gc = _tree.upcast(g)
            m_new = _tree.update_moment(gc, m.astype(gc.dtype), b1, 1)
            v_new = _tree.update_moment(gc, v.astype(gc.dtype), b2, 2)
            denom = jnp.sqrt(v_new / _tree.scalar_like(bc2, gc)) + _tree.scalar_like(eps, gc)
            direction = (
                _tree.scalar_like(coef_g, gc) * gc / denom
                + _tree.scalar_like(coef_m, gc) * m_new / denom
            )
            return direction.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)

        u, mu, nu = _tree.tree_map_multi(_tree.componentwise(one), 3, updates, state.mu, state.nu)
        new_count = None if step is not None else safe_increment(state.count)
        return u, ScaleByNadamState(new_count, mu_product, mu, nu)

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


def _validate_nadam(learning_rate, b1, b2, eps, weight_decay, momentum_decay) -> None:
    # torch.optim.NAdam's order, so the first failing check is the same.
    validate_adam_like(learning_rate, b1, b2, eps, weight_decay)
    _validate.at_least_zero(momentum_decay, "momentum_decay")


def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    momentum_decay: ScalarOrSchedule = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    *,
    mask: Any = None,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""NAdam (Adam with Nesterov momentum), numerically identical to ``torch.optim.NAdam``.

    With :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``), plus
    :math:`\lambda p_{t-1}` unless the decay is decoupled:

    .. math::
        \mu_t &= \beta_1\big(1 - \tfrac12\, 0.96^{t\psi}\big) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        d_t &= \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        p_t &= p_{t-1} - \eta\Big(\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}\frac{g_t}{d_t}
            + \frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i}\frac{m_t}{d_t}
            \ \big[+ \lambda p_{t-1}\ \text{if decoupled}\big]\Big)

    Every numeric argument lives in the state and may be a schedule. A
    ``weight_decay`` of exactly zero leaves the term out. Complex parameters are
    optimized componentwise, as torch does.

    optax's ``nadam`` has no momentum schedule: its coefficient is the constant
    :math:`\beta_1`. It is this rule in the limit :math:`\psi \to \infty`, so
    ``momentum_decay=float("inf")`` reproduces optax's ``nadam`` (and, with
    ``decoupled_weight_decay=True``, its ``nadamw``); with torch's default
    :math:`\psi = 0.004` the first steps use :math:`\mu_t \approx \beta_1/2`.

    Args:
        learning_rate: :math:`\eta` (default ``2e-3``, torch's).
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, an L2 penalty added to the gradient, or
            decoupled decay with ``decoupled_weight_decay=True``.
        momentum_decay: :math:`\psi \ge 0`, the rate of the momentum schedule.
        decoupled_weight_decay: apply the decay to the parameters directly (NAdamW,
            see :func:`nadamw`) instead of adding it to the gradient.
        maximize: maximise the objective.
        mask: with decoupled decay, a pytree of bools (or ``params -> mask``)
            selecting the leaves to decay.
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.nadam(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.8944, -0.8944]

    References:
        Dozat, `Incorporating Nesterov Momentum into Adam
        <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    _validate_nadam(learning_rate, b1, b2, eps, weight_decay, momentum_decay)
    if mask is not None and not decoupled_weight_decay:
        raise ValueError(
            "nadam: mask applies to decoupled weight decay only; pass "
            "decoupled_weight_decay=True (or use nadamw)."
        )
    _rules.check_args(
        "nadam",
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
    )
    return torch_style(
        lambda step, h: scale_by_nadam(
            h["b1"],
            h["b2"],
            h["eps"],
            h["momentum_decay"],
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
            step=step,
        ),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled_weight_decay,
        mask=mask,
        b1=b1,
        b2=b2,
        eps=eps,
        momentum_decay=momentum_decay,
    )


def nadamw(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-2,
    momentum_decay: ScalarOrSchedule = 4e-3,
    maximize: bool = False,
    *,
    mask: Any = None,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""NAdamW: :func:`nadam` with decoupled weight decay (``NAdam(decoupled_weight_decay=True)``).

    The rule is that of :func:`nadam` with the decay applied to the parameters
    directly. Numerically identical to torch's ``NAdam`` with
    ``decoupled_weight_decay=True``. The default ``weight_decay`` is ``1e-2``, as
    in :func:`~optimlab.adamw` (torch's ``AdamW`` default), where optax's
    ``nadamw`` uses ``1e-4``; optax also has no momentum schedule (see
    :func:`nadam`).

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        weight_decay: decoupled decay :math:`\lambda`.
        momentum_decay: :math:`\psi`.
        maximize: maximise the objective.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.nadamw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.8444]

    References:
        Loshchilov & Hutter, `Decoupled Weight Decay Regularization
        <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    _validate_nadam(learning_rate, b1, b2, eps, weight_decay, momentum_decay)
    _rules.check_args(
        "nadamw",
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
    )
    return nadam(
        learning_rate,
        b1,
        b2,
        eps,
        weight_decay,
        momentum_decay,
        True,
        maximize,
        mask=mask,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
