"""Adam family: ``scale_by_adam`` with the ``adam``, ``adamw`` and ``amsgrad`` aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _elementwise, _rules, _tree, _validate
from ._alias import torch_style, validate_adam_like
from ._base import GradientTransformation, safe_increment
from ._types import ArrayLike, DType, ScalarOrSchedule, Updates

__all__ = ["ScaleByAdamState", "scale_by_adam", "adam", "adamw", "amsgrad"]


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment (torch's ``exp_avg``).
        nu: second moment (torch's ``exp_avg_sq``).
        nu_max: running maximum of ``nu`` (torch's ``max_exp_avg_sq``), or ``None``
            without AMSGrad.
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates
    nu_max: Updates | None


def scale_by_adam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    *,
    amsgrad: bool = False,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by Adam's bias-corrected moment ratio, with torch's numerics.

    See :func:`adam` for the update rule. The bias corrections and epsilon are
    placed as in ``torch.optim.Adam``: :math:`\hat m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t}
    + \epsilon)`. AMSGrad takes the maximum over the raw second moments (torch's
    rule, not optax's maximum over bias-corrected ones). Math is done in at least
    float32; moments are stored in ``mu_dtype``/``nu_dtype`` (default: the params').

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        amsgrad: keep the running maximum of the second moment.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment (and its maximum).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdamState`.
    """
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.eps(eps)
    _rules.check_args("scale_by_adam", b1=b1, b2=b2, eps=eps)

    def init_fn(params):
        for dt, label in ((mu_dtype, "mu_dtype"), (nu_dtype, "nu_dtype")):
            if dt is not None and not jnp.issubdtype(jnp.dtype(dt), jnp.complexfloating):
                _tree.reject_complex("scale_by_adam", params, f" with a real {label}={dt}")
        count = None if step is not None else jnp.zeros([], jnp.int32)
        mu = _tree.tree_map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        nu = _tree.tree_map(lambda p: jnp.zeros_like(p, dtype=_real(p, nu_dtype)), params)
        nu_max = _tree.tree_map(jnp.zeros_like, nu) if amsgrad else None
        return ScaleByAdamState(count, mu, nu, nu_max)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_adam", updates, state.mu)
        if (state.nu_max is None) == amsgrad:
            raise ValueError(
                f"scale_by_adam: state from another optimizer: it was built with "
                f"amsgrad={not amsgrad} but this optimizer has amsgrad={amsgrad}."
            )
        count = step if step is not None else state.count

        def one(g, m, v, vmax=None):
            gc = _tree.upcast(g)
            real = jnp.real(gc).dtype
            # Scalars stay in the hyperparameters' precision until cast, as torch
            # computes them in Python doubles.
            m_new = _tree.update_moment(gc, m.astype(gc.dtype), b1, 1)
            v_new = _tree.update_moment(gc, v.astype(real), b2, 2)
            bc1 = _tree.bias_correction(b1, count).astype(real)
            bc2_sqrt = jnp.sqrt(_tree.bias_correction(b2, count)).astype(real)
            vmax_out = None
            if vmax is not None:
                vmax_new = jnp.maximum(vmax.astype(real), v_new)
                denom = jnp.sqrt(vmax_new) / bc2_sqrt + _tree.hp(eps, gc)
                vmax_out = vmax_new.astype(vmax.dtype)
            else:
                denom = jnp.sqrt(v_new) / bc2_sqrt + _tree.hp(eps, gc)
            direction = (m_new / denom.astype(m_new.dtype)) / bc1.astype(m_new.dtype)
            return (
                direction.astype(g.dtype),
                m_new.astype(m.dtype),
                v_new.astype(v.dtype),
                vmax_out,
            )

        if amsgrad:
            u, mu, nu, nu_max = _tree.tree_map_multi(
                one, 4, updates, state.mu, state.nu, state.nu_max
            )
        else:
            u, mu, nu, _ = _tree.tree_map_multi(one, 4, updates, state.mu, state.nu)
            nu_max = None
        new_count = None if step is not None else safe_increment(state.count)
        return u, ScaleByAdamState(new_count, mu, nu, nu_max)

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


def _real(p: Any, dtype: DType | None) -> Any:
    if dtype is not None:
        return dtype
    p = jnp.asarray(p) if not hasattr(p, "dtype") else p
    return jnp.real(jnp.zeros((), p.dtype)).dtype


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    *,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Adam, numerically identical to ``torch.optim.Adam``.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty added
    to the gradient, sign flipped by ``maximize``):

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2
            \quad (\hat v_t = \max(\hat v_{t-1}, v_t) \text{ with AMSGrad}) \\
        u_t &= -\frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Every numeric argument lives in the state and may be a schedule. A
    ``weight_decay`` of exactly zero leaves the term out (build with a non-zero
    value to change it later).

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (torch's Adam).
            For decoupled decay use :func:`adamw`.
        amsgrad: use the running maximum of :math:`v_t` (torch's AMSGrad).
        maximize: maximise the objective.
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.adam(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> optimlab.apply_updates(params, updates)
        Array([ 0.9, -0.9], dtype=float32)

    References:
        Kingma & Ba, `Adam: A Method for Stochastic Optimization
        <https://arxiv.org/abs/1412.6980>`_, 2014. Reddi et al., `On the Convergence
        of Adam and Beyond <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    validate_adam_like(learning_rate, b1, b2, eps, weight_decay)
    _rules.check_args(
        "adam", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    return _adam(
        learning_rate, b1, b2, eps, weight_decay, amsgrad, maximize, False, None, mu_dtype, nu_dtype
    )


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
    *,
    mask: Any = None,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay, numerically identical to ``torch.optim.AdamW``.

    The rule of :func:`adam` without the L2 term, plus the decay applied to the
    parameters directly:

    .. math:: u_t = -\eta\,\big(\mathrm{adam\_direction}_t + \lambda\, p_{t-1}\big)

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        weight_decay: decoupled decay :math:`\lambda` (default ``1e-2``, as torch's AdamW).
        amsgrad: use the running maximum of :math:`v_t`.
        maximize: maximise the objective.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.adamw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(params), params)
        >>> optimlab.apply_updates(params, updates)
        Array([0.85], dtype=float32)

    References:
        Loshchilov & Hutter, `Decoupled Weight Decay Regularization
        <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    validate_adam_like(learning_rate, b1, b2, eps, weight_decay)
    _rules.check_args(
        "adamw", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    return _adam(
        learning_rate, b1, b2, eps, weight_decay, amsgrad, maximize, True, mask, mu_dtype, nu_dtype
    )


def amsgrad(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    """AMSGrad: :func:`adam` with ``amsgrad=True`` (torch's rule on raw second moments).

    Args:
        learning_rate: the step size.
        b1: first-moment decay.
        b2: second-moment decay.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient.
        maximize: maximise the objective.

    Returns:
        A :class:`~optimlab.GradientTransformation`.
    """
    validate_adam_like(learning_rate, b1, b2, eps, weight_decay)
    _rules.check_args(
        "amsgrad", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    return adam(learning_rate, b1, b2, eps, weight_decay, amsgrad=True, maximize=maximize)


def _adam(
    learning_rate,
    b1,
    b2,
    eps,
    weight_decay,
    amsgrad_,
    maximize,
    decoupled,
    mask,
    mu_dtype,
    nu_dtype,
) -> GradientTransformation:
    return torch_style(
        lambda step, h: scale_by_adam(
            h["b1"],
            h["b2"],
            h["eps"],
            amsgrad=amsgrad_,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
            step=step,
        ),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled,
        mask=mask,
        b1=b1,
        b2=b2,
        eps=eps,
    )
