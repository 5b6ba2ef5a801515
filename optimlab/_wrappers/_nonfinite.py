"""Non-finite updates: skipping steps and zeroing NaNs (private)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import (
    GradientTransformation,
    _update_with_extra_args,
    check_leaves,
    require_transformation,
    safe_increment,
)
from .._core._tree import select
from .._core._types import OptState, Updates

__all__ = ["SkipNonfiniteState", "skip_nonfinite", "ZeroNansState", "zero_nans"]


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


@_validate.checked_arguments
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
        >>> tx = optimlab.skip_nonfinite(optimlab.sgd(0.1), max_consecutive=3)
        >>> state = tx.init(jnp.zeros(2))
        >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), state)
        >>> updates, int(state.total_notfinite)
        (Array([0., 0.], dtype=float32), 1)
    """
    max_consecutive = _validate.integer(
        "skip_nonfinite", "max_consecutive", max_consecutive, 0, none_ok=True
    )
    require_transformation(inner, "skip_nonfinite: inner")
    _rules.check_args("skip_nonfinite", max_consecutive=max_consecutive)
    inner_update = _update_with_extra_args(inner)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return SkipNonfiniteState(
            zero, jnp.asarray(True), jnp.zeros([], jnp.int32), inner.init(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, SkipNonfiniteState):
            raise ValueError(
                f"skip_nonfinite: expected a SkipNonfiniteState, got {type(state).__name__}."
            )
        check_leaves("skip_nonfinite", updates)
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


@_validate.checked_arguments
def zero_nans() -> GradientTransformation:
    """Replaces NaNs in the updates by zeros, recording per leaf whether any were found.

    Infinities are kept (combine with :func:`skip_nonfinite` or
    :func:`~optimlab.clip_by_global_norm` for those). Same as ``optax.zero_nans``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ZeroNansState`.

    Examples:
        >>> tx = optimlab.zero_nans()
        >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
        >>> updates, bool(state.found_nan)
        (Array([1., 0.], dtype=float32), True)
    """

    def init_fn(params):
        return ZeroNansState(_tree.tree_map(lambda p: jnp.asarray(False), params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _validate.state_type("zero_nans", state, ZeroNansState)
        check_leaves("zero_nans", updates)
        _tree.check_match("zero_nans", updates, state.found_nan, shapes=False)
        found = _tree.tree_map(lambda u: jnp.any(jnp.isnan(u)), updates)
        out = _tree.tree_map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return out, ZeroNansState(found)

    return GradientTransformation(init_fn, update_fn)
