"""Clipping primitives: ``clip`` and ``clip_by_global_norm``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _elementwise, _fusion, _rules, _tree, _validate
from .._core._base import GradientTransformation
from .._core._stateless import per_leaf, stateless
from .._core._types import ArrayLike

__all__ = [
    "clip",
    "clip_by_global_norm",
    "clip_by_block_rms",
    "adaptive_grad_clip",
    "per_example_global_norm_clip",
]


@_validate.checked_arguments
def clip(max_delta: ArrayLike) -> GradientTransformation:
    r"""Clips every update element to ``[-max_delta, max_delta]``.

    .. math:: u \leftarrow \min(\max(u, -\delta), \delta)

    Args:
        max_delta: :math:`\delta \ge 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.clip(1.0)
        >>> tx.update(jnp.array([-3.0, 0.5]), tx.init(jnp.zeros(2)))[0]
        Array([-1. ,  0.5], dtype=float32)
    """
    _validate.non_negative(max_delta, "max_delta")
    _rules.check_args("clip", max_delta=max_delta)

    def one(u):
        d = _tree.hp(max_delta, u).astype(u.dtype)
        return jnp.clip(u, -d, d)

    return _elementwise.declare(per_leaf(one))


@_validate.checked_arguments
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
        >>> tx = optimlab.clip_by_global_norm(1.0)
        >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]
        Array([0.6, 0.8], dtype=float32)

    References:
        Pascanu et al., `On the difficulty of training recurrent neural networks
        <https://arxiv.org/abs/1211.5063>`_, 2013.
    """
    _validate.positive(max_norm, "max_norm")
    _rules.check_args("clip_by_global_norm", max_norm=max_norm)

    def clipped(updates, params, **extra_args):
        del params, extra_args
        norm = _tree.global_norm(updates)
        c = jnp.asarray(max_norm).astype(norm.dtype)
        finite = jnp.isfinite(norm)
        # A multiply by a scalar factor (not a divide), so XLA folds it into consumers.
        factor = jnp.where(norm > c, c / jnp.where(finite & (norm > 0), norm, 1.0), 1.0)
        # A non-finite norm travels as a NaN factor: each leaf's kernel reads one
        # scalar, not two (every scalar a kernel reads costs compile time).
        factor = _fusion.hoist(jnp.where(finite, factor, jnp.nan), updates)
        skip = jnp.isnan(factor)
        zeros: dict[Any, jax.Array] = {}  # one per shape and dtype: less to trace

        def one(u):
            out = _tree.upcast(u)
            o = _tree.LAX if out.dtype.kind != "b" else _tree.OPERATORS  # one dtype already
            out = o.mul(out, _tree.scalar_like(factor, out))
            zero = zeros.get((out.shape, out.dtype))
            if zero is None:
                zero = zeros[out.shape, out.dtype] = jnp.zeros_like(out)
            # select_n takes the scalar predicate as it is: no broadcast, and no nested
            # jit per leaf as jnp.where traces (less to trace, lower and inline).
            out = jax.lax.select_n(skip, out, zero)
            return out if out.dtype == u.dtype else out.astype(u.dtype)

        return _tree.tree_map(one, updates)

    return _elementwise.declare(stateless(clipped), _elementwise.GLOBAL)


@_validate.checked_arguments
def clip_by_block_rms(threshold: ArrayLike) -> GradientTransformation:
    r"""Rescales each leaf (block) so that its root mean square is at most ``threshold``.

    .. math:: u \leftarrow u \,/\, \max\!\big(1, \mathrm{rms}(u) / c\big)

    Same numerics as ``optax.clip_by_block_rms`` (math in at least float32).

    Args:
        threshold: :math:`c > 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.clip_by_block_rms(1.0)
        >>> tx.update(jnp.array([3.0, -3.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    _validate.positive(threshold, "threshold")
    _rules.check_args("clip_by_block_rms", threshold=threshold)

    def one(u):
        x = _tree.upcast(u)
        rms = jnp.sqrt(jnp.mean(_tree.abs_sq(x)))
        denom = jnp.maximum(jnp.ones_like(rms), rms / _tree.hp(threshold, rms))
        return (x / denom.astype(x.dtype)).astype(u.dtype)

    return per_leaf(one)


def _unitwise_norm(x: jax.Array, axis: Any) -> jax.Array:
    sq = _tree.abs_sq(x)
    if axis is not None:
        n = jnp.sum(sq, axis=axis, keepdims=True)
    elif jnp.squeeze(x).ndim <= 1:
        n = jnp.sum(sq, keepdims=True)
    elif x.ndim in (2, 3):
        n = jnp.sum(sq, axis=0, keepdims=True)
    elif x.ndim == 4:
        n = jnp.sum(sq, axis=(0, 1, 2), keepdims=True)
    elif x.ndim == 5:
        n = jnp.sum(sq, axis=(0, 1, 2, 3), keepdims=True)
    else:
        raise ValueError(
            f"adaptive_grad_clip: cannot infer the units of a leaf of shape {x.shape}; pass axis=."
        )
    return jnp.broadcast_to(jnp.sqrt(n), x.shape)


@_validate.checked_arguments
def adaptive_grad_clip(
    clipping: ArrayLike, eps: ArrayLike = 1e-3, axis: int | tuple[int, ...] | None = None
) -> GradientTransformation:
    r"""Adaptive gradient clipping (AGC): clips each unit's update relative to its weights.

    .. math::
        u_i \leftarrow \begin{cases} u_i & \lVert u_i\rVert < \lambda \max(\lVert p_i\rVert,
        \epsilon) \\ u_i\, \lambda \max(\lVert p_i\rVert, \epsilon) / \max(\lVert u_i
        \rVert, 10^{-6}) & \text{otherwise} \end{cases}

    A unit is a slice of a leaf: the whole leaf for vectors and scalars, a column
    (reduction over axis 0) for 2-D and 3-D leaves, the output channel for 4-D and
    5-D convolution kernels (HWIO, DHWIO), or the reduction ``axis`` given. Same
    numerics as ``optax.adaptive_grad_clip``.

    Args:
        clipping: :math:`\lambda > 0`, the largest update-to-weight norm ratio.
        eps: :math:`\epsilon \ge 0`, so zero-initialised weights can still move.
        axis: reduction axis or axes of the unit norm (an int or a tuple of ints;
            default: inferred from the rank); it must be in range for every leaf.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Raises:
        TypeError: ``axis`` is not an int, a tuple of ints or ``None`` (when built).
        ValueError: ``axis`` is out of range for a leaf (at update, naming its key path).

    Examples:
        >>> tx = optimlab.adaptive_grad_clip(0.1)
        >>> p = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([6.0, 8.0]), tx.init(p), p)[0]
        Array([0.3, 0.4], dtype=float32)

    References:
        Brock et al., `High-Performance Large-Scale Image Recognition Without
        Normalization <https://arxiv.org/abs/2102.06171>`_, 2021.
    """
    _validate.positive(clipping, "clipping")
    _validate.non_negative(eps, "eps")
    _rules.check_args("adaptive_grad_clip", clipping=clipping, eps=eps)
    axes = _axes(axis)

    def one(u, p):
        g = _tree.upcast(u)
        w = _tree.upcast(p)
        g_norm = _unitwise_norm(g, axis)
        p_norm = _unitwise_norm(w, axis).astype(g_norm.dtype)
        max_norm = _tree.hp(clipping, g_norm) * jnp.maximum(p_norm, _tree.hp(eps, g_norm))
        clipped = g * (max_norm / jnp.maximum(g_norm, _tree.hp(1e-6, g_norm))).astype(g.dtype)
        return jnp.where(g_norm < max_norm, g, clipped).astype(u.dtype)

    def fn(updates, params, **extra_args):
        del extra_args
        _tree.check_fits("adaptive_grad_clip", updates, params)
        if axes is not None:
            _check_axes(axis, axes, updates)
        return _tree.tree_map(one, updates, params)

    return stateless(fn, needs_params="adaptive_grad_clip", origin=one)


def _axes(axis: Any) -> tuple[int, ...] | None:
    """``axis`` as a tuple of ints (``None`` kept), or ``TypeError`` naming it."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in items):
        raise TypeError(
            "adaptive_grad_clip: axis must be an int, a tuple of ints or None, got "
            f"{type(axis).__name__} {axis!r}."
        )
    return tuple(int(a) for a in items)


def _check_axes(axis: Any, axes: tuple[int, ...], updates: Any) -> None:
    """Raises ``ValueError`` naming the key path of a leaf that ``axes`` is out of range for."""
    for path, u in jax.tree_util.tree_flatten_with_path(updates)[0]:
        ndim = jnp.ndim(u)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(
                f"adaptive_grad_clip: axis={axis!r} is out of range for the leaf at "
                f"{jax.tree_util.keystr(path)} of shape {jnp.shape(u)} ({ndim} dimensions)."
            )


@_validate.checked_arguments
def per_example_global_norm_clip(
    grads: list[jax.Array], l2_norm_clip: ArrayLike
) -> tuple[list[jax.Array], jax.Array]:
    r"""Clips each example's gradient to a global l2 norm, then sums over examples.

    Each leaf carries a leading batch axis. The gradient of example :math:`i`
    (its slice across all leaves) is scaled by :math:`\min(1, c / \lVert g_i
    \rVert)` (1 when the norm is zero), and the scaled gradients are summed, as
    in DP-SGD. Same numerics as ``optax.per_example_global_norm_clip``.

    Args:
        grads: a list of arrays, each of shape ``(batch, ...)``.
        l2_norm_clip: :math:`c \ge 0`.

    Returns:
        ``(summed, num_clipped)``: the list of summed clipped gradients, and the
        number of examples whose gradient was scaled down.

    Raises:
        ValueError: leaves without a common leading batch axis.

    Examples:
        >>> grads = [jnp.array([[0.0, 3.0, 4.0], [0.3, 0.4, 0.0]])]
        >>> summed, n = optimlab.per_example_global_norm_clip(grads, 1.0)
        >>> summed[0], int(n)
        (Array([0.3, 1. , 0.8], dtype=float32), 1)

    References:
        Abadi et al., `Deep Learning with Differential Privacy
        <https://arxiv.org/abs/1607.00133>`_, 2016.
    """
    _validate.non_negative(l2_norm_clip, "l2_norm_clip")
    leaves = [jnp.asarray(g) for g in grads]
    if not leaves or any(g.ndim < 1 or g.shape[0] != leaves[0].shape[0] for g in leaves):
        raise ValueError(
            "per_example_global_norm_clip: every leaf needs the same leading batch "
            f"axis; got shapes {[g.shape for g in leaves]}."
        )
    norms = jax.vmap(_tree.global_norm)(leaves)
    c = _tree.hp(l2_norm_clip, norms)
    multipliers = jnp.nan_to_num(jnp.minimum(c / norms, jnp.ones_like(norms)), nan=1.0)
    num_clipped = jnp.sum(multipliers < 1.0)

    def clipped_sum(g):
        # Integer gradients are summed in the multipliers' float dtype, as optax does.
        dt = g.dtype if jnp.issubdtype(g.dtype, jnp.inexact) else multipliers.dtype
        return jnp.tensordot(multipliers.astype(dt), g.astype(dt), axes=1)

    summed = [clipped_sum(g) for g in leaves]
    return summed, num_clipped
