"""Parameters of the compatibility layer: named parameters, groups and their layout (private).

A parameter is one array leaf. Every parameter has a global index: its position in
the concatenation of all groups, in order (torch's ``state_dict`` ids). Groups are
built from a pytree, or from ``(name, array)`` pairs; :class:`Layout` turns the flat
list of current leaves back into the structure the user gave.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core._paths import path_keys

__all__ = ["ParamName", "named_parameters", "GroupLayout", "Layout", "split_params", "path_name"]


class _Source:
    """The tree a set of named parameters came from (its structure and original leaves)."""

    __slots__ = ("treedef", "leaves")

    def __init__(self, treedef: Any, leaves: list[Any]):
        self.treedef = treedef
        self.leaves = leaves


class ParamName(str):
    """A parameter name that remembers its position in the tree it came from.

    It is a plain ``str`` for every purpose (printing, comparing, filtering); the
    optimizer reads :attr:`source` and :attr:`pos` to rebuild the whole tree when
    every group was built from named parameters of one tree.
    """

    __slots__ = ("_source", "_pos")
    _source: _Source | None
    _pos: int

    def __new__(cls, name: str, source: _Source | None = None, pos: int = -1) -> ParamName:
        self = super().__new__(cls, name)
        self._source = source
        self._pos = pos
        return self

    @property
    def source(self) -> _Source | None:
        """The tree the name was taken from (its structure and original leaves)."""
        return self._source

    @property
    def pos(self) -> int:
        """The position of the named leaf among that tree's leaves."""
        return self._pos


def path_name(path: tuple[Any, ...]) -> str:
    """A key path as a dotted name, like torch's ``model.named_parameters()`` (``layers.0.w``)."""
    return ".".join(path_keys(path))


def named_parameters(tree: Any) -> Iterator[tuple[str, Any]]:
    """Yields ``(name, leaf)`` for every leaf of a pytree, like ``model.named_parameters()``.

    Names are the dotted key paths (``"encoder.layers.0.w"``). Filter the pairs to
    build parameter groups; when every group of an optimizer comes from named
    parameters of one tree (same structure), :attr:`Optimizer.params` returns that
    whole tree, with leaves in no group left as they were (frozen).

    Args:
        tree: a pytree of arrays.

    Yields:
        ``(name, leaf)`` pairs, in ``jax.tree.leaves`` order.

    Examples:
        >>> from optimlab import optim
        >>> [n for n, _ in optim.named_parameters({"w": jnp.ones(2), "b": [jnp.ones(1)]})]
        ['b.0', 'w']
    """
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    source = _Source(treedef, [leaf for _, leaf in pairs])
    for pos, (path, leaf) in enumerate(pairs):
        yield ParamName(path_name(path), source, pos), leaf


def same_source(a: _Source, b: _Source) -> bool:
    """Whether two sets of named parameters come from one tree: its structure and leaves."""
    return a is b or (
        a.treedef == b.treedef
        and len(a.leaves) == len(b.leaves)
        and all(x is y for x, y in zip(a.leaves, b.leaves, strict=True))
    )


def _is_named(params: Any) -> bool:
    return (
        isinstance(params, (list, tuple))
        and len(params) > 0
        and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params)
    )


def _check_leaf(leaf: Any) -> jax.Array:
    if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, float)):
        raise TypeError(
            f"optimizer can only optimize arrays, but one of the params is {type(leaf).__name__}"
        )
    arr = jnp.asarray(leaf)
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        raise TypeError(
            f"optimizer can only optimize floating-point arrays, but one of the "
            f"params has dtype {arr.dtype}"
        )
    return arr


@dataclass
class GroupLayout:
    """How one group's parameters were given.

    Attributes:
        indices: global indices of the group's parameters.
        treedef: the group's tree structure, or ``None`` for named parameters.
        names: the parameter names (given, or dotted key paths of the tree).
        named: whether the group was given as ``(name, array)`` pairs.
        handles: ``id()`` of the given arrays, to refuse an array in two groups.
        refs: the given arrays, held weakly where possible (see :meth:`live_handles`).
        source: the tree the names came from, when they all share one.
        positions: the parameters' positions in that source tree.
    """

    indices: list[int]
    treedef: Any
    names: list[str]
    named: bool
    handles: list[Any] = field(default_factory=list)
    source: _Source | None = None
    positions: list[int] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)

    def live_handles(self) -> set[int]:
        """The handles of given arrays still alive (a freed array's id may be reused)."""
        return {h for h, r in zip(self.handles, self.refs, strict=True) if r() is not None}


def _identities(objs: Sequence[Any]) -> tuple[list[int], list[Any]]:
    """``id()`` of each given array, and a reference to it: weak where the type allows."""
    refs = []
    for obj in objs:
        try:
            refs.append(weakref.ref(obj))
        except TypeError:  # Python floats, NumPy scalars: small, held strongly
            refs.append(lambda obj=obj: obj)
    return [id(o) for o in objs], refs


def split_params(params: Any, start: int) -> tuple[GroupLayout, list[jax.Array]]:
    """Reads a group's ``params`` entry: a pytree, or a sequence of ``(name, array)`` pairs.

    Raises torch's errors for a set and for pairs mixed with bare arrays, and a
    ``TypeError`` for leaves that are not floating-point arrays.
    """
    if isinstance(params, (set, frozenset)):
        raise TypeError(
            "optimizer parameters need to be organized in ordered collections, but "
            "the ordering of tensors in sets will change between runs. Please use a list instead."
        )
    if isinstance(params, Iterator):
        params = list(params)
    if isinstance(params, list) and any(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params
    ):
        if not _is_named(params):
            raise ValueError(
                "all optimizer params should be with/without names. Some param names are missing"
            )
    if _is_named(params):
        names = [n for n, _ in params]
        leaves = [_check_leaf(p) for _, p in params]
        sources = [n.source for n in names if isinstance(n, ParamName) and n.source is not None]
        sourced = len(sources) == len(names) > 0 and all(
            same_source(sources[0], other) for other in sources
        )
        source = sources[0] if sourced else None
        positions = [n.pos for n in names] if sourced else []
        handles, refs = _identities([p for _, p in params])
        _check_unique_names(names, handles)
        keys = [("pos", p) for p in positions] if sourced else [("name", str(n)) for n in names]
        duplicated = len(set(keys)) != len(keys)
        treedef, paths, named = None, [str(n) for n in names], True
    else:
        pairs, treedef = jax.tree_util.tree_flatten_with_path(params)
        leaves = [_check_leaf(leaf) for _, leaf in pairs]
        handles, refs = _identities([leaf for _, leaf in pairs])
        duplicated = len(set(handles)) != len(handles) and all(
            not isinstance(x, float) for _, x in pairs
        )
        paths, named, source, positions = [path_name(p) for p, _ in pairs], False, None, []
    if duplicated:
        warnings.warn(
            "optimizer contains a parameter group with duplicate parameters; "
            "in future, this will cause an error; "
            "see github.com/pytorch/pytorch/issues/40967 for more information",
            stacklevel=4,
        )
    indices = list(range(start, start + len(leaves)))
    layout = GroupLayout(indices, treedef, paths, named, handles, source, positions, refs)
    return layout, leaves


def _check_unique_names(names: Sequence[str], handles: Sequence[int]) -> None:
    """Refuses one name given to two different arrays (one would hide the other).

    The same array under the same name twice is torch's duplicate parameter (a warning).
    """
    first: dict[str, int] = {}
    for name, handle in zip(names, handles, strict=True):
        if first.setdefault(str(name), handle) != handle:
            raise ValueError(
                f"two different parameters are named {str(name)!r}: parameter names must be "
                "unique (one would hide the other in opt.params and the state dict)"
            )


class Layout:
    """The structure :attr:`Optimizer.params` returns, rebuilt from the flat leaves.

    ``"source"``: every group holds named parameters of one tree: that whole tree.
    ``"tree"``: else, when one pytree (or one list of pairs, giving a ``{name: array}``
    dict) was given, not a list of groups, and no group was added.
    ``"names"``: else, when every group holds ``(name, array)`` pairs: the tree the
    dotted names spell (``"enc.w"`` is ``params["enc"]["w"]``; a level whose names are
    ``0`` to ``n - 1`` is a list), the same tree whether the pairs came from
    :func:`named_parameters` of one dict-and-list tree or were written by hand.
    ``"groups"``: otherwise, a list with one tree per group (a named group's tree is a
    ``{name: array}`` dict, when the names spell no tree, as ``"a"`` with ``"a.b"``).
    """

    skeleton: Any = None

    def __init__(self, groups: Sequence[GroupLayout], single_tree: bool):
        self.groups = list(groups)
        if (
            self.groups
            and all(g.named and g.source is not None for g in self.groups)
            and all(
                same_source(self.groups[0].source, g.source)  # type: ignore[arg-type]
                for g in self.groups
                if g.source is not None
            )
        ):
            self.mode = "source"
            self.source = self.groups[0].source
        elif self.groups and all(g.named for g in self.groups):
            # The names alone decide the structure, whether or not they came from
            # named_parameters: dotted names nest, and numbered levels are indexed by int.
            self.skeleton = _skeleton(
                [(n, i) for g in self.groups for n, i in zip(g.names, g.indices, strict=True)]
            )
            self.mode = "groups" if self.skeleton is None else "names"
        elif single_tree and len(self.groups) == 1:
            self.mode = "tree"
        else:
            self.mode = "groups"

    def frozen(self) -> list[Any]:
        """Leaves of the source tree that no group optimizes (in source mode), else ``[]``."""
        if self.mode != "source":
            return []
        assert self.source is not None  # set with mode "source"
        used = {p for g in self.groups for p in g.positions}
        return [leaf for i, leaf in enumerate(self.source.leaves) if i not in used]

    def assemble(self, leaves: Sequence[Any], frozen: Sequence[Any]) -> Any:
        """The user's structure from the global leaves (and the frozen ones in source mode)."""
        if self.mode == "source":
            assert self.source is not None  # set with mode "source"
            flat: list[Any] = [None] * len(self.source.leaves)
            for g in self.groups:
                for i, pos in zip(g.indices, g.positions, strict=True):
                    flat[pos] = leaves[i]
            it = iter(frozen)
            flat = [next(it) if x is None else x for x in flat]
            return jax.tree_util.tree_unflatten(self.source.treedef, flat)
        if self.mode == "names":
            return _fill(self.skeleton, leaves)
        out = [_assemble_group(g, leaves) for g in self.groups]
        return out[0] if self.mode == "tree" else out

    def flatten(self, tree: Any, n: int) -> list[Any]:
        """Global list of ``n`` leaves from a tree shaped like :meth:`assemble`'s output.

        ``None`` leaves are kept.
        """
        out: list[Any] = [None] * n
        try:
            if self.mode == "source":
                assert self.source is not None  # set with mode "source"
                flat = self.source.treedef.flatten_up_to(tree)
                for g in self.groups:
                    for i, pos in zip(g.indices, g.positions, strict=True):
                        out[i] = flat[pos]
            elif self.mode == "names":
                _unfill(self.skeleton, tree, out)
            else:
                if self.mode == "tree":
                    tree = [tree]
                elif not isinstance(tree, (list, tuple)) or len(tree) != len(self.groups):
                    raise ValueError(f"expected a list of {len(self.groups)} trees, one per group")
                for g, sub in zip(self.groups, tree, strict=True):
                    if g.named:
                        if not isinstance(sub, dict):
                            raise ValueError(
                                "a named group's gradients must be a {name: array} dict"
                            )
                        for name, i in zip(g.names, g.indices, strict=True):
                            out[i] = sub.get(name)
                    else:
                        for i, x in zip(g.indices, g.treedef.flatten_up_to(sub), strict=True):
                            out[i] = x
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(
                "the gradients' structure differs from the structure of `opt.params` "
                f"({self.mode} layout): {e}"
            ) from None
        return out


def _assemble_group(g: GroupLayout, leaves: Sequence[Any]) -> Any:
    if g.named:
        return {n: leaves[i] for n, i in zip(g.names, g.indices, strict=True)}
    return jax.tree_util.tree_unflatten(g.treedef, [leaves[i] for i in g.indices])


def _skeleton(named: Sequence[tuple[str, int]]) -> Any:
    """The nested dicts (and lists) the dotted names spell, with leaf indices, or ``None``."""
    root: dict[str, Any] = {}
    for name, index in named:
        parts = name.split(".")
        if not all(parts):
            return None
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return None  # "a" and "a.b": a leaf cannot hold children
        if parts[-1] in node:
            return None  # "a.b" and "a": a node cannot be a leaf
        node[parts[-1]] = index
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    children = {k: _lists(v) for k, v in node.items()}
    keys = list(children)
    if keys and all(k.isdigit() for k in keys):
        # torch's numbered children (``model[0]``, ``model[2]``): indexed by integers,
        # a list when they count from 0 without a gap, else a dict with int keys.
        if sorted(int(k) for k in keys) == list(range(len(keys))):
            return [children[str(i)] for i in range(len(keys))]
        return {int(k): v for k, v in children.items()}
    return children


def _fill(skeleton: Any, leaves: Sequence[Any]) -> Any:
    if isinstance(skeleton, dict):
        return {k: _fill(v, leaves) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_fill(v, leaves) for v in skeleton]
    return leaves[skeleton]


def _unfill(skeleton: Any, tree: Any, out: list[Any]) -> None:
    """Writes the leaves of ``tree`` (shaped like ``skeleton``) at their indices in ``out``.

    A missing entry or ``None`` is no gradient, as a named group's missing name.
    """
    if tree is None:
        return
    if isinstance(skeleton, dict):
        if not isinstance(tree, Mapping):
            raise ValueError(f"expected a dict with keys {sorted(skeleton)}, got {type(tree)}")
        for k, v in skeleton.items():
            _unfill(v, tree.get(k), out)
    elif isinstance(skeleton, list):
        if not isinstance(tree, (list, tuple)) or len(tree) != len(skeleton):
            raise ValueError(f"expected a list of {len(skeleton)} entries, got {type(tree)}")
        for v, sub in zip(skeleton, tree, strict=True):
            _unfill(v, sub, out)
    else:
        out[skeleton] = tree
