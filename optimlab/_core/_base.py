"""The protocol: ``GradientTransformation`` and the combinators every optimizer builds on."""

from __future__ import annotations

import functools
import inspect
import sys
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from . import _elementwise
from ._grads import as_param_dtypes, refuse_leaf
from ._types import OptState, Params, Updates
from ._validate import checked_arguments

__all__ = [
    "GradientTransformation",
    "EmptyState",
    "chain",
    "identity",
    "safe_increment",
    "INT32_MAX",
    "check_leaves",
    "refuse_leaf",
    "named_chain",
    "never_negative",
    "never_negative_fields",
    "require_transformation",
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


class _Pair(NamedTuple):
    init: InitFn
    update: UpdateFn


class GradientTransformation(_Pair):
    """A pure ``(init, update)`` pair over pytrees, with exactly optax's shape.

    ``init(params)`` builds the state from the parameters (with tree maps, so it
    works under :func:`jax.eval_shape` and keeps the parameters' sharding); given
    :class:`jax.ShapeDtypeStruct` leaves, it returns the abstract state.
    ``update(updates, state, params=None, **extra_args)`` returns the transformed
    updates and the new state. Every optimlab ``update`` accepts keyword
    ``extra_args`` and ignores those it does not use, so optimlab transformations
    work inside ``optax.chain`` and optax transformations inside :func:`chain`.

    Once optax is imported (optimlab never imports it), an instance whose
    ``update`` takes ``**extra_args`` is also an instance of
    ``optax.GradientTransformationExtraArgs``, so optax's wrappers (``chain``,
    ``MultiSteps``, ``inject_hyperparams``, ``masked``, ...) pass extra arguments
    such as ``value=`` through to it. One whose ``update`` takes none is a plain
    ``optax.GradientTransformation``, and gets none.

    Examples:
        >>> tx = optimlab.sgd(learning_rate=0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> optimlab.apply_updates(params, updates)["w"]
        Array([0.9, 0.9], dtype=float32)
    """

    __slots__ = ()

    def __new__(cls, init: InitFn, update: UpdateFn) -> GradientTransformation:
        return super().__new__(cls, _accepting_abstract(init), update)

    @property
    def __class__(self) -> type:  # pyright: ignore[reportIncompatibleMethodOverride]
        # isinstance() falls back to ``__class__`` when the type itself does not match:
        # this is how optax's ``with_extra_args_support`` recognises the extra-args kind.
        return _optax_view(self.update) or type(self)


def _accepting_abstract(init: InitFn) -> InitFn:
    """``init``, also accepting :class:`jax.ShapeDtypeStruct` leaves (then it runs abstractly).

    An init written with ``jnp.asarray``, ``jnp.full_like`` or ``float()`` needs
    arrays; given abstract leaves, it runs under :func:`jax.eval_shape` instead,
    which returns the same shapes, dtypes and shardings and computes nothing.
    """
    if getattr(init, "_accepts_abstract", False):
        return init

    @functools.wraps(init)
    def init_fn(params):
        if any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(params)):
            return jax.eval_shape(init, params)
        return init(params)

    init_fn._accepts_abstract = True  # pyright: ignore[reportAttributeAccessIssue]
    return init_fn


_VIEWS: dict[type, type] = {}
_ACCEPTS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _optax_view(update: Callable[..., Any]) -> type | None:
    """A subclass of optax's class of this kind, once optax is loaded (else None).

    ``GradientTransformationExtraArgs`` when ``update`` takes ``**extra_args``,
    else ``GradientTransformation``.
    """
    optax_base = sys.modules.get("optax._src.base")
    name = (
        "GradientTransformationExtraArgs"
        if _accepts_extra_args(update)
        else "GradientTransformation"
    )
    optax_cls = getattr(optax_base, name, None)
    if not isinstance(optax_cls, type):
        return None
    view = _VIEWS.get(optax_cls)
    if view is None:
        namespace = {
            "__slots__": (),
            "__module__": __name__,
            "__doc__": GradientTransformation.__doc__,
        }
        view = _VIEWS[optax_cls] = type(
            "GradientTransformation", (GradientTransformation, optax_cls), namespace
        )
    return view


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def never_negative(*fields: str) -> Callable[[type], type]:
    """Declares the fields of a state class that never hold a negative entry (private).

    A running sum or average of squares, an infinity norm, a step size: the step
    takes its square root or divides by it, so a negative entry can only come from
    a damaged or hostile file. :func:`optimlab.checkpoint.restore` and
    ``optimlab.optim``'s ``load_state_dict`` read this declaration and refuse such
    a state, naming the entry.

    Args:
        *fields: names of the class's fields (each a tree of real arrays).

    Returns:
        A class decorator.
    """

    def mark(cls: type) -> type:
        unknown = sorted(set(fields) - set(getattr(cls, "_fields", ())))
        if unknown:
            raise ValueError(f"never_negative: {cls.__name__} has no field(s) {unknown}.")
        cls.__never_negative__ = frozenset(fields)
        return cls

    return mark


def never_negative_fields(cls: type) -> frozenset[str]:
    """The fields :func:`never_negative` declared for a state class (empty if none)."""
    return getattr(cls, "__never_negative__", frozenset())


def safe_increment(count: jax.Array) -> jax.Array:
    """Increments an integer step counter, saturating at its dtype's maximum instead of wrapping.

    Args:
        count: an integer array (any signed or unsigned width, usually an int32
            scalar).

    Returns:
        ``count + 1`` with ``count``'s dtype, or ``count`` where it already holds
        the largest value of that dtype.

    Raises:
        TypeError: if ``count`` is not of an integer dtype (bool, float and complex
            counters are refused).

    Examples:
        >>> optimlab.safe_increment(jnp.asarray(2**31 - 1, jnp.int32))
        Array(2147483647, dtype=int32)
        >>> optimlab.safe_increment(jnp.asarray(2**32 - 1, jnp.uint32))
        Array(4294967295, dtype=uint32)
    """
    count = jnp.asarray(count)
    if not jnp.issubdtype(count.dtype, jnp.integer):
        raise TypeError(
            f"safe_increment: count must have an integer dtype, got {count.dtype}; "
            "keep step counters as integers (int32)."
        )
    big = jnp.asarray(jnp.iinfo(count.dtype).max, count.dtype)
    return jnp.where(count < big, count + jnp.ones_like(count), big)


def _accepts_extra_args(fn: Callable[..., Any]) -> bool:
    """Whether an ``update`` takes ``**kwargs`` (plain optax ones, and some users', do not)."""
    try:
        return _ACCEPTS[fn]
    except (KeyError, TypeError):  # TypeError: not weakly referenceable
        pass
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__wrapped__"):  # a plain function or method
        accepts = bool(code.co_flags & inspect.CO_VARKEYWORDS)
    else:
        try:
            kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
        except (TypeError, ValueError):
            kinds = set()
        accepts = inspect.Parameter.VAR_KEYWORD in kinds
    try:
        _ACCEPTS[fn] = accepts
    except TypeError:
        pass
    return accepts


def require_transformation(tx: Any, subject: str, hint: str = "") -> None:
    """Refuses, with a ``TypeError`` naming ``subject``, what is not a gradient transformation.

    ``subject`` names the function and the argument (``"masked: inner"``); ``hint``
    ends the message. Anything with callable ``init`` and ``update`` passes (an
    optax transformation included).
    """
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(f"{subject} is {type(tx).__name__}, not a gradient transformation{hint}.")


def _update_with_extra_args(tx: Any) -> Callable[..., Any]:
    """``tx.update``, or a wrapper that drops the extra args when it takes none."""
    if _accepts_extra_args(tx.update):
        return tx.update

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return update


NUMBERS = (int, float, complex)


def check_leaves(name: str, updates: Any) -> None:
    """Refuses a leaf of ``updates`` that is neither a number nor an array.

    Raises ``TypeError`` naming ``name`` and the key path, at trace time, before
    any arithmetic fails on the leaf without saying where.
    """
    for leaf in jax.tree_util.tree_leaves(updates):
        if not (hasattr(leaf, "dtype") or isinstance(leaf, NUMBERS)):
            refuse_leaf(name, updates, leaf)


@checked_arguments
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
        >>> tx = optimlab.chain(optimlab.clip(1.0), optimlab.scale(-0.5))
        >>> state = tx.init(jnp.zeros(2))
        >>> tx.update(jnp.array([3.0, -0.5]), state)[0]
        Array([-0.5 ,  0.25], dtype=float32)
    """
    for i, t in enumerate(transforms):
        require_transformation(t, f"chain: argument {i}", " (an object with `init` and `update`)")
    inits = tuple([t.init for t in transforms])
    updates_fns = tuple([_update_with_extra_args(t) for t in transforms])

    def init_fn(params):
        return tuple([fn(params) for fn in inits])

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(updates_fns):
            raise ValueError(
                f"chain: expected a state tuple of length {len(updates_fns)}, "
                f"got {type(state).__name__}. Pass the state returned by this chain's init."
            )
        # check_leaves, inlined: a traced chain runs no Python frame for it.
        exact = False
        for leaf in jax.tree_util.tree_leaves(updates):
            dtype = getattr(leaf, "dtype", None)
            if dtype is None:
                if not isinstance(leaf, NUMBERS):
                    refuse_leaf("chain", updates, leaf)
            elif dtype.kind in "biu":  # bfloat16 and float8 are kind "V": inexact
                exact = True
        if exact:  # integer gradients: floats before the first transformation, as aliases do
            updates = as_param_dtypes("chain", updates, params)
        new_state = []
        for fn, s in zip(updates_fns, state, strict=True):
            updates, s = fn(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return _elementwise.declare_parts(
        GradientTransformation(init_fn, update_fn), lambda: transforms
    )


@checked_arguments
def identity() -> GradientTransformation:
    """Returns the updates unchanged, with an :class:`EmptyState`.

    Returns:
        A :class:`GradientTransformation`.

    Examples:
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


@checked_arguments
def named_chain(*transforms: tuple[str, Any]) -> GradientTransformation:
    """:func:`~optimlab.chain` whose state is a dict keyed by the given names.

    The names then prefix :func:`~optimlab.hyperparams` keys
    (``"<name>/learning_rate"``) and select a ``group`` in
    :func:`~optimlab.set_hyperparams`.

    Args:
        *transforms: ``(name, transformation)`` pairs, applied left to right.

    Returns:
        A :class:`~optimlab.GradientTransformation` whose state is ``{name: state}``.

    Raises:
        ValueError: a repeated name.

    Examples:
        >>> tx = optimlab.named_chain(("clip", optimlab.clip(1.0)), ("opt", optimlab.sgd(0.1)))
        >>> state = tx.init(jnp.zeros(2))
        >>> sorted(state), list(optimlab.hyperparams(state))
        (['clip', 'opt'], ['learning_rate'])
    """
    names = []
    for i, item in enumerate(transforms):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"named_chain: argument {i} must be a (name, transformation) pair.")
        names.append(item[0])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"named_chain: repeated names {dup}.")
    txs = [t for _, t in transforms]
    for name, t in transforms:
        require_transformation(t, f"named_chain: {name!r}")
    fns = [_update_with_extra_args(t) for t in txs]

    def init_fn(params):
        return {n: t.init(params) for n, t in zip(names, txs, strict=True)}

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, dict) or set(state) != set(names):
            raise ValueError(f"named_chain: expected a state dict with keys {names}.")
        new_state = {}
        for n, fn in zip(names, fns, strict=True):
            updates, new_state[n] = fn(updates, state[n], params, **extra_args)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)
