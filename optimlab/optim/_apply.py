"""One step of ``optimlab.optim``'s optimizers over a :class:`~._store.Store` (private).

Functions of a store and of the groups' options (``param_groups``): carrying
states across a change of compiled form (:func:`sync`), which groups step as
one bucketed state (``_buckets``) and converting states to and from it, and
the one jitted call of ``_step.update``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import _buckets, _checks, _state_dict, _step
from ._store import Store

__all__ = ["apply", "sync", "unbucket"]

Options = Sequence[Mapping[str, Any]]


def apply(store: Store, options: Options, grads: Sequence[Any]) -> None:
    """Steps the parameters with a gradient: bucketed groups, then the others one state each."""
    params = store.params
    active = [i for i, g in enumerate(grads) if g is not None]
    if not active:
        return
    for i in active:
        g, p = grads[i], params[i].leaf
        if isinstance(g, jax.Array) and g.dtype == p.dtype and g.shape == p.shape:
            continue  # the common case, checked in O(1)
        if not (hasattr(g, "dtype") or isinstance(g, int | float | complex)):
            raise TypeError(
                f"the gradient of parameter {i} ({params[i].name!r}) is a {type(g).__name__}, "
                "not an array"
            )
        if (g.shape if isinstance(g, jax.Array) else jnp.shape(g)) != p.shape:
            raise ValueError(
                f"the gradient of parameter {i} ({params[i].name!r}) has shape "
                f"{jnp.shape(grads[i])}, the parameter {p.shape}"
            )
        _checks.check_grad_dtype(g, p, f"parameter {i} ({params[i].name!r})")
    keys = tuple(sync(store, options))
    bgroups = _plan_buckets(store, options, active, keys)
    held = {i for gi in bgroups for i in options[gi]["params"]}
    active = [i for i in active if i not in held]
    new: dict[int, list[int]] = {}  # parameters without a state, by group
    for i in active:
        if params[i].flat is None:
            new.setdefault(params[i].group, []).append(i)
    for gi, idx in new.items():
        tx = store.spec.alias(**store.spec.kwargs(options[gi]))
        zero = jnp.zeros((), jnp.int32)
        states = _step.init_states(tx, [params[i].leaf for i in idx])
        for i, state in zip(idx, states, strict=True):
            params[i].set_state(state)
            params[i].count = zero
    if not store.counts_shared:
        store.share_counts()
    feeds = tuple(store.feed(gi, g) for gi, g in enumerate(options))
    stepped = [params[i] for i in active]
    plan, counts, where = _step.plan(
        range(len(stepped)),
        [p.group for p in stepped],
        [p.count for p in stepped],
        [p.treedef for p in stepped],
        tuple(store.tx(k) for k in keys),
        tuple(g.get("foreach") is not False for g in options),
        tuple(bgroups),
    )
    bparams = [[params[i] for i in options[gi]["params"]] for gi in bgroups]
    leaves, states, new_counts, new_b = _step.update(
        plan,
        [p.leaf for p in stepped],
        [p.flat for p in stepped],
        [grads[i] for i in active],
        feeds,
        counts,
        [[p.leaf for p in ps] for ps in bparams],
        [store.groups[gi].bucket for gi in bgroups],
        [[grads[i] for i in options[gi]["params"]] for gi in bgroups],
    )
    for gi, ps, (leaves_b, st) in zip(bgroups, bparams, new_b, strict=True):
        store.groups[gi].bucket = st
        for p, leaf in zip(ps, leaves_b, strict=True):
            p.leaf = leaf
    for p, leaf, s, b in zip(stepped, leaves, states, where, strict=True):
        p.leaf = leaf
        p.flat = s
        p.count = new_counts[b]


def sync(store: Store, options: Options) -> list[Any]:
    """The groups' keys, rebuilding those whose flags changed and carrying their states across."""
    spec, keys = store.spec, []
    for gi, group in enumerate(options):
        old = store.groups[gi].key
        key = spec.key(group)
        if key != old or key not in store.txs:
            # Only a new compiled form validates (builds the alias): numeric options
            # are fed as data and, as in torch, not re-validated at every step.
            key = store.compile(group, f"param_groups[{gi}]")
        if key != old:
            unbucket(store, options, gi)
            store.counts_shared = False
            for i in group["params"]:
                p = store.params[i]
                if p.flat is not None:
                    entry = {**p.dormant, **_state_dict.export_state(spec, p.full_state())}
                    state, p.dormant = _state_dict.import_state(
                        spec, store.init_state(i, group), entry, f"parameter {i}", lenient=True
                    )
                    p.set_state(state)
            store.groups[gi].key = key
        keys.append(key)
    return keys


def _plan_buckets(
    store: Store, options: Options, active: list[int], keys: tuple[Any, ...]
) -> list[int]:
    """The groups stepped bucketed now (their states converted as needed).

    A group is, with ``foreach`` not ``False``, an elementwise transformation,
    at least ``_buckets.MIN_PARAMS`` small parameters, and every parameter
    stepped with one step count; otherwise its parameters
    are stepped one state each (as a parameter without a gradient is skipped).
    """
    act, out = set(active), []
    for gi, (group, key) in enumerate(zip(options, keys, strict=True)):
        idx = group["params"]
        ps = [store.params[i].leaf for i in idx]
        if key not in store.bucketable:
            store.bucketable[key] = _buckets.eligible(store.tx(key), ps[0])
        if not (
            store.bucketable[key]
            and group.get("foreach") is not False
            and act.issuperset(idx)
            and _buckets.worth(ps)
        ):
            unbucket(store, options, gi)
            continue
        if store.groups[gi].bucket is None:
            have = [store.params[i].full_state() for i in idx]
            if all(s is None for s in have):
                tx = store.spec.alias(**store.spec.kwargs(group))
                store.groups[gi].bucket = _buckets.init(tx, ps)
            elif all(s is not None for s in have) and len({int(s.count) for s in have}) == 1:
                store.groups[gi].bucket = _buckets.from_states(store.tx(key), have, ps)
                for i in idx:
                    store.params[i].set_state(None)
            else:
                continue
        out.append(gi)
    return out


def unbucket(store: Store, options: Options, gi: int | None = None) -> None:
    """Stores the states of bucketed groups (all, or group ``gi``) per parameter again."""
    for g in range(len(store.groups)) if gi is None else [gi]:
        group = store.groups[g]
        if group.bucket is not None:
            idx = options[g]["params"]
            state, count = group.bucket
            group.bucket = None
            leaves = [store.params[i].leaf for i in idx]
            states = _buckets.to_states(store.tx(group.key), state, count, leaves)
            for i, one in zip(idx, states, strict=True):
                store.params[i].set_state(one)
            store.counts_shared = False
