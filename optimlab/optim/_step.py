"""The jitted optimizer step of ``optimlab.optim``: pure functions over flat states (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._core import _fusion
from .._core._update import apply_updates
from . import _buckets

__all__ = ["add", "init_states", "plan", "update"]


def plan(
    active: Sequence[int],
    group_of: Sequence[int],
    counts_of: Sequence[Any],
    treedefs_of: Sequence[Any],
    txs: tuple[Any, ...],
    foreach: tuple[bool, ...],
    bgroups: tuple[int, ...] = (),
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
        foreach,
        bgroups,
    )
    return static, counts, where


def _update(plan, leaves, states, grads, feeds, counts, bleaves=(), bstates=(), bgrads=()):
    # The per-parameter states are stored without hyperparameters: each group's
    # current values are fed here as arrays (so a new lr is data, not a constant),
    # and without their step count: each bucket's count is passed once in
    # ``counts``. ``plan`` (static) is each parameter's group and bucket and each
    # group's transformation, shared by optimizers alike, so they share the
    # compiled step too.
    #
    # The parameters of one bucket whose states have one structure are updated by
    # one call of the group's transformation over the list of them (the
    # multi-tensor form: the transformation is traced once per bucket, not once per
    # parameter; see :func:`_stacked`), unless the group says ``foreach=False``.
    #
    # The groups in ``bgroups`` hold one bucketed state over all their parameters
    # (see ``_buckets``): each is one update of the bucketed transformation, whose
    # arithmetic is a few operations over flat buffers.
    #
    # The three forms give the same bits: each parameter's new value is computed
    # in the kernel that computes its update, and whether scalars are hoisted
    # (which changes the arithmetic XLA emits) is decided once, from every
    # parameter of the step, not from the leaves of each call.
    hoist = _fusion.worth_hoisting([*leaves, *(p for ps in bleaves for p in ps)])
    with _fusion.hoisting(hoist):
        return _traced(plan, leaves, states, grads, feeds, counts, bleaves, bstates, bgrads)


def _traced(plan, leaves, states, grads, feeds, counts, bleaves, bstates, bgrads):
    group_of, bucket_of, shape_of, treedefs, txs, foreach, bgroups = plan
    new_b = []
    for gi, ps, (st, count), gs in zip(bgroups, bleaves, bstates, bgrads, strict=True):
        gs = [jnp.asarray(g).astype(p.dtype) for p, g in zip(ps, gs, strict=True)]
        new_ps, st, count = _buckets.step(txs[gi], feeds[gi], st, count, list(ps), gs)
        new_b.append((new_ps, (st, count)))
    new_leaves: list[Any] = [None] * len(leaves)
    new_states: list[Any] = [None] * len(leaves)
    new_counts: list[Any] = [None] * len(counts)
    members: dict[tuple[int, int], list[int]] = {}
    for j, key in enumerate(zip(bucket_of, shape_of, strict=True)):
        members.setdefault(key, []).append(j)
    for (b, t), idx in members.items():
        tx, feed = txs[group_of[idx[0]]], feeds[group_of[idx[0]]]
        ps = [leaves[j] for j in idx]
        gs = [jnp.asarray(grads[j]).astype(leaves[j].dtype) for j in idx]
        per = [jax.tree.unflatten(treedefs[t], states[j]) for j in idx]
        many = len(idx) > 1 and foreach[group_of[idx[0]]]
        group = _stacked(tx, per, ps) if many else None
        if group is None:  # one parameter at a time
            outs = [_one(tx, feed, counts[b], p, g, s) for p, g, s in zip(ps, gs, per, strict=True)]
        else:
            u, st = tx.update(gs, group._replace(hyperparams=dict(feed), count=counts[b]), ps)
            flat = jax.tree.leaves(st._replace(hyperparams=None, count=None))
            n = len(idx)
            outs = [(u[k], st.count, flat[k::n]) for k in range(n)]
        for j, p, (u_j, count, flat_j) in zip(idx, ps, outs, strict=True):
            new_leaves[j] = apply_updates(p, u_j)
            new_states[j] = flat_j
            if new_counts[b] is None:
                new_counts[b] = count
    return new_leaves, new_states, new_counts, new_b


def _one(tx, feed, count, p, g, s):
    u, s = tx.update(g, s._replace(hyperparams=dict(feed), count=count), p)
    return u, s.count, jax.tree.leaves(s._replace(hyperparams=None, count=None))


def _stacked(tx: Any, per: list[Any], params: list[jax.Array]) -> Any:
    """The state of ``tx`` over the list ``params``, from their own states, or ``None``.

    Each per-parameter array of the states becomes a list over the parameters, in
    their order. That is ``tx``'s own state over the list when every array of a
    parameter's state is that parameter's (moments, buffers); a state holding
    anything else (a shared scalar such as NAdam's momentum product) has another
    structure, and the parameters are then updated one at a time.
    """
    stacked = jax.tree.map(lambda *xs: list(xs), *per)
    expected = jax.eval_shape(tx.init, params)._replace(hyperparams=None, count=None)
    if jax.tree.structure(expected) != jax.tree.structure(stacked):
        return None
    return stacked


update = jax.jit(_update, static_argnums=0, donate_argnums=(1, 2, 6, 7))


def init_states(tx: Any, leaves: list[jax.Array]) -> list[Any]:
    """``tx.init`` of each leaf, hyperparameters left out, by one ``init`` over all of them.

    The group's alias is built from its current options (some states start from
    one: Adagrad's initial accumulator, Rprop's step sizes). When every array of a
    leaf's state is that leaf's own (see :func:`_stacked`), one ``init`` over the
    list gives them all; otherwise each leaf is initialised alone. No state array
    is a parameter itself (one that would be is copied).
    """
    n, ids = len(leaves), {id(p) for p in leaves}
    one = jax.eval_shape(tx.init, leaves[0])._replace(hyperparams=None, count=None)
    treedef = jax.tree.structure(one)
    whole = tx.init(list(leaves))._replace(hyperparams=None)
    if jax.tree.structure(whole._replace(count=None)) == jax.tree.structure(
        jax.tree.map(lambda x: [x] * n, one)
    ):
        flat = jax.tree.leaves(whole._replace(count=None))
        states = [
            jax.tree.unflatten(treedef, flat[k::n])._replace(count=whole.count) for k in range(n)
        ]
    else:
        states = [tx.init(p)._replace(hyperparams=None) for p in leaves]
    return [
        jax.tree.map(lambda x: jnp.array(x, copy=True) if id(x) in ids else x, st) for st in states
    ]


@jax.jit
def add(a: list[jax.Array], b: list[jax.Array]) -> list[jax.Array]:
    return [x + y.astype(x.dtype) for x, y in zip(a, b, strict=True)]
