"""torch's ``state_dict`` layout to and from the per-parameter functional states (private).

Everything here validates before anything is changed: :func:`plan_load` returns
the new groups and states (or raises), and the optimizer commits them afterwards.
Functions of explicit arguments: the groups' options, the torch-keyed state, and
the optimizer's :class:`~._store.Store` (read through its public methods).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from ._serialization import savable
from ._spec import Spec, StateKey
from ._store import Store

__all__ = [
    "LoadResult",
    "check_groups",
    "export_state",
    "import_state",
    "pack",
    "pack_groups",
    "plan_load",
    "to_numpy",
    "torch_state",
]


class LoadResult(NamedTuple):
    """What ``load_state_dict(state_dict, strict=False)`` did.

    Attributes:
        loaded: names of the parameters whose state was loaded.
        skipped: ``{name: reason}`` for the saved parameters that were not loaded.
        missing: names of this optimizer's parameters the state dict has no state for
            (their state is left as it was).
    """

    loaded: list[str]
    skipped: dict[str, str]
    missing: list[str]


def _find(state: Any, cls: type) -> Any:
    hit = lambda x: isinstance(x, cls)
    for node in jax.tree_util.tree_leaves(state, is_leaf=hit):
        if hit(node):
            return node
    return None


def _replace(state: Any, cls: type, field: str, value: Any) -> Any:
    hit = lambda x: isinstance(x, cls)
    leaves, treedef = jax.tree_util.tree_flatten(state, is_leaf=hit)
    for i, node in enumerate(leaves):
        if hit(node):
            leaves[i] = node._replace(**{field: value})
            break
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _used(spec: Spec, state: Any) -> dict[str, StateKey]:
    """The torch keys this configuration's state holds, in the spec's order."""
    out = {}
    for key, sk in spec.state.items():
        node = _find(state, sk.cls)
        if node is not None and getattr(node, sk.field) is not None:
            out[key] = sk
    return out


def to_numpy(value: Any) -> np.ndarray:
    """A host array from a jax/NumPy array, a number or a torch tensor (never imports torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
    return np.asarray(value)


def export_state(spec: Spec, state: Any) -> dict[str, jax.Array]:
    """torch's per-parameter dict (``{'step': ..., 'exp_avg': ...}``) from a functional state."""
    out = {}
    for key, sk in _used(spec, state).items():
        value = getattr(_find(state, sk.cls), sk.field)
        out[key] = value if sk.dtype is None else jnp.asarray(value).astype(sk.dtype)
    return out


def _has_step(spec: Spec) -> bool:
    return any(sk.dtype is not None for sk in spec.state.values())


def import_state(
    spec: Spec, fresh: Any, entry: Mapping[str, Any], where: str, *, lenient: bool = False
) -> tuple[Any, dict[str, Any]]:
    """A functional state holding torch's per-parameter ``entry``, checked against ``fresh``.

    Entries the spec knows but this configuration does not use (a ``momentum_buffer``
    while ``momentum`` is zero) are returned apart, as torch keeps them untouched.

    Args:
        spec: the optimizer's table.
        fresh: a freshly initialised state for the parameter (gives shapes and dtypes).
        entry: torch's per-parameter dict.
        where: names the parameter in error messages.
        lenient: fill the entries the configuration needs but ``entry`` lacks with
            their initial values (used when options change mid-run).

    Returns:
        ``(state, dormant entries)``.

    Raises:
        ValueError: an unknown key, a missing key, or a value of the wrong shape.
    """
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: the state must be a dict, got {type(entry).__name__}")
    name = spec.owner or getattr(spec.alias, "__name__", "this optimizer")
    unknown = [k for k in entry if k not in spec.state]
    if unknown:
        raise ValueError(
            f"{where}: {unknown[0]!r} is not a state key of {name} "
            f"(its keys are {list(spec.state)}): is the state dict from "
            "another optimizer?"
        )
    used = _used(spec, fresh)
    if entry and not lenient:
        missing = [k for k, sk in used.items() if not sk.optional and k not in entry]
        if missing:
            raise ValueError(
                f"{where}: the loaded state has no {missing[0]!r}, which these "
                f"options of {name} need"
            )
    state = fresh
    for key, sk in used.items():
        if key not in entry:
            continue
        arr = _numeric(entry[key], where, key)
        current = getattr(_find(state, sk.cls), sk.field)
        if sk.dtype is not None:
            if arr.size != 1:
                raise ValueError(f"{where}: {key!r} must be a scalar, got shape {arr.shape}")
            value = jnp.asarray(_checks.check_step(arr, where), current.dtype)
        else:
            if arr.shape != jnp.shape(current):
                raise ValueError(
                    f"{where}: {key!r} has shape {arr.shape}, but the parameter's "
                    f"state needs {jnp.shape(current)}"
                )
            if np.iscomplexobj(arr) and not jnp.iscomplexobj(current):
                raise ValueError(f"{where}: {key!r} is complex, the parameter is real")
            if sk.non_negative and _negative(arr):
                raise ValueError(
                    f"{where}: {key!r} has negative entries, but it is a sum or average of "
                    "squares (or a step size), never negative: the state dict is damaged"
                )
            value = jnp.asarray(arr).astype(current.dtype)
        state = _replace(state, sk.cls, sk.field, value)
    if not _has_step(spec):
        # Without a saved step, "has state" means "has taken a step" (SGD's first-step rule).
        taken = any(k in entry for k in used)
        state = state._replace(count=jnp.asarray(1 if taken else 0, jnp.int32))
    dormant = {k: jnp.asarray(_numeric(v, where, k)) for k, v in entry.items() if k not in used}
    return state, dormant


def _numeric(value: Any, where: str, key: str) -> np.ndarray:
    """A saved state value as a host array, refusing what is no array of numbers."""
    arr = to_numpy(value)
    if arr.dtype.kind not in "biufc" and not jnp.issubdtype(arr.dtype, jnp.number):
        raise TypeError(
            f"{where}: {key!r} must be an array of numbers, got {type(value).__name__} "
            f"{value!r:.80}"
        )
    return arr


def _negative(arr: np.ndarray) -> bool:
    """Whether any entry (either part, for a complex array viewed as real) is below zero."""
    parts = (np.real(arr), np.imag(arr)) if np.iscomplexobj(arr) else (arr,)
    return any(bool(np.any(np.asarray(x, np.float64) < 0)) for x in parts)


def torch_state(store: Store) -> dict[int, dict[str, Any]]:
    """The per-parameter states with torch's keys (live arrays), by parameter index.

    Parameters without a state or dormant entries are left out; a bucketed group's
    parameters too (unbucket it first).
    """
    spec, out = store.spec, {}
    for i, p in enumerate(store.params):
        entry = dict(p.dormant)
        if p.flat is not None:
            entry.update(export_state(spec, p.full_state()))
        if entry:
            out[i] = {k: entry[k] for k in spec.state if k in entry}
    return out


def _option(value: Any) -> Any:
    """A group option as a state dict holds it.

    An array (as torch's tensor ``lr`` or ``betas``) becomes a NumPy copy that
    ``torch.save`` writes as a tensor; anything else is kept as it is.
    """
    if isinstance(value, (jax.Array, np.ndarray)):
        return savable(np.array(value))
    if type(value) in (tuple, list):
        return type(value)(_option(v) for v in value)
    return value


def pack_groups(param_groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The groups of a state dict: copies of the dicts and of their ``"params"``."""
    groups = []
    for g in param_groups:
        packed = {k: _option(v) for k, v in g.items() if k != "params"}
        packed["params"] = list(g["params"])
        groups.append(packed)
    return groups


def pack(
    param_groups: Sequence[Mapping[str, Any]], state: Mapping[int, Mapping[str, Any]]
) -> dict[str, Any]:
    """torch's layout: per-parameter states as NumPy snapshots, groups with parameter ids."""
    snapshot = {i: {k: np.array(v) for k, v in entry.items()} for i, entry in state.items()}
    return {"state": savable(snapshot), "param_groups": pack_groups(param_groups)}


def check_groups(
    store: Store,
    param_groups: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any],
    saved_groups: Any,
    name: str,
) -> list[dict[str, Any]]:
    """The groups to load from ``saved_groups``, checked against ``param_groups``.

    Args:
        store: the optimizer's store (validates and compiles each loaded group).
        param_groups: the optimizer's current groups.
        defaults: the optimizer's defaults (an option a saved group lacks is an error
            if the spec knows it, else taken from the current group).
        saved_groups: the state dict's ``param_groups``.
        name: the optimizer's class name, for messages.

    Raises:
        TypeError: a group's ``'params'`` is not a list.
        ValueError: torch's messages, a parameter id listed twice, or a group invalid
            for this optimizer.
    """
    spec = store.spec
    if not isinstance(saved_groups, Sequence) or isinstance(saved_groups, (str, bytes)):
        raise ValueError("the state dict's 'param_groups' must be a list of dicts")
    if len(param_groups) != len(saved_groups):
        raise ValueError("loaded state dict has a different number of parameter groups")
    _check_saved_ids(saved_groups)
    if any(
        len(g["params"]) != len(s["params"])
        for g, s in zip(param_groups, saved_groups, strict=True)
    ):
        raise ValueError(
            "loaded state dict contains a parameter group "
            "that doesn't match the size of optimizer's group"
        )
    out = []
    for gi, (ours, saved) in enumerate(zip(param_groups, saved_groups, strict=True)):
        new = copy.deepcopy(dict(saved))
        for key in defaults:
            if key not in new:
                if key in spec.hyperparams or key in spec.static:
                    raise ValueError(
                        f"loaded state dict is not from {name}: its parameter group "
                        f"{gi} has no {key!r} option"
                    )
                new[key] = ours[key]
        new.update(spec.fixed)
        try:
            # The alias's own checks and torch's messages first, then the rule table's.
            store.compile(new, f"param_groups[{gi}]")
        except (ValueError, TypeError) as e:
            raise ValueError(f"loaded parameter group {gi} is invalid for {name}: {e}") from None
        new["params"] = list(ours["params"])
        if "param_names" in ours and "param_names" not in new:
            new["param_names"] = list(ours["param_names"])
        out.append(new)
    return out


def _check_saved_ids(saved_groups: Sequence[Any]) -> None:
    """Each saved group is a dict whose ``'params'`` lists ids no other entry lists."""
    seen: dict[Any, int] = {}
    for gi, g in enumerate(saved_groups):
        if not isinstance(g, Mapping) or "params" not in g:
            raise ValueError("each saved parameter group must be a dict with a 'params' list")
        ids = g["params"]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(
                f"loaded parameter group {gi}: 'params' must be a list of parameter ids, "
                f"got {type(ids).__name__} {ids!r:.80}"
            )
        for k in ids:
            if not isinstance(k, Hashable):
                raise TypeError(
                    f"loaded parameter group {gi}: 'params' must list parameter ids (ints), "
                    f"got {type(k).__name__} {k!r:.80}"
                )
            if k in seen:
                other = "twice" if seen[k] == gi else f"and so does group {seen[k]}"
                raise ValueError(
                    f"loaded parameter group {gi} lists parameter id {k} {other}: "
                    "each id names one parameter"
                )
            seen[k] = gi


def _saved_names(saved_groups: Any) -> dict[Any, str]:
    """``{saved id: saved name}`` from the groups' ``param_names``, every one checked."""
    if not isinstance(saved_groups, Sequence) or isinstance(saved_groups, (str, bytes)):
        raise TypeError(
            "the state dict's 'param_groups' must be a list of dicts, got "
            f"{type(saved_groups).__name__}"
        )
    _check_saved_ids(saved_groups)
    out: dict[Any, str] = {}
    taken: dict[str, int] = {}  # name -> group
    for gi, g in enumerate(saved_groups):
        if "param_names" not in g:
            raise ValueError(
                "load_state_dict(strict=False) matches parameters by name, but a "
                "loaded parameter group has no 'param_names' (build the optimizer "
                "from optim.named_parameters to save them)"
            )
        names = g["param_names"]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"loaded parameter group {gi}: 'param_names' must be a list of str, got "
                f"{names!r:.80}"
            )
        if len(names) != len(g["params"]):
            raise ValueError(
                f"loaded parameter group {gi} has {len(names)} 'param_names' for "
                f"{len(g['params'])} 'params'"
            )
        for n in names:
            if n in taken:
                raise ValueError(
                    f"loaded parameter group {gi}: parameter name {n!r} is not unique in "
                    "the state dict, so its state cannot be matched by name"
                )
            taken[n] = gi
        out.update(zip(g["params"], names, strict=True))
    return out


def _import(store: Store, i: int, group: Mapping[str, Any], entry: Any) -> Any:
    """``(state or None, dormant)``: no state at all for an empty entry, as torch."""
    store.compile(group)
    return _import_into(store, i, store.init_state(i, group), entry)


def _import_into(store: Store, i: int, fresh: Any, entry: Any) -> Any:
    where = f"parameter {i} ({store.params[i].name!r})"
    state, dormant = import_state(store.spec, fresh, entry, where)
    return (state if entry else None), dormant


def plan_load(
    store: Store,
    param_groups: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any],
    sd: Mapping[str, Any],
    strict: bool,
    name: str,
) -> tuple[list[dict[str, Any]] | None, dict[int, Any], LoadResult | None]:
    """Validates ``sd`` and returns ``(new groups, {index: (state, dormant)}, report)``.

    With ``strict`` the groups and every state are replaced (torch's behaviour, with
    every check done first). Without, only the states of parameters whose name
    matches are replaced; groups are left as they are (``None``). The arguments are
    as :func:`check_groups`'s; nothing in them is changed but the store's cache of
    compiled forms.
    """
    if not isinstance(sd, Mapping) or "state" not in sd or "param_groups" not in sd:
        raise ValueError("a state dict is a dict with 'state' and 'param_groups' entries")
    saved_state = sd["state"]
    if not isinstance(saved_state, Mapping):
        raise ValueError("the state dict's 'state' must be a dict keyed by parameter id")
    if strict:
        groups = check_groups(store, param_groups, defaults, sd["param_groups"], name)
        id_map = {}
        for saved, ours in zip(sd["param_groups"], groups, strict=True):
            for k, i in zip(saved["params"], ours["params"], strict=True):
                id_map[k] = (i, ours)
        by_group: dict[int, tuple[Any, list[tuple[int, Any]]]] = {}
        for k, entry in saved_state.items():
            if k not in id_map:
                raise ValueError(
                    f"the state dict has state for parameter id {k!r}, which no "
                    "parameter group lists"
                )
            i, group = id_map[k]
            by_group.setdefault(id(group), (group, []))[1].append((i, entry))
        states: dict[int, Any] = {}
        for group, members in by_group.values():
            # One fresh state for the whole group (one init, not one per parameter).
            store.compile(group)
            fresh = store.init_states([i for i, _ in members], group)
            for (i, entry), one in zip(members, fresh, strict=True):
                states[i] = _import_into(store, i, one, entry)
        return groups, states, None
    return None, *_plan_by_name(store, param_groups, sd)


def _plan_by_name(
    store: Store, param_groups: Sequence[Mapping[str, Any]], sd: Mapping[str, Any]
) -> tuple[dict[int, Any], LoadResult]:
    saved_names = _saved_names(sd["param_groups"])
    names = store.names()
    ours: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in ours:
            raise ValueError(
                f"load_state_dict(strict=False): parameter name {n!r} is not unique "
                "in this optimizer"
            )
        ours[n] = i
    states, loaded, skipped = {}, [], {}
    for k, entry in sd["state"].items():
        name = saved_names.get(k)
        if name is None:
            skipped[f"<id {k}>"] = "no parameter group lists this id"
            continue
        if name not in ours:
            skipped[name] = "no parameter of this name"
            continue
        i = ours[name]
        try:
            states[i] = _import(store, i, param_groups[store.params[i].group], entry)
        except (ValueError, TypeError) as e:
            skipped[name] = str(e)
            continue
        loaded.append(name)
    missing = [n for n in names if n not in loaded and n not in skipped]
    return states, LoadResult(loaded, skipped, missing)
