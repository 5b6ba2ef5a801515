"""MoMo: model-based momentum with Polyak-type adaptive step sizes (needs the loss value)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._moments import check_betas_eps
from .._transforms._norms import sq_norm

__all__ = ["MomoState", "MomoAdamState", "momo", "momo_adam"]

# optax compares the squared norm with float64's machine epsilon whatever the dtype.
_TINY = float(jnp.finfo(jnp.float64).eps)
_HIGHEST = jax.lax.Precision.HIGHEST


class MomoState(NamedTuple):
    r"""State of :func:`momo`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        exp_avg: momentum :math:`d_t` of the gradients.
        barf: average :math:`\bar f_t` of the loss values.
        gamma: average :math:`\gamma_t` of :math:`\langle g_i, x_i\rangle`.
        lb: the current lower bound :math:`f_*` on the loss.
    """

    count: jax.Array | None
    exp_avg: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array


class MomoAdamState(NamedTuple):
    r"""State of :func:`momo_adam`: :class:`MomoState` plus ``exp_avg_sq``.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        exp_avg: first moment of the gradients.
        exp_avg_sq: second moment of the gradients.
        barf: average of the loss values.
        gamma: average of :math:`\langle g_i, x_i\rangle`.
        lb: the current lower bound on the loss.
    """

    count: jax.Array | None
    exp_avg: Updates
    exp_avg_sq: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array


def _value(name: str, extra_args: dict[str, Any], params: Any) -> jax.Array:
    _validate.require_params(name, params)
    value = extra_args.get("value")
    if value is None:
        raise ValueError(
            f"{name} needs the loss: call update(grads, state, params, value=loss) "
            "with the loss from jax.value_and_grad."
        )
    return jnp.asarray(value)


def _vdot(a, b, sd):
    """The inner product of two trees, one dot product per leaf (summed as optax does)."""

    def dot(x, y):
        x = _tree.upcast(x)
        y = _tree.upcast(y).astype(x.dtype)
        if jnp.iscomplexobj(x):  # optax's tree.vdot conjugates its first argument
            x = jnp.conj(x)
        return jnp.tensordot(x, y, x.ndim, precision=_HIGHEST)

    return _tree.tree_sum(dot, sd, a, b)


def _momo_core(
    learning_rate, b1, b2, eps, lower_bound, weight_decay, *, adam, adapt_lower_bound, step
):
    name = "momo_adam" if adam else "momo"

    def init_fn(params):
        sd = _tree.scalar_dtype(params)
        if any(jnp.iscomplexobj(x) for x in jax.tree.leaves(params)):
            # optax keeps these statistics in the params' complex dtype, and its inner
            # products <g, x> (conjugating g) have an imaginary part: so do ours
            sd = jnp.dtype(jnp.complex128 if sd == jnp.float64 else jnp.complex64)
        count = initial_count(step)
        z = jnp.zeros([], sd)
        lb = jnp.asarray(lower_bound).astype(sd)
        zeros = _tree.zeros_like(params)
        if adam:
            return MomoAdamState(count, zeros, _tree.zeros_like(params), z, jnp.zeros([], sd), lb)
        return MomoState(count, zeros, z, jnp.zeros([], sd), lb)

    def update_fn(updates, state, params=None, **extra_args):
        _tree.check_match(name, updates, state.exp_avg)
        value = _value(name, extra_args, params)
        count = current_count(step, state)
        sd = state.barf.dtype
        # Scalar math on the hyperparameters (1 - beta, the bias corrections,
        # 1 + lr * wd) stays in their own precision (float64 under x64, as optax's
        # Python floats); ``c`` casts a result to the statistics' dtype where it meets them.
        c = lambda x: jnp.asarray(x).astype(sd)
        lr, lb0 = c(learning_rate), c(lower_bound)
        hb = jnp.asarray(b1)
        beta = hb if adam else jnp.where(count == 0, jnp.zeros_like(hb), hb)
        barf = c(beta) * state.barf + c(1 - beta) * value.astype(sd)

        def avg(g, m):
            gc = _tree.upcast(g)
            out = (
                _tree.scalar_like(beta, gc) * m.astype(gc.dtype)
                + _tree.scalar_like(1 - beta, gc) * gc
            )
            return out.astype(m.dtype)

        m = _tree.tree_map(avg, updates, state.exp_avg)
        gamma = c(beta) * state.gamma + c(1 - beta) * _vdot(updates, params, sd)
        iprod = _vdot(m, params, sd)
        if adam:
            t = _tree.step_as(count, hb.dtype)
            bc1, bc2 = c(1 - hb**t), c(1 - jnp.asarray(b2) ** t)

            def second(g, v):
                gc = _tree.upcast(g)
                out = (
                    _tree.scalar_like(b2, gc) * v.astype(gc.dtype)
                    + _tree.scalar_like(1 - jnp.asarray(b2), gc) * gc * gc
                )
                return out.astype(v.dtype)

            v = _tree.tree_map(second, updates, state.exp_avg_sq)
            precond = _tree.tree_map(
                lambda x: (
                    _tree.scalar_like(eps, _tree.upcast(x))
                    + jnp.sqrt(_tree.upcast(x) / _tree.scalar_like(bc2, _tree.upcast(x)))
                ),
                v,
            )
            norm = _vdot(m, _tree.tree_map(lambda a, p: _tree.upcast(a) / p, m, precond), sd)
        else:
            bc1 = c(1.0)
            v, precond = None, None
            norm = sq_norm(m, sd)
        lr_wd = jnp.asarray(learning_rate) * jnp.asarray(weight_decay)
        shrink, decay = c(1 + lr_wd), c(lr_wd / (1 + lr_wd))
        if adapt_lower_bound:
            cap = shrink * (barf - gamma) + iprod
            this_lb = jnp.where(
                cap < shrink * bc1 * state.lb, jnp.maximum(cap / (2 * bc1 * shrink), lb0), state.lb
            )
        else:
            this_lb = state.lb
        t1 = jnp.maximum(shrink * (barf - bc1 * this_lb - gamma) + iprod, 0) / jnp.where(
            norm <= _TINY, 1, norm
        )
        t1 = jnp.where(norm <= _TINY, 0, t1)
        tau = jnp.minimum(lr / bc1, t1)

        def step_fn(g, a, p, pre=None):
            pc = _tree.upcast(p)
            out = -_tree.scalar_like(tau, pc) * _tree.upcast(a)
            if pre is not None:
                out = out / pre
            if _validate.present(weight_decay):
                out = out - _tree.scalar_like(decay, pc) * pc
            return out.astype(g.dtype)

        out = _tree.tree_map(step_fn, updates, m, params, *([precond] if adam else []))
        if adapt_lower_bound:
            new_lb = jnp.maximum((barf + iprod - gamma - tau * norm / 2) / bc1, lb0)
        else:
            new_lb = state.lb
        new_count = next_count(step, state)
        if adam:
            return out, MomoAdamState(new_count, m, v, barf, gamma, new_lb)
        return out, MomoState(new_count, m, barf, gamma, new_lb)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 0.9,
    lower_bound: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo: SGD with momentum whose step is capped by a Polyak step on a momentum model.

    Pass the loss at the current parameters: ``update(grads, state, params,
    value=loss)``. With :math:`\beta_1 = 0` on the first step, :math:`\beta_t = \beta` after:

    .. math::
        d_t &= \beta_t d_{t-1} + (1-\beta_t) g_t, \quad
        \bar f_t = \beta_t \bar f_{t-1} + (1-\beta_t) f(x_t), \quad
        \gamma_t = \beta_t \gamma_{t-1} + (1-\beta_t) \langle g_t, x_t\rangle \\
        \tau_t &= \min\Big(\alpha,\ \frac{\big[(1+\alpha\lambda)(\bar f_t - f_* - \gamma_t)
            + \langle d_t, x_t\rangle\big]_+}{\lVert d_t\rVert^2}\Big), \qquad
        u_t = -\tau_t d_t - \frac{\alpha\lambda}{1+\alpha\lambda} x_t

    With ``adapt_lower_bound`` the lower bound :math:`f_*` is re-estimated at every
    step. Matches optax's ``contrib.momo``; ``beta`` is stored as ``beta``.
    Complex parameters are optimized as optax does: :math:`\langle g, x\rangle`
    conjugates :math:`g`, so :math:`\gamma_t`, :math:`\bar f_t`, :math:`f_*` and
    :math:`\tau_t` are complex scalars, and :math:`[\cdot]_+` and :math:`\min` order
    complex numbers as ``jnp.maximum`` and ``jnp.minimum`` do (real part first).

    Args:
        learning_rate: :math:`\alpha`, the largest step.
        beta: momentum :math:`\beta \in [0, 1)`.
        lower_bound: :math:`f_*`, a lower bound on the loss.
        weight_decay: :math:`\lambda`.
        adapt_lower_bound: re-estimate :math:`f_*` online.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        The first step is the Polyak step :math:`(f - f_*) / \lVert g\rVert^2 = 5/20`,
        or the learning rate where that is smaller:

        >>> f = lambda x: jnp.sum(x ** 2)
        >>> x = jnp.array([1.0, 2.0])
        >>> loss, grads = jax.value_and_grad(f)(x)
        >>> for lr in (1.0, 0.1):
        ...     tx = optimlab.momo(learning_rate=lr)
        ...     updates, _ = tx.update(grads, tx.init(x), x, value=loss)
        ...     print(optimlab.apply_updates(x, updates))
        [0.5 1. ]
        [0.8 1.6]

    References:
        Schaipp, Ohana, Eickenberg, Defazio & Gower, `MoMo: Momentum Models for Adaptive
        Learning Rates <https://arxiv.org/abs/2305.07583>`_, 2023.
    """
    _validate.lr(learning_rate)
    _validate.beta(beta, 0)
    _validate.weight_decay(weight_decay)
    numbers = dict(learning_rate=learning_rate, beta=beta, lower_bound=lower_bound)
    return _momo_alias("momo", numbers, weight_decay, adapt_lower_bound, adam=False)


@checked_arguments
def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    lower_bound: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo-Adam: :func:`momo` with Adam's preconditioner.

    Pass the loss with ``update(..., value=loss)``. The momentum and averages use
    :math:`\beta_1` from the first step, the norms are taken in the metric
    :math:`D_t = \epsilon + \sqrt{v_t/(1-\beta_2^t)}`, and the step is
    :math:`u_t = -\tau_t D_t^{-1} d_t - \frac{\alpha\lambda}{1+\alpha\lambda} x_t` with
    :math:`\tau_t = \min\big(\alpha/(1-\beta_1^t),\ [(1+\alpha\lambda)(\bar f_t -
    (1-\beta_1^t) f_* - \gamma_t) + \langle d_t, x_t\rangle]_+
    / \lVert d_t\rVert^2_{D_t^{-1}}\big)`.
    Matches optax's ``contrib.momo_adam``, complex parameters included as for
    :func:`momo` (the second moment is then :math:`g^2`, not :math:`|g|^2`, as in optax).

    Args:
        learning_rate: :math:`\alpha`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        lower_bound: :math:`f_*`.
        weight_decay: :math:`\lambda`.
        adapt_lower_bound: re-estimate :math:`f_*` online.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> x = jnp.array([1.0, 2.0])
        >>> tx = optimlab.momo_adam(learning_rate=1.0)
        >>> loss, grads = jax.value_and_grad(f)(x)
        >>> updates, state = tx.update(grads, tx.init(x), x, value=loss)
        >>> [round(float(u), 4) for u in updates]  # -min(lr, f / |g|_1) sign(g), f = 5
        [-0.8333, -0.8333]

    References:
        Schaipp, Ohana, Eickenberg, Defazio & Gower, `MoMo: Momentum Models for Adaptive
        Learning Rates <https://arxiv.org/abs/2305.07583>`_, 2023.
    """
    _validate.lr(learning_rate)
    check_betas_eps(b1, b2, eps)
    _validate.weight_decay(weight_decay)
    numbers = dict(learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, lower_bound=lower_bound)
    return _momo_alias("momo_adam", numbers, weight_decay, adapt_lower_bound, adam=True)


def _momo_alias(name, numbers, weight_decay, adapt_lower_bound, *, adam):
    """Checks ``numbers`` (then ``weight_decay``) and keeps them all in the state."""
    _rules.check_args(name, **numbers, weight_decay=weight_decay)

    def build(step, h):
        b1, b2, eps = (h["b1"], h["b2"], h["eps"]) if adam else (h["beta"], None, None)
        return _momo_core(
            h["learning_rate"],
            b1,
            b2,
            eps,
            h["lower_bound"],
            h.get("weight_decay", 0.0),
            adam=adam,
            adapt_lower_bound=adapt_lower_bound,
            step=step,
        )

    return alias_hyperparams(build, name, **numbers, **optional(weight_decay=weight_decay))
