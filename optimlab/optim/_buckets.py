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

from typing import Any

import jax
import jax.numpy as jnp

from .._core._elementwise import bucket_unsafe_part
from .._layout._bucketed import BucketedState, bucket_state, bucketed, unbucket_state

__all__ = ["eligible", "from_states", "init", "step", "to_states"]


def _per_leaf(tx: Any, p: jax.Array) -> Any:
    return jax.eval_shape(tx.init, p)._replace(hyperparams=None, count=None)


def eligible(tx: Any, params: list[jax.Array]) -> bool:
    """Whether ``tx`` may step ``params`` bucketed: bucket-safe, every state array per-leaf."""
    if len(params) < 2 or bucket_unsafe_part(tx) is not None:
        return False
    one = _per_leaf(tx, params[0])
    whole = jax.eval_shape(tx.init, params[:2])._replace(hyperparams=None, count=None)
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
    return _strip(bucket_state(bucketed(tx), full, list(params)))


def to_states(tx: Any, state: BucketedState, count: Any, params: list[jax.Array]) -> list[Any]:
    """The per-parameter full states (count included) of a bucketed state."""
    stacked = unbucket_state(bucketed(tx), state, list(params))
    flat = jax.tree.leaves(stacked._replace(hyperparams=None, count=None))
    n = len(params)
    treedef = jax.tree.structure(_per_leaf(tx, params[0]))
    return [jax.tree.unflatten(treedef, flat[k::n])._replace(count=count) for k in range(n)]


def step(tx: Any, feed: Any, state: BucketedState, count: Any, params: list, grads: list) -> Any:
    """One traced update of a bucketed group: ``(updates, state, count)``."""
    inner = state.inner_state._replace(hyperparams=dict(feed), count=count)
    updates, new = bucketed(tx).update(grads, state._replace(inner_state=inner), params)
    return (updates, *_strip(new))
