"""Layer-wise trust ratios: ``scale_by_trust_ratio`` with the ``lamb`` and ``lars`` aliases."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._stateless import stateless
from .._core._types import ArrayLike, ScalarOrSchedule
from .._core._validate import checked_arguments
from .._optimizers._adam import scale_by_adam_root
from .._optimizers._sgd import trace
from .._transforms._adam_like import check_optax_adam
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._scale import add_decayed_weights, scale_by_learning_rate
from .._wrappers._masking import mask_tree

__all__ = ["scale_by_trust_ratio", "lamb", "lars"]


def _norm(x: jax.Array, min_norm: jax.Array) -> jax.Array:
    """``max(||x||, min_norm)`` whose gradient at a zero ``x`` is zero, not NaN."""
    sq = jnp.sum(jnp.abs(x) ** 2)
    small = sq <= min_norm * min_norm
    return jnp.where(small, min_norm, jnp.sqrt(jnp.where(small, jnp.ones_like(sq), sq)))


@checked_arguments
def scale_by_trust_ratio(
    min_norm: ArrayLike = 0.0,
    trust_coefficient: ArrayLike = 1.0,
    eps: ArrayLike = 0.0,
    *,
    mask: Any = None,
) -> GradientTransformation:
    r"""Rescales each leaf's update by the ratio of the parameter norm to the update norm.

    .. math::
        u \leftarrow u \cdot \frac{c\, \max(\lVert p \rVert, n_{\min})}
                                  {\max(\lVert u \rVert, n_{\min}) + \epsilon}

    Norms are per leaf (per layer). The ratio is 1 where either norm is zero, so
    zero-initialised parameters still move and zero updates stay zero. Same as
    ``optax.scale_by_trust_ratio``; ``mask`` plays the role of wrapping it in
    ``optax.masked``. Complex parameters are handled as optax does (the norms are
    :math:`\sqrt{\sum |x|^2}`, the ratio is real).

    Args:
        min_norm: :math:`n_{\min} \ge 0`, a floor on both norms.
        trust_coefficient: :math:`c > 0`.
        eps: :math:`\epsilon \ge 0`, added to the update norm.
        mask: optional pytree of bools with the params' structure (or a callable
            ``params -> mask``); leaves where it is ``False`` pass unchanged.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.scale_by_trust_ratio()
        >>> p = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([0.0, 0.5]), tx.init(p), p)[0]
        Array([0., 5.], dtype=float32)

    References:
        You et al., `Large Batch Training of Convolutional Networks
        <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    _validate.non_negative(min_norm, "min_norm")
    _validate.positive(trust_coefficient, "trust_coefficient")
    _validate.eps(eps)
    _rules.check_args(
        "scale_by_trust_ratio", min_norm=min_norm, trust_coefficient=trust_coefficient, eps=eps
    )

    def scaled(updates, params, **extra_args):
        del extra_args
        _tree.check_match("scale_by_trust_ratio", updates, params, "params")
        m = None if mask is None else mask_tree(params, mask, "scale_by_trust_ratio")

        def one(u, p, keep=True):
            if keep is False:
                return u
            uc = _tree.upcast(u)
            pc = _tree.upcast(p).astype(uc.dtype)
            # real scalars and norms (sum of |x|^2) for complex leaves too, as optax
            lo = _tree.hp(min_norm, uc)
            p_norm, u_norm = _norm(pc, lo), _norm(uc, lo)
            ratio = _tree.hp(trust_coefficient, uc) * p_norm / (u_norm + _tree.hp(eps, uc))
            ratio = jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones_like(ratio), ratio)
            out = uc * ratio.astype(uc.dtype)
            if keep is not True:
                out = jnp.where(keep, out, uc)
            return out.astype(u.dtype)

        if m is None:
            return _tree.tree_map(one, updates, params)
        return _tree.tree_map(one, updates, params, m)

    return stateless(scaled, needs_params="scale_by_trust_ratio")


@checked_arguments
def lamb(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""LAMB: Adam's direction plus decoupled decay, rescaled per layer by a trust ratio.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        r_t &= \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
            + \lambda\, p_{t-1} \\
        u_t &= -\eta\, \frac{\lVert p_{t-1} \rVert}{\lVert r_t \rVert}\, r_t
            \quad \text{(per leaf; ratio 1 where a norm is zero)}

    Same arguments and defaults as ``optax.lamb``. Every numeric argument lives in
    the state, ``weight_decay`` too when it is ``0.0`` (settable later); ``None``
    leaves the term out. Complex parameters are optimized as optax does (moments of
    :math:`|g|^2`, per-leaf norms :math:`\sqrt{\sum |x|^2}`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added outside the square root.
        eps_root: :math:`\epsilon_r \ge 0`, added inside it.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.lamb(learning_rate=0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> updates, _ = tx.update(jnp.array([1.0, -1.0]), tx.init(params), params)
        >>> [round(float(x), 4) for x in updates]
        [-0.3536, 0.3536]

    References:
        You et al., `Large Batch Optimization for Deep Learning: Training BERT in 76
        minutes <https://arxiv.org/abs/1904.00962>`_, 2020.
    """
    _validate.lr(learning_rate)
    moments = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_optax_adam("lamb", dict(learning_rate=learning_rate), moments, weight_decay=weight_decay)
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = [scale_by_adam_root(h["b1"], h["b2"], h["eps"], h["eps_root"], step=step)]
        if use_decay:
            txs.append(add_decayed_weights(h["weight_decay"], mask))
        txs += [scale_by_trust_ratio(), scale_by_learning_rate(h["learning_rate"])]
        return chain(*txs)

    decay = optional(weight_decay=weight_decay)
    return alias_hyperparams(build, learning_rate=learning_rate, **moments, **decay)


@checked_arguments
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: ScalarOrSchedule = 0.001,
    eps: ScalarOrSchedule = 0.0,
    trust_ratio_mask: Any = True,
    momentum: ScalarOrSchedule = 0.9,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""LARS: SGD with momentum on updates rescaled per layer by a trust ratio.

    .. math::
        d_t &= g_t + \lambda\, p_{t-1} \\
        s_t &= -\eta\, \frac{c\, \lVert p_{t-1} \rVert}{\lVert d_t \rVert + \epsilon}\, d_t
            \quad \text{(per leaf; ratio 1 where a norm is zero)} \\
        b_t &= \mu\, b_{t-1} + s_t, \qquad b_0 = 0 \\
        u_t &= b_t \ \text{(or } s_t + \mu\, b_t \text{ with Nesterov)}

    Same arguments and defaults as ``optax.lars``; as there, the momentum
    accumulates learning-rate-scaled steps. Every numeric argument lives in the
    state, zeros included (settable later); a ``weight_decay`` or ``momentum`` of
    ``None`` leaves that term out. Complex parameters are optimized as optax does
    (per-leaf norms :math:`\sqrt{\sum |x|^2}`, a real trust ratio).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        weight_decay: L2 coefficient :math:`\lambda \ge 0` added to the gradient.
        weight_decay_mask: ``True`` (every leaf), or a pytree of bools (or
            ``params -> mask``) selecting the leaves to decay.
        trust_coefficient: :math:`c > 0`.
        eps: :math:`\epsilon \ge 0`, added to the update norm.
        trust_ratio_mask: ``True`` (every leaf), or a pytree of bools (or
            ``params -> mask``) selecting the leaves rescaled by the trust ratio.
        momentum: :math:`\mu \ge 0`.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.lars(learning_rate=1.0, trust_coefficient=0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> updates, _ = tx.update(jnp.array([0.0, 2.0]), tx.init(params), params)
        >>> updates
        Array([-0. , -0.5], dtype=float32)

    References:
        You et al., `Large Batch Training of Convolutional Networks
        <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    _validate.lr(learning_rate)
    _validate.weight_decay(weight_decay)
    _validate.positive(trust_coefficient, "trust_coefficient")
    _validate.eps(eps)
    _validate.momentum(momentum)
    if nesterov and _validate.concrete(momentum) == 0.0:
        raise ValueError("Nesterov momentum requires a momentum")
    trust = dict(trust_coefficient=trust_coefficient, eps=eps)
    terms = dict(weight_decay=weight_decay, momentum=momentum)  # None leaves one out
    _rules.check_args("lars", learning_rate=learning_rate, **trust, **terms)
    use_decay = _validate.present(weight_decay)
    use_momentum = _validate.present(momentum)
    wd_mask = None if weight_decay_mask is True else weight_decay_mask
    tr_mask = None if trust_ratio_mask is True else trust_ratio_mask

    def build(step, h):
        txs = []
        if use_decay:
            txs.append(add_decayed_weights(h["weight_decay"], wd_mask))
        txs += [
            scale_by_trust_ratio(
                trust_coefficient=h["trust_coefficient"], eps=h["eps"], mask=tr_mask
            ),
            scale_by_learning_rate(h["learning_rate"]),
        ]
        if use_momentum:
            # torch-style first step (buffer = first update) equals optax's zero-initialised
            # trace here, as there is no dampening.
            txs.append(trace(h["momentum"], nesterov=nesterov, step=step))
        return chain(*txs)

    return alias_hyperparams(build, learning_rate=learning_rate, **trust, **optional(**terms))
