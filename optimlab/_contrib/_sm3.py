"""SM3: ``scale_by_sm3`` and the ``sm3`` alias."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import torch_style

__all__ = ["ScaleBySM3State", "scale_by_sm3", "sm3"]


@never_negative("mu")
class ScaleBySM3State(NamedTuple):
    """State of :func:`scale_by_sm3`.

    Attributes:
        mu: per leaf, a list with one accumulator vector per axis (a scalar leaf
            keeps one scalar accumulator).
        nu: the momentum of the preconditioned updates.
    """

    mu: Updates
    nu: Updates


def _axis_zeros(p: jax.Array) -> list[jax.Array]:
    p = jnp.asarray(p)
    if p.ndim == 0:
        return [jnp.zeros_like(p)]
    # Reductions of p keep its sharding along the kept axis.
    return [
        jnp.zeros_like(jnp.sum(p, axis=tuple(j for j in range(p.ndim) if j != i)))
        for i in range(p.ndim)
    ]


@_validate.checked_arguments
def scale_by_sm3(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 1.0,
    eps: ArrayLike = 1e-8,
) -> GradientTransformation:
    r"""Memory-efficient Adagrad-style preconditioning with one accumulator per axis.

    For a leaf of shape :math:`(d_1, \dots, d_k)`, one vector per axis
    :math:`a^{(i)} \in \mathbb{R}^{d_i}` replaces Adagrad's full accumulator:

    .. math::
        \nu_t &= (1-\beta_2)\, g_t^2 + \beta_2 \min_i a^{(i)}_{t-1}
            \quad (\text{coefficient } 1 \text{ instead of } 1-\beta_2 \text{ when } \beta_2 = 1) \\
        a^{(i)}_t &= \max_{\text{axes} \ne i} \nu_t, \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t / \sqrt{\nu_t + \epsilon}

    (:math:`1/\sqrt{\cdot}` is taken as 0 where :math:`\nu_t = 0`); the update is
    :math:`m_t`. Vectors and scalars keep a full accumulator. Same numerics as
    ``optax.scale_by_sm3``, which fails on scalar leaves; here a scalar leaf keeps
    one scalar accumulator. The state has no step counter.

    Args:
        b1: :math:`\beta_1 \in [0, 1)`, the momentum.
        b2: :math:`\beta_2 \in [0, 1]`, the accumulator decay (1: plain sums).
        eps: :math:`\epsilon \ge 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleBySM3State`.
    """
    _validate.beta(b1, 0)
    _validate.in_range(b2, "b2", 0.0, 1.0)
    _validate.eps(eps)
    _rules.check_args("scale_by_sm3", b1=b1, b2=b2, eps=eps)

    def init_fn(params):
        _tree.reject_complex("scale_by_sm3", params)
        return ScaleBySM3State(_tree.tree_map(_axis_zeros, params), _tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_sm3", updates, state.nu)

        def one(g, accs, m):
            gc = _tree.upcast(g)
            nd = gc.ndim
            d2 = _tree.scalar_like(b2, gc)
            coeff = jnp.where(
                d2 == 1, jnp.ones_like(d2), _tree.scalar_like(1 - jnp.asarray(b2), gc)
            )
            if nd < 2:
                prev = accs[0].astype(gc.dtype)
            else:
                shaped = [
                    jnp.reshape(a.astype(gc.dtype), [1] * i + [gc.shape[i]] + [1] * (nd - i - 1))
                    for i, a in enumerate(accs)
                ]
                prev = functools.reduce(jnp.minimum, shaped)
            acc = coeff * gc * gc + d2 * prev
            safe = jnp.where(acc > 0, acc, jnp.ones_like(acc))
            inv_sqrt = jnp.where(
                acc > 0, jax.lax.rsqrt(safe + _tree.scalar_like(eps, gc)), jnp.zeros_like(acc)
            )
            m_new = _tree.ema(gc * inv_sqrt, m.astype(gc.dtype), b1)
            if nd < 2:
                new_accs = [acc.astype(accs[0].dtype)]
            else:
                new_accs = [
                    jnp.max(acc, axis=tuple(j for j in range(nd) if j != i)).astype(accs[i].dtype)
                    for i in range(nd)
                ]
            return m_new.astype(g.dtype), new_accs, m_new.astype(m.dtype)

        u, mu, nu = _tree.tree_map_multi(one, 3, updates, state.mu, state.nu)
        return u, ScaleBySM3State(mu, nu)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def sm3(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule = 0.9,
) -> GradientTransformation:
    r"""SM3: Adagrad-like adaptivity with sublinear memory (one accumulator per axis).

    With the per-axis accumulators of :func:`scale_by_sm3` (:math:`\beta_2 = 1`,
    :math:`\epsilon = 10^{-8}`):

    .. math::
        \nu_t &= g_t^2 + \min_i a^{(i)}_{t-1}, \qquad a^{(i)}_t = \max_{\text{axes} \ne i} \nu_t \\
        m_t &= \mu\, m_{t-1} + (1-\mu)\, g_t / \sqrt{\nu_t + \epsilon} \\
        u_t &= -\eta\, m_t

    Same arguments and defaults as ``optax.sm3``, except that ``learning_rate``
    may also be a schedule (optax's takes a number) and scalar leaves are accepted.
    Both numbers live in the state.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        momentum: :math:`\mu \in [0, 1)`.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.sm3(learning_rate=1.0, momentum=0.0)
        >>> params = jnp.zeros((2, 2))
        >>> updates, state = tx.update(jnp.array([[3.0, 0.0], [0.0, -4.0]]), tx.init(params))
        >>> updates
        Array([[-1., -0.],
               [-0.,  1.]], dtype=float32)

    References:
        Anil et al., `Memory-Efficient Adaptive Optimization
        <https://arxiv.org/abs/1901.11150>`_, 2019.
    """
    _validate.lr(learning_rate)
    _validate.in_range(momentum, "momentum", 0.0, 1.0, hi_open=True)
    _rules.check_args("sm3", learning_rate=learning_rate, momentum=momentum)

    return torch_style(
        lambda step, h: scale_by_sm3(h["momentum"]),
        learning_rate=learning_rate,
        momentum=momentum,
        owner="sm3",
    )
