"""Param groups: ``partition`` by label tree, function or path patterns, and ``extend_state``."""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax

from .._core import _tree
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._types import OptState, Params

__all__ = ["PartitionState", "partition", "partition_overrides", "extend_state"]

_GLOB = frozenset("*?[")


def path_str(path: tuple[Any, ...]) -> str:
    """A key path as the ``'/'``-joined string patterns are matched against.

    A final ``.value`` attribute (Flax NNX's ``Variable`` wrapper) is dropped, so a
    ``Variable`` and the raw array in its place (as in NNX gradients) share a path.
    """
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return "/".join(parts)


def _match_segments(pat: tuple[str, ...], segs: tuple[str, ...]) -> bool:
    """Whether ``pat`` matches ``segs`` or a leading run of them (an ancestor)."""
    if not pat:
        return True  # the pattern matched an ancestor: everything below it matches
    head, rest = pat[0], pat[1:]
    if head == "**":
        return any(_match_segments(rest, segs[i:]) for i in range(len(segs) + 1))
    return bool(segs) and fnmatch.fnmatchcase(segs[0], head) and _match_segments(rest, segs[1:])


def _specificity(pattern: str) -> int:
    return sum(1 for s in pattern.split("/") if s != "**" and not (_GLOB & set(s)))


def is_pattern_spec(spec: Any) -> bool:
    """Whether ``spec`` is a pattern list or a pattern dict (rather than a tree)."""
    if isinstance(spec, (list, tuple)):
        return bool(spec) and all(isinstance(s, str) for s in spec)
    if isinstance(spec, Mapping) and spec and all(isinstance(k, str) for k in spec):
        return any("/" in k or (_GLOB & set(k)) for k in spec)
    return False


def match_patterns(path: str, patterns: Mapping[str, Any], what: str) -> tuple[bool, Any]:
    """The value of the most specific pattern matching ``path``: ``(found, value)``.

    Raises ``ValueError`` naming the path when the most specific matches disagree.
    """
    segs = tuple(path.split("/")) if path else ()
    hits = [(p, v) for p, v in patterns.items() if _match_segments(tuple(p.split("/")), segs)]
    if not hits:
        return False, None
    best = max(_specificity(p) for p, _ in hits)
    top = [(p, v) for p, v in hits if _specificity(p) == best]
    values = {repr(v) for _, v in top}
    if len(values) > 1:
        raise ValueError(
            f"{what}: the leaf at {path!r} is matched by {len(top)} patterns of equal "
            f"precedence with different values: {dict(top)}. Add a more specific pattern "
            "for it (one with more literal segments wins)."
        )
    return True, top[0][1]


def _is_empty(x: Any) -> bool:
    return x is None or not jax.tree.leaves(x)


def leaves_with_paths(tree: Any, *, keep_empty: bool = False) -> tuple[list[tuple[str, Any]], Any]:
    """``[(path string, leaf)]`` with ``None`` kept as a leaf, and the treedef.

    ``keep_empty`` also lists each empty subtree (``{}``, ``()``) as a leaf.
    """
    is_leaf = _is_empty if keep_empty else _tree.is_none
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    return [(path_str(p), leaf) for p, leaf in flat], treedef


def unique_paths(flat: list[tuple[str, Any]], what: str) -> None:
    """Raises ``ValueError`` when two leaves have the same path string."""
    seen = set()
    for path, leaf in flat:
        if leaf is not None and path in seen:
            raise ValueError(
                f"{what}: two leaves have the same path {path!r} (a key containing "
                "'/'?); rename one."
            )
        seen.add(path)


_SCOPE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "optimlab_subset_scope", default=frozenset()
)


@contextlib.contextmanager
def subset_scope(flat: list[tuple[str, Any]]) -> Iterator[None]:
    """Marks the trees an inner transformation sees as subsets of ``flat``'s tree.

    :func:`masked` and :func:`partition` hand their inner transformations only
    some leaves (a flat dict keyed by path). A mask or label tree written for the
    whole params (a nested ``masked``) then names leaves the subset lacks; inside
    the scope those are not an error, as long as the whole tree has them.
    """
    paths = set(_SCOPE.get())
    for path, _ in flat:
        segs = path.split("/") if path else []
        paths.update("/".join(segs[:k]) for k in range(len(segs) + 1))
    token = _SCOPE.set(frozenset(paths))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _by_paths(
    tree: Any, spec: Any, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Any], list[str], list[str]]:
    """Reads ``spec`` as a tree: each leaf takes the value at its longest path prefix.

    Returns ``(values, missing, extra)``: ``missing`` are the leaves' paths no
    entry of ``spec`` covers, ``extra`` the paths of ``spec`` that cover no leaf
    (and no leaf of the enclosing :func:`subset_scope`). A tree with the params'
    structure, a prefix of it, or the same paths in a flat dict all resolve.
    """
    flat, _ = leaves_with_paths(tree)
    spec_leaf = _tree.is_none if is_leaf is None else (lambda x: x is None or is_leaf(x))
    spec_flat = jax.tree_util.tree_flatten_with_path(spec, is_leaf=spec_leaf)[0]
    table = {path_str(p): v for p, v in spec_flat}
    used: set[str] = set()
    values: list[Any] = []
    missing: list[str] = []
    for path, leaf in flat:
        segs = path.split("/") if path else []
        for k in range(len(segs), -1, -1):
            key = "/".join(segs[:k])
            if key in table:
                used.add(key)
                values.append(table[key])
                break
        else:
            values.append(None)
            if leaf is not None:
                missing.append(path)
    known: set[str] = set()
    if len(used) < len(table):  # the paths of the params, empty subtrees included
        for path, _ in leaves_with_paths(tree, keep_empty=True)[0]:
            segs = path.split("/") if path else []
            known.update("/".join(segs[:k]) for k in range(len(segs) + 1))
    scope = _SCOPE.get()
    extra = [p for p in table if p not in used and p not in known and p not in scope]
    return values, missing, extra


def is_function_spec(spec: Any, tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """Whether a mask or label ``spec`` is a function to call rather than a tree.

    A callable that is itself a pytree node (an Equinox module, a ``Partial``) is
    a tree when its paths cover ``tree``'s leaves: a mask built by mapping over
    an ``eqx.Module`` is callable but is a mask. Every place that takes a mask or
    a label tree decides with this; ``is_leaf`` marks the spec's own leaf type
    when it is itself a pytree (as :class:`~optimlab.GaLoreDimensionNumbers`).
    """
    if not callable(spec):
        return False
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(spec, is_leaf=_tree.is_none)):
        return True
    _, missing, extra = _by_paths(tree, spec, is_leaf)
    return bool(missing or extra)


def _call(fn: Callable[[str, Any], Any], path: str, leaf: Any, what: str) -> Any:
    try:
        return fn(path, leaf)
    except TypeError as e:
        raise TypeError(
            f"{what}: calling the labels function as fn(path, leaf) failed at {path!r}: {e}. "
            "It takes the leaf's '/'-joined path and the leaf; for optax's form "
            "(a function params -> label tree) pass its result, the label tree, instead."
        ) from e


def _mismatch(what: str, noun: str, missing: list[str], extra: list[str]) -> ValueError:
    parts = []
    if missing:
        parts.append(f"the params' leaves at {missing[:8]} have no entry in the {noun}")
    if extra:
        parts.append(f"the {noun}'s entries at {extra[:8]} match no leaf of the params")
    return ValueError(
        f"{what}: the tree given does not have the params' structure (or a prefix of it): "
        f"{'; '.join(parts)}. Build it from the params (e.g. with jax.tree.map), or pass a "
        "function or a dict of path patterns."
    )


def _by_patterns(
    flat: list[tuple[str, Any]],
    patterns: Mapping[str, Any],
    what: str,
    default: Any,
    required: bool,
) -> list[Any]:
    out = []
    for path, leaf in flat:
        if leaf is None:
            out.append(None)
            continue
        found, value = match_patterns(path, patterns, what)
        if not found:
            if required:
                raise ValueError(
                    f"{what}: no pattern matches the leaf at {path!r}; the patterns are "
                    f"{sorted(patterns)}. Add one (e.g. '**' for a catch-all)."
                )
            value = default
        out.append(value)
    return out


def resolve(
    tree: Any,
    spec: Any,
    what: str,
    *,
    default: Any = None,
    required: bool = True,
    noun: str = "label tree",
    patterns_first: bool = False,
) -> list[Any]:
    """One value per leaf of ``tree`` (``None`` for ``None`` leaves), from ``spec``.

    ``spec`` is a tree with the structure of ``tree`` (or a prefix of it), a
    callable ``(path_string, leaf) -> value``, a pattern dict ``{pattern: value}``
    or a pattern list (``True`` where a pattern matches, ``default`` elsewhere).
    A tuple, list or dict is read as a tree whenever it fits ``tree`` as one
    (``patterns_first`` reads a list of strings as patterns first: masks hold
    bools, never strings), and as patterns otherwise.
    """
    flat, _ = leaves_with_paths(tree)
    if is_function_spec(spec, tree):
        return [None if leaf is None else _call(spec, path, leaf, what) for path, leaf in flat]
    pattern_list = isinstance(spec, (list, tuple)) and is_pattern_spec(spec)
    if not (patterns_first and pattern_list):
        values, missing, extra = _by_paths(tree, spec)
        if not (missing or extra):
            return [None if leaf is None else v for (_, leaf), v in zip(flat, values, strict=True)]
        if not is_pattern_spec(spec):
            raise _mismatch(what, noun, missing, extra)
    patterns = dict.fromkeys(spec, True) if pattern_list else dict(spec)
    return _by_patterns(flat, patterns, what, default, required)


class PartitionState(NamedTuple):
    """State of :func:`partition`.

    Attributes:
        inner_states: the state of each group's transformation, by group name. Each
            holds only its own group's leaves (in a flat dict keyed by path).
    """

    inner_states: dict[str, OptState]


def _gather(flat: list[tuple[str, Any]], labels: list[Any], group: str) -> dict[str, Any]:
    return {
        p: leaf
        for (p, leaf), lab in zip(flat, labels, strict=True)
        if leaf is not None and lab == group
    }


def partition(
    transforms: Mapping[str, Any],
    labels: Any,
) -> GradientTransformation:
    """Applies a different transformation to each group of leaves (param groups).

    Every leaf gets a group label, from one of:

    - a **label tree** with the params' structure (or a prefix of it, so that
      ``{"encoder": "slow", "head": "fast"}`` labels whole subtrees);
    - a **function** ``(path, leaf) -> label`` where ``path`` is the leaf's key
      path joined by ``'/'`` (``"encoder/layers/0/kernel"``);
    - a **dict of path patterns** ``{pattern: label}``. A pattern is a glob over
      the ``'/'``-joined path: ``*`` matches within one segment, ``**`` any number
      of segments (zero included), and a pattern that matches an ancestor matches
      every leaf below it (so ``"encoder"`` is ``"encoder/**"``). A final
      ``value`` attribute (Flax NNX's ``Variable``) is not part of the path.
      **Precedence:** when several
      patterns match, the one with the most literal segments (segments without
      ``*``, ``?``, ``[``) wins; a tie between different labels is a ``ValueError``
      naming the path, as is a leaf no pattern matches. A dict, tuple or list is
      read as a label tree whenever its key paths fit the params (so a tuple of
      label strings, or an Equinox module of labels, is a tree, not patterns or a
      function); otherwise a dict is read as patterns when one of its keys
      contains ``/`` or a glob character.

    ``None`` leaves need no label and pass through. Each group's transformation
    sees only its own leaves, as a flat dict keyed by path (a mask or label tree
    inside it, written for the whole params, is matched by key path), and its state holds
    only those (no masked full trees). Group states are stored by name in
    :attr:`PartitionState.inner_states`, so :func:`~optimlab.hyperparams` reports
    ``"<group>/<name>"`` keys and ``set_hyperparams(state, group="slow", ...)``
    changes one group. A group with no leaves keeps an (empty) state. To add or
    re-label groups later without resetting the others, use :func:`extend_state`.

    Args:
        transforms: the transformation of each group, by label.
        labels: a label tree, a function ``(path, leaf) -> label``, or a dict of
            path patterns.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`PartitionState`.

    Raises:
        ValueError: at ``init``, a leaf without a label, a label tree entry that
            matches no leaf, an ambiguous pattern match, or a label that is not a
            key of ``transforms``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> params = {"encoder": {"w": jnp.ones(2)},
        ...           "head": {"w": jnp.ones(2), "bias": jnp.ones(1)}}
        >>> tx = optimlab.partition(
        ...     {"slow": optimlab.sgd(0.01), "fast": optimlab.sgd(0.1),
        ...      "frozen": optimlab.set_to_zero()},
        ...     {"**": "fast", "encoder": "slow", "**/bias": "frozen"})
        >>> state = tx.init(params)
        >>> sorted(optimlab.hyperparams(state))
        ['fast/learning_rate', 'slow/learning_rate']
        >>> updates, state = tx.update(params, state, params)
        >>> [round(float(u[0]), 3) for u in (updates["encoder"]["w"], updates["head"]["w"],
        ...                                  updates["head"]["bias"])]
        [-0.01, -0.1, 0.0]
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError("partition: transforms must be a non-empty dict {label: transformation}.")
    for name, t in transforms.items():
        if not isinstance(name, str):
            raise TypeError(f"partition: group names must be strings, got {name!r}.")
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(
                f"partition: the transformation of group {name!r} is {type(t).__name__}, not a "
                "gradient transformation."
            )
    groups = dict(transforms)
    updaters = {g: _update_with_extra_args(t) for g, t in groups.items()}

    def labels_of(tree):
        labs = resolve(tree, labels, "partition")
        flat, _ = leaves_with_paths(tree)
        unique_paths(flat, "partition")
        for (path, leaf), lab in zip(flat, labs, strict=True):
            if leaf is not None and lab not in groups:
                raise ValueError(
                    f"partition: the leaf at {path!r} has label {lab!r}, which is not a group; "
                    f"the groups are {sorted(groups)}."
                )
        return flat, labs

    def init_fn(params):
        flat, labs = labels_of(params)
        with subset_scope(flat):
            return PartitionState({g: t.init(_gather(flat, labs, g)) for g, t in groups.items()})

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, PartitionState) or set(state.inner_states) != set(groups):
            raise ValueError(
                "partition: expected a PartitionState with groups "
                f"{sorted(groups)}; pass the state returned by this partition's init (or "
                "convert an older one with extend_state)."
            )
        u_flat, treedef = leaves_with_paths(updates)
        label_source = updates if params is None else params
        _, labs = labels_of(label_source)
        p_flat = None if params is None else leaves_with_paths(params)[0]
        if p_flat is not None and len(p_flat) != len(u_flat):
            _tree.check_match("partition", updates, params, what="params")
        out = [leaf for _, leaf in u_flat]
        index = {p: i for i, (p, _) in enumerate(u_flat)}
        new_states = {}
        for g in groups:
            g_updates = _gather(u_flat, labs, g)
            g_params = None if p_flat is None else _gather(p_flat, labs, g)
            with subset_scope(u_flat):
                g_updates, new_states[g] = updaters[g](
                    g_updates, state.inner_states[g], g_params, **extra_args
                )
            for path, leaf in g_updates.items():
                out[index[path]] = leaf
        return jax.tree_util.tree_unflatten(treedef, out), PartitionState(new_states)

    return GradientTransformation(init_fn, update_fn)


def partition_overrides(
    factory: Callable[..., GradientTransformation],
    overrides: Mapping[str, Mapping[str, Any]],
    labels: Any,
    /,
    **shared: Any,
) -> GradientTransformation:
    """Param groups that share one optimizer and differ in some hyperparameters.

    The torch idiom ``Adam([{"params": ..., "lr": 1e-4}, {"params": ...}], lr=1e-3)``:
    group ``g`` uses ``factory(**{**shared, **overrides[g]})``. Labels are given
    as for :func:`partition`; a group that only takes the shared values is listed
    with an empty dict.

    Args:
        factory: an optimizer alias such as :func:`~optimlab.adamw`.
        overrides: ``{group: {hyperparameter: value}}``, one entry per group.
        labels: a label tree, a function ``(path, leaf) -> label``, or path patterns.
        **shared: keyword arguments given to every group.

    Returns:
        A :func:`partition` transformation.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.partition_overrides(
        ...     optimlab.adamw,
        ...     {"slow": {"learning_rate": 1e-4}, "no_decay": {"weight_decay": None},
        ...      "default": {}},
        ...     {"**": "default", "encoder": "slow", "**/bias": "no_decay"}, learning_rate=1e-3)
        >>> params = {"encoder": {"w": jnp.ones(2)},
        ...           "head": {"w": jnp.ones(2), "bias": jnp.ones(1)}}
        >>> state = tx.init(params)
        >>> round(float(optimlab.hyperparams(state)["slow/learning_rate"]), 6)
        0.0001
        >>> "no_decay/weight_decay" in optimlab.hyperparams(state)
        False
    """
    if not isinstance(overrides, Mapping) or not overrides:
        raise TypeError(
            "partition_overrides: overrides must be a non-empty dict "
            "{group: {hyperparameter: value}}."
        )
    transforms = {}
    for g, kw in overrides.items():
        if not isinstance(kw, Mapping):
            raise TypeError(
                f"partition_overrides: the overrides of group {g!r} must be a dict, "
                f"got {type(kw).__name__}."
            )
        transforms[g] = factory(**{**shared, **kw})
    return partition(transforms, labels)


def extend_state(tx: GradientTransformation, state: OptState, params: Params) -> OptState:
    """Initialises ``tx`` on ``params`` and carries over what ``state`` already holds.

    For fine-tuning that unfreezes layers or adds param groups: build the new
    transformation (with the new group and labels), then convert the old state.
    Every state entry whose key path exists in both states, with the same shape
    and dtype, keeps its old value (moments, step counters, hyperparameters), so
    existing groups are not reset; new groups, and new leaves within a group,
    start from ``tx.init``. Entries of removed groups are dropped.

    Leaves moved into an existing group join that group's step counter; put newly
    trained leaves in a group of their own for a fresh bias correction.

    Args:
        tx: the new transformation.
        state: a state of the old transformation.
        params: the params ``tx`` will be applied to.

    Returns:
        A state for ``tx``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> params = {"enc": jnp.ones(2), "head": jnp.ones(2)}
        >>> old = optimlab.partition(
        ...     {"train": optimlab.adam(0.1), "frozen": optimlab.set_to_zero()},
        ...     {"enc": "frozen", "head": "train"})
        >>> state = old.init(params)
        >>> _, state = old.update(params, state, params)
        >>> new = optimlab.partition({"train": optimlab.adam(0.1), "enc": optimlab.adam(0.01)},
        ...                          {"enc": "enc", "head": "train"})
        >>> state = optimlab.extend_state(new, state, params)
        >>> int(state.inner_states["train"].count), int(state.inner_states["enc"].count)
        (1, 0)
    """
    old = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        old[path] = leaf
    fresh = tx.init(params)
    flat, treedef = jax.tree_util.tree_flatten_with_path(fresh)
    out = []
    for path, leaf in flat:
        prev = old.get(path)
        same = (
            prev is not None
            and getattr(prev, "shape", None) == getattr(leaf, "shape", None)
            and getattr(prev, "dtype", None) == getattr(leaf, "dtype", None)
        )
        out.append(prev if same else leaf)
    return jax.tree_util.tree_unflatten(treedef, out)
