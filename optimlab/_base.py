"""The protocol: ``GradientTransformation`` and the combinators every optimizer builds on."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from . import _elementwise
from ._types import OptState, Params, Updates

__all__ = [
    "GradientTransformation",
    "EmptyState",
    "chain",
    "identity",
    "apply_updates",
    "safe_increment",
    "INT32_MAX",
]

#: Largest value of an int32 step counter; counters saturate here instead of wrapping.
INT32_MAX = 2**31 - 1


class InitFn(Protocol):
    """``init(params) -> state``."""

    def __call__(self, params: Params) -> OptState: ...


class UpdateFn(Protocol):
    """``update(updates, state, params=None, **extra_args) -> (updates, state)``."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """A pure ``(init, update)`` pair over pytrees, with exactly optax's shape.

    ``init(params)`` builds the state from the parameters (with tree maps, so it
    works under :func:`jax.eval_shape` and keeps the parameters' sharding).
    ``update(updates, state, params=None, **extra_args)`` returns the transformed
    updates and the new state. Every optimlab ``update`` accepts keyword
    ``extra_args`` and ignores those it does not use, so optimlab transformations
    work inside ``optax.chain`` and optax transformations inside :func:`chain`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.sgd(learning_rate=0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> optimlab.apply_updates(params, updates)["w"]
        Array([0.9, 0.9], dtype=float32)
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def safe_increment(count: jax.Array) -> jax.Array:
    """Increments an int32 step counter, saturating at ``2**31 - 1`` instead of wrapping.

    Args:
        count: an integer scalar array.

    Returns:
        ``count + 1``, or ``count`` when it already holds the largest int32.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> optimlab.safe_increment(jnp.asarray(2**31 - 1, jnp.int32))
        Array(2147483647, dtype=int32)
    """
    count = jnp.asarray(count)
    big = jnp.asarray(INT32_MAX, count.dtype)
    return jnp.where(count < big, count + jnp.ones_like(count), big)


def _accepts_extra_args(fn: Callable[..., Any]) -> bool:
    """Whether a foreign ``update`` takes ``**kwargs`` (plain optax transforms do not)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _update_with_extra_args(tx: Any) -> Callable[..., Any]:
    if isinstance(tx, GradientTransformation) or _accepts_extra_args(tx.update):
        return tx.update

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return update


def chain(*transforms: Any) -> GradientTransformation:
    """Applies transformations in sequence; the state is the tuple of their states.

    Any object with ``init`` and ``update`` is accepted, optax transformations
    included. Keyword ``extra_args`` given to ``update`` are forwarded to every
    transformation that accepts them.

    Args:
        *transforms: the transformations, applied left to right.

    Returns:
        A :class:`GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.chain(optimlab.clip(1.0), optimlab.scale(-0.5))
        >>> state = tx.init(jnp.zeros(2))
        >>> tx.update(jnp.array([3.0, -0.5]), state)[0]
        Array([-0.5 ,  0.25], dtype=float32)
    """
    for i, t in enumerate(transforms):
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(
                f"chain: argument {i} is {type(t).__name__}, not a gradient transformation "
                "(an object with `init` and `update`)."
            )
    inits = tuple(t.init for t in transforms)
    updates_fns = tuple(_update_with_extra_args(t) for t in transforms)

    def init_fn(params):
        return tuple(fn(params) for fn in inits)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(updates_fns):
            raise ValueError(
                f"chain: expected a state tuple of length {len(updates_fns)}, "
                f"got {type(state).__name__}. Pass the state returned by this chain's init."
            )
        new_state = []
        for fn, s in zip(updates_fns, state, strict=True):
            updates, s = fn(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return _elementwise.declare_parts(
        GradientTransformation(init_fn, update_fn), lambda: transforms
    )


def identity() -> GradientTransformation:
    """Returns the updates unchanged, with an :class:`EmptyState`.

    Returns:
        A :class:`GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.identity()
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([1., 1.], dtype=float32)
    """

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


def _apply_one(p, u):
    if p is None:
        return None
    if u is None:
        return p
    p = jnp.asarray(p)
    u = jnp.asarray(u)
    if p.dtype == u.dtype and p.shape == u.shape:
        return jax.lax.add(p, u)  # no promotion: skips jnp.add's dispatch (thousands of leaves)
    with jax.numpy_dtype_promotion("standard"):  # the lattice's join, even under strict mode
        dtype = jnp.promote_types(p.dtype, u.dtype)
    return (p.astype(dtype) + u.astype(dtype)).astype(p.dtype)


def apply_updates(params: Params, updates: Updates) -> Params:
    r"""Adds updates to parameters, keeping each parameter's dtype.

    .. math:: p \leftarrow \operatorname{cast}_{\mathrm{dtype}(p)}(p + u)

    The sum is computed in the wider of the two dtypes (so f32 updates to bf16
    parameters are added in f32) and cast back. ``None`` leaves pass through.

    Args:
        params: the parameter pytree.
        updates: a pytree of the same structure.

    Returns:
        The new parameters.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> p = {"w": jnp.ones(2, jnp.bfloat16)}
        >>> optimlab.apply_updates(p, {"w": jnp.full(2, 0.5)})["w"].dtype
        dtype(bfloat16)
    """
    return jax.tree.map(_apply_one, params, updates, is_leaf=lambda x: x is None)
