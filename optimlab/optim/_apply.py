"""One step of ``optimlab.optim``'s optimizers over their stored states (private).

Functions over the optimizer (as ``_state_dict``): which groups step as one
bucketed state (``_buckets``), converting states to and from it, and the one
jitted call of ``_step.update``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import _buckets, _checks, _step

# The torch-style optimizer shell being stepped. Its class is not imported:
# optim/_optimizer.py imports this module, and this one stays below it.
Optimizer = Any

__all__ = ["apply", "unbucket"]


def apply(opt: Optimizer, grads: list[Any]) -> None:
    """Steps the parameters with a gradient: bucketed groups, then the others one state each."""
    active = [i for i, g in enumerate(grads) if g is not None]
    if not active:
        return
    for i in active:
        g, p = grads[i], opt._leaves[i]
        if isinstance(g, jax.Array) and g.dtype == p.dtype and g.shape == p.shape:
            continue  # the common case, checked in O(1)
        if (g.shape if isinstance(g, jax.Array) else jnp.shape(g)) != opt._leaves[i].shape:
            raise ValueError(
                f"the gradient of parameter {i} ({opt._names[i]!r}) has shape "
                f"{jnp.shape(grads[i])}, the parameter {opt._leaves[i].shape}"
            )
        _checks.check_grad_dtype(g, opt._leaves[i], f"parameter {i} ({opt._names[i]!r})")
    keys = tuple(opt._sync_groups())
    bgroups = _plan_buckets(opt, active, keys)
    held = {i for gi in bgroups for i in opt.param_groups[gi]["params"]}
    active = [i for i in active if i not in held]
    new: dict[int, list[int]] = {}  # parameters without a state, by group
    for i in active:
        if opt._states[i] is None:
            new.setdefault(opt._group_of[i], []).append(i)
    for gi, idx in new.items():
        tx = opt.spec.alias(**opt.spec.kwargs(opt.param_groups[gi]))
        zero = jnp.zeros((), jnp.int32)
        states = _step.init_states(tx, [opt._leaves[i] for i in idx])
        for i, state in zip(idx, states, strict=True):
            opt._set_state(i, state)
            opt._counts[i] = zero
    if not opt._counts_shared:
        opt._share_counts()
    feeds = tuple(
        opt._feed(gi, g, k) for gi, (g, k) in enumerate(zip(opt.param_groups, keys, strict=True))
    )
    plan, counts, where = _step.plan(
        active,
        opt._group_of,
        opt._counts,
        opt._treedefs,
        tuple(opt._txs[k][0] for k in keys),
        tuple(g.get("foreach") is not False for g in opt.param_groups),
        tuple(bgroups),
    )
    bidx = [opt.param_groups[gi]["params"] for gi in bgroups]
    leaves, states, new_counts, new_b = _step.update(
        plan,
        [opt._leaves[i] for i in active],
        [opt._states[i] for i in active],
        [grads[i] for i in active],
        feeds,
        counts,
        [[opt._leaves[i] for i in idx] for idx in bidx],
        [opt._bucket[gi] for gi in bgroups],
        [[grads[i] for i in idx] for idx in bidx],
    )
    for gi, idx, (ps, st) in zip(bgroups, bidx, new_b, strict=True):
        opt._bucket[gi] = st
        for i, p in zip(idx, ps, strict=True):
            opt._leaves[i] = p
    for i, p, s, b in zip(active, leaves, states, where, strict=True):
        opt._leaves[i] = p
        opt._states[i] = s
        opt._counts[i] = new_counts[b]


def _plan_buckets(opt: Optimizer, active: list[int], keys: tuple[Any, ...]) -> list[int]:
    """The groups stepped bucketed now (their states converted as needed).

    A group is, with ``foreach`` not ``False``, an elementwise transformation,
    at least ``_buckets.MIN_PARAMS`` small parameters, and every parameter
    stepped with one step count; otherwise its parameters
    are stepped one state each (as a parameter without a gradient is skipped).
    """
    act, out = set(active), []
    for gi, (group, key) in enumerate(zip(opt.param_groups, keys, strict=True)):
        idx, ps = group["params"], [opt._leaves[i] for i in group["params"]]
        if key not in opt._bucketable:
            opt._bucketable[key] = _buckets.eligible(opt._txs[key][0], ps[0])
        if not (
            opt._bucketable[key]
            and group.get("foreach") is not False
            and act.issuperset(idx)
            and _buckets.worth(ps)
        ):
            unbucket(opt, gi)
            continue
        if gi not in opt._bucket:
            have = [opt._full_state(i) for i in idx]
            if all(s is None for s in have):
                tx = opt.spec.alias(**opt.spec.kwargs(group))
                opt._bucket[gi] = _buckets.init(tx, ps)
            elif all(s is not None for s in have) and len({int(s.count) for s in have}) == 1:
                opt._bucket[gi] = _buckets.from_states(opt._txs[key][0], have, ps)
                for i in idx:
                    opt._set_state(i, None)
            else:
                continue
        out.append(gi)
    return out


def unbucket(opt: Optimizer, gi: int | None = None) -> None:
    """Stores the states of bucketed groups (all, or group ``gi``) per parameter again."""
    for g in list(opt._bucket) if gi is None else [gi]:
        hit = opt._bucket.pop(g, None)
        if hit is not None:
            idx = opt.param_groups[g]["params"]
            tx = opt._txs[opt._group_keys[g]][0]
            state, count = hit
            states = _buckets.to_states(tx, state, count, [opt._leaves[i] for i in idx])
            for i, one in zip(idx, states, strict=True):
                opt._set_state(i, one)
            opt._counts_shared = False
