"""NAdam family: ``scale_by_nadam`` with the ``nadam`` and ``nadamw`` aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._hyperparams import hyperparam_dtype
from .._core._lift import lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import adam_like, check_adam_like
from .._transforms._moments import check_moments, moment_slots, nonzero
from ._adam import adam, adamw

__all__ = ["ScaleByNadamState", "scale_by_nadam", "nadam", "nadamw"]


@never_negative("nu")
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


def _itemsize(dtype: jnp.dtype) -> int:
    return jnp.dtype(dtype).itemsize


def _momentum_coefficient(b1: ArrayLike, momentum_decay: ArrayLike, t: jax.Array) -> jax.Array:
    """``b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))`` in ``t``'s dtype."""
    dtype = t.dtype
    b1 = jnp.asarray(b1).astype(dtype)
    psi = jnp.asarray(momentum_decay).astype(dtype)
    return b1 * (1.0 - 0.5 * jnp.power(jnp.asarray(0.96, dtype), t * psi))


@checked_arguments
def scale_by_nadam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    momentum_decay: ArrayLike = 4e-3,
    *,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    product_dtype: DType | None = None,
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
        product_dtype: storage dtype of ``mu_product`` (default: the hyperparameter
            dtype). The product is formed in the hyperparameter dtype, then rounded
            to this one each step, as torch rounds it to its default dtype
            (``torch.optim.NAdam`` in float32 unless the default dtype is changed).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByNadamState`.

    Examples:
        >>> tx = optimlab.scale_by_nadam()
        >>> state = tx.init(jnp.zeros(1))
        >>> updates, state = tx.update(jnp.ones(1), state)
        >>> round(float(state.mu_product), 6)
        0.450073
    """
    check_moments(
        "scale_by_nadam",
        b1,
        b2,
        eps,
        then=lambda: _validate.at_least_zero(momentum_decay, "momentum_decay"),
        momentum_decay=momentum_decay,
    )

    def initial_product():
        return (jnp.ones([], product_dtype or hyperparam_dtype()),)

    def prepare(count, mu_product):
        # Scalars in the hyperparameter dtype, as torch forms them in Python doubles.
        # Scalar math in the wider of the product's and the hyperparameter dtype.
        hdtype = max(mu_product.dtype, jnp.dtype(hyperparam_dtype()), key=_itemsize)
        t = _tree.step_as(count, hdtype)
        mu_t = _momentum_coefficient(b1, momentum_decay, t)
        mu_next = _momentum_coefficient(b1, momentum_decay, t + 1)
        # The product is updated in its storage dtype, then used widened (torch's
        # ``mu_product *= mu`` on its tensor, then ``mu_product.item()``).
        new_product = mu_product * mu_t.astype(mu_product.dtype)
        wide = new_product.astype(hdtype)
        scalars = {
            "coef_g": (1 - mu_t) / (1 - wide),
            "coef_m": mu_next / (1 - wide * mu_next),
            "bc2": _tree.bias_correction(b2, count),
        }
        return scalars, (new_product,)

    def rule(g, m, v, coef_g, coef_m, bc2):
        m_new = _tree.update_moment(g, m, b1, 1)
        v_new = _tree.update_moment(g, v, b2, 2)
        denom = jnp.sqrt(v_new / _tree.scalar_like(bc2, g)) + _tree.scalar_like(eps, g)
        direction = (
            _tree.scalar_like(coef_g, g) * g / denom + _tree.scalar_like(coef_m, g) * m_new / denom
        )
        return direction, m_new, v_new

    return lift(
        "scale_by_nadam",
        rule,
        ScaleByNadamState,
        moment_slots(mu_dtype, nu_dtype, real=False),
        step=step,
        prepare=prepare,
        componentwise=True,
        shared=initial_product,
    )


def _check_nadam(name, numbers, eps_root, momentum_decay, decoupled, mask) -> None:
    # torch.optim.NAdam's order (its momentum_decay after Adam's numbers), so the
    # first failing check is the same; then each number's rule.
    check_adam_like(
        name,
        *numbers,
        mask=mask,
        decoupled=decoupled,
        hint=" (or use nadamw)",
        then=lambda: _validate.at_least_zero(momentum_decay, "momentum_decay"),
        eps_root=eps_root,
        momentum_decay=momentum_decay,
    )


@checked_arguments
def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = True,
    momentum_decay: ScalarOrSchedule | None = None,
    weight_decay: ScalarOrSchedule | None = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    mask: Any = None,
    nu_dtype: DType | None = None,
    product_dtype: DType | None = None,
) -> GradientTransformation:
    r"""NAdam (Adam with Nesterov momentum): optax's by default, torch's with ``momentum_decay``.

    By default this is optax's ``nadam``: :func:`~optimlab.adam` with
    ``nesterov=True``, whose momentum coefficient is the constant :math:`\beta_1`
    (``nesterov=False`` is plain Adam, as in optax). Passing ``momentum_decay``
    selects ``torch.optim.NAdam``'s rule, with its momentum schedule, below;
    :class:`optimlab.optim.NAdam` passes torch's ``momentum_decay=4e-3``.

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
    ``weight_decay`` of ``None`` (the default) leaves the term out; any number,
    ``0.0`` included, keeps it in the state, settable later. Complex parameters are
    optimized componentwise, as torch does.

    optax's rule is this one in the limit :math:`\psi \to \infty` (the constant
    :math:`\beta_1`); with torch's :math:`\psi = 0.004` the first steps use
    :math:`\mu_t \approx \beta_1/2`.

    .. note::
        ``momentum_decay`` (torch's schedule), ``weight_decay`` as an L2 term,
        ``decoupled_weight_decay`` and ``maximize`` are torch's; optax's ``nadam``
        has none of them.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        eps_root: added inside the square root (optax's rule only).
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nesterov: optax's flag; ``False`` is plain Adam (optax's rule only).
        momentum_decay: :math:`\psi \ge 0`, the rate of torch's momentum schedule;
            ``None`` (the default) for optax's constant :math:`\beta_1`.
        weight_decay: :math:`\lambda \ge 0`, an L2 penalty added to the gradient, or
            decoupled decay with ``decoupled_weight_decay=True``.
        decoupled_weight_decay: apply the decay to the parameters directly (NAdamW,
            see :func:`nadamw`) instead of adding it to the gradient.
        maximize: maximise the objective.
        mask: with decoupled decay, a pytree of bools (or ``params -> mask``)
            selecting the leaves to decay.
        nu_dtype: storage dtype of the second moment.
        product_dtype: storage dtype of the running product of the momentum
            coefficients (see :func:`scale_by_nadam`).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.nadam(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.8526, -0.8526]

    References:
        Dozat, `Incorporating Nesterov Momentum into Adam
        <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    numbers = (learning_rate, b1, b2, eps, weight_decay)
    _check_nadam("nadam", numbers, eps_root, momentum_decay, decoupled_weight_decay, mask)
    if momentum_decay is None:  # optax's rule: adam's (adamw's) with nesterov
        common = (learning_rate, b1, b2, eps, eps_root, mu_dtype)
        flags: dict[str, Any] = dict(nesterov=nesterov, maximize=maximize, nu_dtype=nu_dtype)
        if decoupled_weight_decay:
            return adamw(*common, weight_decay, mask, **flags)
        return adam(*common, weight_decay=weight_decay, **flags)
    if not nesterov or nonzero(eps_root):
        raise ValueError(
            "nadam: torch's rule (momentum_decay given) has no eps_root and is always "
            "Nesterov's; leave eps_root at 0 (or None) and nesterov=True, or pass "
            "momentum_decay=None."
        )
    return adam_like(
        scale_by_nadam,
        *numbers,
        maximize=maximize,
        decoupled=decoupled_weight_decay,
        mask=mask,
        extra={"momentum_decay": momentum_decay},
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        product_dtype=product_dtype,
    )


@checked_arguments
def nadamw(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: DType | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = True,
    momentum_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""NAdamW: :func:`nadam` with decoupled weight decay (``NAdam(decoupled_weight_decay=True)``).

    The rule is that of :func:`nadam` with the decay applied to the parameters
    directly. The defaults are optax's ``nadamw`` (``weight_decay=1e-4``, no
    momentum schedule); torch's ``NAdam(decoupled_weight_decay=True)`` is
    ``nadamw(lr, weight_decay=..., momentum_decay=4e-3)``.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        eps_root: added inside the square root (optax's rule only).
        mu_dtype: storage dtype of the first moment.
        weight_decay: decoupled decay :math:`\lambda`.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        nesterov: optax's flag; ``False`` is plain AdamW (optax's rule only).
        momentum_decay: :math:`\psi` (torch's schedule), or ``None`` for optax's rule.
        maximize: maximise the objective.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.nadamw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.8026]

    References:
        Loshchilov & Hutter, `Decoupled Weight Decay Regularization
        <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    numbers = (learning_rate, b1, b2, eps, weight_decay)
    _check_nadam("nadamw", numbers, eps_root, momentum_decay, True, mask)
    return nadam(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        nesterov=nesterov,
        momentum_decay=momentum_decay,
        weight_decay=weight_decay,
        decoupled_weight_decay=True,
        maximize=maximize,
        mask=mask,
        nu_dtype=nu_dtype,
    )
