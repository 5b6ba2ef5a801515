"""A group's functional state held as one bucketed (multi-tensor) state (private).

A group whose transformation acts elementwise keeps one state over the list of
its parameters, packed by :func:`~optimlab.bucketed` into flat per-dtype
buffers: the jitted step then emits a handful of large operations whatever the
number of parameters (fast to compile and to run), as torch's ``foreach`` path
does. torch's per-parameter views come from :func:`unbucket_state`, and
per-parameter states go back with :func:`bucket_state`. A state is stored
without its hyperparameters (fed at every step) and with its step count apart.
"""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp

from .._layout._bucketed import (
    DEFAULT_MIN_LEAF_SIZE,
    BucketedState,
    bucket_state,
    bucketed,
    unbucket_state,
    update_and_apply,
)

__all__ = ["MIN_PARAMS", "eligible", "from_states", "init", "step", "to_states", "worth"]


#: The bucketed form of each (compiled, shared) transformation, ``None`` if not
#: bucket-safe: built once, as checking a transformation builds its parts.
_BUCKETED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _bucketed(tx: Any) -> Any:
    if tx.init not in _BUCKETED:
        try:
            _BUCKETED[tx.init] = bucketed(tx)
        except ValueError:
            _BUCKETED[tx.init] = None
    return _BUCKETED[tx.init]


def _per_leaf(tx: Any, p: jax.Array) -> Any:
    return jax.eval_shape(tx.init, p)._replace(hyperparams=None, count=None)


#: Groups with fewer small parameters than this keep one state per parameter: their
#: per-parameter cost is small. Either way the numbers are the same, bit for bit
#: (``tests/optim/test_idioms.py`` compares every class with ``foreach=False``).
MIN_PARAMS = 32


def worth(params: list[jax.Array]) -> bool:
    """Whether ``params`` hold enough small arrays for bucketing to pay."""
    return sum(p.size < DEFAULT_MIN_LEAF_SIZE for p in params) >= MIN_PARAMS


def eligible(tx: Any, param: jax.Array) -> bool:
    """Whether ``tx`` may step parameters bucketed: bucket-safe, every state array per-leaf."""
    if _bucketed(tx) is None:
        return False
    one = _per_leaf(tx, param)
    whole = jax.eval_shape(tx.init, [param, param])._replace(hyperparams=None, count=None)
    return jax.tree.structure(whole) == jax.tree.structure(jax.tree.map(lambda x: [x, x], one))


def _strip(state: BucketedState) -> tuple[BucketedState, Any]:
    inner = state.inner_state
    return state._replace(inner_state=inner._replace(hyperparams=None, count=None)), inner.count


def init(tx: Any, params: list[jax.Array]) -> tuple[BucketedState, Any]:
    """A fresh bucketed state of ``tx`` (built from the group's options) and its count.

    No state array is a parameter itself (a large leaf's state that would be is copied).
    """
    ids = {id(p) for p in params}
    state = bucketed(tx).init(list(params))
    return _strip(jax.tree.map(lambda x: jnp.array(x, copy=True) if id(x) in ids else x, state))


def from_states(tx: Any, states: list[Any], params: list[jax.Array]) -> tuple[BucketedState, Any]:
    """The bucketed state of per-parameter full states that share one step count."""
    stacked = jax.tree.map(lambda *xs: list(xs), *[s._replace(count=None) for s in states])
    hp = jax.eval_shape(tx.init, params[0]).hyperparams
    full = stacked._replace(hyperparams=hp, count=states[0].count)
    return _strip(bucket_state(_bucketed(tx), full, list(params)))


def to_states(tx: Any, state: BucketedState, count: Any, params: list[jax.Array]) -> list[Any]:
    """The per-parameter full states (count included) of a bucketed state."""
    stacked = unbucket_state(_bucketed(tx), state, list(params))._replace(hyperparams=None)
    flat = jax.tree.leaves(stacked._replace(count=None))
    n = len(params)
    # One parameter's structure: the lists over the parameters become its arrays.
    treedef = jax.tree.structure(stacked, is_leaf=lambda x: isinstance(x, list))
    return [jax.tree.unflatten(treedef, flat[k::n])._replace(count=count) for k in range(n)]


def step(tx: Any, feed: Any, state: BucketedState, count: Any, params: list, grads: list) -> Any:
    """One traced step of a bucketed group: ``(new params, state, count)``.

    The updates are added to the params in their buckets (``update_and_apply``),
    so the new params have the bits of the per-parameter step's.
    """
    inner = state.inner_state._replace(hyperparams=dict(feed), count=count)
    new_params, new = update_and_apply(
        _bucketed(tx), grads, state._replace(inner_state=inner), params
    )
    return (new_params, *_strip(new))
