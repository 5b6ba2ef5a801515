"""The jitted optimizer step of ``optimlab.optim``: pure functions over flat states (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._core._base import apply_updates

__all__ = ["add", "plan", "update"]


def plan(
    active: Sequence[int],
    group_of: Sequence[int],
    counts_of: Sequence[Any],
    treedefs_of: Sequence[Any],
    txs: tuple[Any, ...],
) -> tuple[tuple[Any, ...], list[jax.Array], list[int]]:
    """The static plan of a step over the ``active`` parameters, their counts, and buckets.

    Parameters of one group whose states share one step-count array form a bucket:
    the count is passed once, so the scalar work it drives (bias corrections...) is
    the same expression for all of them and XLA computes it once per bucket rather
    than once per parameter.

    Returns:
        ``(plan, counts, where)``: the static argument of :func:`update`, one count per
        bucket, and each active parameter's bucket.
    """
    buckets: dict[tuple[int, int], int] = {}
    counts: list[jax.Array] = []
    where = []
    structures: dict[Any, int] = {}
    shaped = []
    for i in active:
        count = counts_of[i]
        b = buckets.setdefault((group_of[i], id(count)), len(buckets))
        if b == len(counts):
            counts.append(count)
        where.append(b)
        shaped.append(structures.setdefault(treedefs_of[i], len(structures)))
    static = (
        tuple(group_of[i] for i in active),
        tuple(where),
        tuple(shaped),
        tuple(structures),
        txs,
    )
    return static, counts, where


def _update(plan, leaves, states, grads, feeds, counts):
    # The per-parameter states are stored without hyperparameters: each group's
    # current values are fed here as arrays (so a new lr is data, not a constant),
    # and without their step count: each bucket's count is passed once in
    # ``counts``. ``plan`` (static) is each parameter's group and bucket and each
    # group's transformation, shared by optimizers alike, so they share the
    # compiled step too.
    group_of, bucket_of, shape_of, treedefs, txs = plan
    new_leaves, new_states = [], []
    new_counts: list[Any] = [None] * len(counts)
    for gi, b, t, p, flat, g in zip(
        group_of, bucket_of, shape_of, leaves, states, grads, strict=True
    ):
        s = jax.tree.unflatten(treedefs[t], flat)
        s = s._replace(hyperparams=dict(feeds[gi]), count=counts[b])
        u, s = txs[gi].update(jnp.asarray(g).astype(p.dtype), s, p)
        new_leaves.append(apply_updates(p, u))
        if new_counts[b] is None:
            new_counts[b] = s.count
        new_states.append(jax.tree.leaves(s._replace(hyperparams=None, count=None)))
    return new_leaves, new_states, new_counts


update = jax.jit(_update, static_argnums=0, donate_argnums=(1, 2))


@jax.jit
def add(a: list[jax.Array], b: list[jax.Array]) -> list[jax.Array]:
    return [x + y.astype(x.dtype) for x, y in zip(a, b, strict=True)]
