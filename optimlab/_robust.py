"""Robustness: ``skip_nonfinite``, ``zero_nans`` and the per-block/unit/example clippings."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _rules, _tree, _validate
from ._accumulate import select
from ._base import EmptyState, GradientTransformation, _update_with_extra_args, safe_increment
from ._types import ArrayLike, OptState, Updates

__all__ = [
    "SkipNonfiniteState",
    "skip_nonfinite",
    "ZeroNansState",
    "zero_nans",
    "clip_by_block_rms",
    "adaptive_grad_clip",
    "per_example_global_norm_clip",
]


class SkipNonfiniteState(NamedTuple):
    """State of :func:`skip_nonfinite` (field names as optax's ``ApplyIfFiniteState``).

    Attributes:
        notfinite_count: int32 length of the current run of non-finite steps (0
            after a finite one).
        last_finite: whether the last step's updates were all finite.
        total_notfinite: int32 number of non-finite steps seen since ``init``.
        inner_state: the wrapped transformation's state.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: OptState


def all_finite(tree: Any) -> jax.Array:
    """A boolean scalar: every element of every leaf is finite (no array temporaries)."""
    out = jnp.asarray(True)
    for leaf in jax.tree.leaves(tree):
        out = out & jnp.all(jnp.isfinite(leaf))
    return out


def skip_nonfinite(inner: Any, max_consecutive: int | None = None) -> GradientTransformation:
    """Skips steps whose updates hold a NaN or an Inf, leaving ``inner``'s state untouched.

    On a non-finite step the updates are zero and the inner state is returned
    bit-identical (an element-wise select, no copy); finite steps go through
    ``inner`` as usual. The state counts the current run of skips and the total.
    After ``max_consecutive`` skips in a row it **gives up**, as optax's
    ``apply_if_finite`` does: the next non-finite updates go through ``inner``
    (so a persistent divergence shows up in the params instead of silently
    freezing training); ``None`` (the default) never gives up. Numerically the
    same as ``optax.apply_if_finite(inner, max_consecutive)``.

    Args:
        inner: the transformation to protect.
        max_consecutive: the number of consecutive non-finite steps skipped before
            giving up, or ``None`` to skip them all.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`SkipNonfiniteState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.skip_nonfinite(optimlab.sgd(0.1), max_consecutive=3)
        >>> state = tx.init(jnp.zeros(2))
        >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), state)
        >>> updates, int(state.total_notfinite)
        (Array([0., 0.], dtype=float32), 1)
    """
    if max_consecutive is not None and (
        isinstance(max_consecutive, bool)
        or not isinstance(max_consecutive, int)
        or max_consecutive < 0
    ):
        raise ValueError(
            f"skip_nonfinite: max_consecutive must be an integer >= 0 or None, got "
            f"{max_consecutive!r}."
        )
    if not (hasattr(inner, "init") and hasattr(inner, "update")):
        raise TypeError(
            f"skip_nonfinite: inner is {type(inner).__name__}, not a gradient transformation."
        )
    _rules.check_args("skip_nonfinite", max_consecutive=max_consecutive)
    inner_update = _update_with_extra_args(inner)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return SkipNonfiniteState(zero, jnp.asarray(True), zero, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, SkipNonfiniteState):
            raise ValueError(
                f"skip_nonfinite: expected a SkipNonfiniteState, got {type(state).__name__}."
            )
        finite = all_finite(updates)
        run = jnp.where(
            finite, jnp.zeros_like(state.notfinite_count), safe_increment(state.notfinite_count)
        )
        apply = finite if max_consecutive is None else finite | (run > max_consecutive)
        new_updates, new_inner = inner_update(updates, state.inner_state, params, **extra_args)
        out = _tree.tree_map(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), new_updates)
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return out, SkipNonfiniteState(
            run, finite, total, select(apply, new_inner, state.inner_state)
        )

    return GradientTransformation(init_fn, update_fn)


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans`.

    Attributes:
        found_nan: per leaf, a boolean scalar: whether the last updates had a NaN there.
    """

    found_nan: Updates


def zero_nans() -> GradientTransformation:
    """Replaces NaNs in the updates by zeros, recording per leaf whether any were found.

    Infinities are kept (combine with :func:`skip_nonfinite` or
    :func:`~optimlab.clip_by_global_norm` for those). Same as ``optax.zero_nans``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ZeroNansState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.zero_nans()
        >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
        >>> updates, bool(state.found_nan)
        (Array([1., 0.], dtype=float32), True)
    """

    def init_fn(params):
        return ZeroNansState(_tree.tree_map(lambda p: jnp.asarray(False), params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        if jax.tree.structure(updates, is_leaf=_tree.is_none) != jax.tree.structure(
            state.found_nan, is_leaf=_tree.is_none
        ):
            raise ValueError(
                "zero_nans: the updates' tree structure differs from the state's; "
                "pass updates with the structure of the params given to init."
            )
        found = _tree.tree_map(lambda u: jnp.any(jnp.isnan(u)), updates)
        out = _tree.tree_map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return out, ZeroNansState(found)

    return GradientTransformation(init_fn, update_fn)


def _abs_sq(x: jax.Array) -> jax.Array:
    return (x * jnp.conj(x)).real if jnp.iscomplexobj(x) else x * x


def clip_by_block_rms(threshold: ArrayLike) -> GradientTransformation:
    r"""Rescales each leaf (block) so that its root mean square is at most ``threshold``.

    .. math:: u \leftarrow u \,/\, \max\!\big(1, \mathrm{rms}(u) / c\big)

    Same numerics as ``optax.clip_by_block_rms`` (math in at least float32).

    Args:
        threshold: :math:`c > 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.clip_by_block_rms(1.0)
        >>> tx.update(jnp.array([3.0, -3.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    _validate.positive(threshold, "threshold")
    _rules.check_args("clip_by_block_rms", threshold=threshold)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            x = _tree.upcast(u)
            rms = jnp.sqrt(jnp.mean(_abs_sq(x)))
            denom = jnp.maximum(jnp.ones_like(rms), rms / _tree.hp(threshold, rms))
            return (x / denom.astype(x.dtype)).astype(u.dtype)

        return _tree.tree_map(one, updates), state

    return GradientTransformation(init_fn, update_fn)


def _unitwise_norm(x: jax.Array, axis: Any) -> jax.Array:
    sq = _abs_sq(x)
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
        axis: reduction axis or axes of the unit norm (default: inferred from the rank).

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
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

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                "adaptive_grad_clip: params is None; pass the current params to update()."
            )

        def one(u, p):
            g = _tree.upcast(u)
            w = _tree.upcast(p)
            g_norm = _unitwise_norm(g, axis)
            p_norm = _unitwise_norm(w, axis).astype(g_norm.dtype)
            max_norm = _tree.hp(clipping, g_norm) * jnp.maximum(p_norm, _tree.hp(eps, g_norm))
            clipped = g * (max_norm / jnp.maximum(g_norm, _tree.hp(1e-6, g_norm))).astype(g.dtype)
            return jnp.where(g_norm < max_norm, g, clipped).astype(u.dtype)

        return _tree.tree_map(one, updates, params), state

    return GradientTransformation(init_fn, update_fn)


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
        >>> import jax.numpy as jnp
        >>> import optimlab
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
    summed = [jnp.tensordot(multipliers.astype(g.dtype), g, axes=1) for g in leaves]
    return summed, num_clipped
