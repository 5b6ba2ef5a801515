"""Key paths and the label specs built on them: trees, functions of the path, patterns.

Shared by every wrapper that selects leaves (``partition``, ``masked``, ``freeze``)
and by the methods that take a leaf selection (``galore``): a label spec may be a
tree shaped like the params, a function ``(path, leaf) -> label`` or a mapping of
path patterns (``"encoder/**"``, ``"**/bias"``) to labels.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from . import _tree

_GLOB = frozenset("*?[")


def path_keys(path: tuple[Any, ...], skip: frozenset[str] = frozenset()) -> list[str]:
    """The segments of a key path: dict keys, sequence indices and attribute names.

    Attribute names in ``skip`` (a wrapper's own fields) are left out.
    """
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            if k.name not in skip:
                parts.append(k.name)
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return parts


def path_str(path: tuple[Any, ...]) -> str:
    """A key path as the ``'/'``-joined string patterns are matched against.

    A final ``.value`` attribute (Flax NNX's ``Variable`` wrapper) is dropped, so a
    ``Variable`` and the raw array in its place (as in NNX gradients) share a path.
    """
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return "/".join(path_keys(path))


#: A wrapper state's own fields, left out of the names :func:`find_nodes` gives.
WRAPPER_FIELDS = frozenset({"inner_state", "inner_states"})


def find_nodes(tree: Any, cls: type | tuple[type, ...]) -> list[tuple[str, Any]]:
    """Each node of class ``cls`` in ``tree``, with its place as a ``'/'``-joined name.

    ``cls`` may be a tuple of classes, as for ``isinstance``. The name leaves out
    wrapper fields (``inner_state``), so the state of the optimizer given to
    ``partition`` under ``"head"`` is named ``"head"``; the root's name is ``""``.
    """
    is_node = lambda x: isinstance(x, cls)
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_node)[0]
    return [("/".join(path_keys(p, WRAPPER_FIELDS)), x) for p, x in flat if isinstance(x, cls)]


def replace_nodes(tree: Any, cls: type, new: Mapping[str, Any]) -> Any:
    """``tree`` with each node of class ``cls`` named in ``new`` replaced by its value there.

    Names are as :func:`find_nodes` gives them.
    """
    is_node = lambda x: isinstance(x, cls)
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_node)
    out = []
    for path, x in flat:
        name = "/".join(path_keys(path, WRAPPER_FIELDS)) if isinstance(x, cls) else None
        out.append(new.get(name, x) if name is not None else x)
    return jax.tree_util.tree_unflatten(treedef, out)


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
            "It takes the leaf's '/'-joined path and the leaf, or (optax's form, tried "
            "first) the params, returning a label tree."
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
