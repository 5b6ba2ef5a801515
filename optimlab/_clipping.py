"""Clipping primitives: ``clip`` and ``clip_by_global_norm``."""

from __future__ import annotations

import jax.numpy as jnp

from . import _elementwise, _rules, _tree, _validate
from ._base import EmptyState, GradientTransformation
from ._types import ArrayLike

__all__ = ["clip", "clip_by_global_norm"]


def clip(max_delta: ArrayLike) -> GradientTransformation:
    r"""Clips every update element to ``[-max_delta, max_delta]``.

    .. math:: u \leftarrow \min(\max(u, -\delta), \delta)

    Args:
        max_delta: :math:`\delta \ge 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.clip(1.0)
        >>> tx.update(jnp.array([-3.0, 0.5]), tx.init(jnp.zeros(2)))[0]
        Array([-1. ,  0.5], dtype=float32)
    """
    _validate.non_negative(max_delta, "max_delta")
    _rules.check_args("clip", max_delta=max_delta)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            d = _tree.hp(max_delta, u).astype(u.dtype)
            return jnp.clip(u, -d, d)

        return _tree.tree_map(one, updates), state

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


def clip_by_global_norm(max_norm: ArrayLike) -> GradientTransformation:
    r"""Rescales the updates so that their global l2 norm is at most ``max_norm``.

    .. math::
        u \leftarrow u \cdot \min\!\Big(1, \frac{c}{\lVert u \rVert_2}\Big)

    The factor is a scalar folded into each leaf as a multiply, so under ``jit``
    no clipped copy of the gradients is materialised. When the norm is not
    finite (a NaN or Inf gradient), the step is skipped: the updates are zero
    instead of NaN.

    Args:
        max_norm: :math:`c > 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.clip_by_global_norm(1.0)
        >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]
        Array([0.6, 0.8], dtype=float32)

    References:
        Pascanu et al., `On the difficulty of training recurrent neural networks
        <https://arxiv.org/abs/1211.5063>`_, 2013.
    """
    _validate.positive(max_norm, "max_norm")
    _rules.check_args("clip_by_global_norm", max_norm=max_norm)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = _tree.global_norm(updates)
        c = jnp.asarray(max_norm).astype(norm.dtype)
        finite = jnp.isfinite(norm)
        # A multiply by a scalar factor (not a divide), so XLA folds it into consumers.
        factor = jnp.where(norm > c, c / jnp.where(finite & (norm > 0), norm, 1.0), 1.0)
        factor = jnp.where(finite, factor, 0.0)

        def one(u):
            out = _tree.upcast(u)
            out = out * _tree.scalar_like(factor, out)
            return jnp.where(finite, out, jnp.zeros_like(out)).astype(u.dtype)

        return _tree.tree_map(one, updates), state

    return _elementwise.declare(GradientTransformation(init_fn, update_fn), _elementwise.GLOBAL)
