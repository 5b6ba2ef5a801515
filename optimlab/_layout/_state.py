"""The state of :func:`~optimlab.bucketed` and the checks of its conversions (private)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._update import check_structure

__all__ = [
    "BucketedState",
    "Buckets",
    "Layout",
    "ParamsLayout",
    "check_params",
    "check_per_leaf",
    "check_state_arrays",
    "is_buckets",
    "params_layout",
]


class Buckets(NamedTuple):
    """The tree a bucketed transformation's inner transformation sees.

    Attributes:
        leaves: the large leaves, unchanged (their sharding is kept).
        buckets: one flat array per dtype holding every small leaf.
    """

    leaves: tuple[Any, ...]
    buckets: tuple[Any, ...]


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class ParamsLayout:
    """The params a bucketed state was built for: structure, shapes and dtypes.

    A static pytree node (no leaves): it adds nothing to a checkpoint's arrays and
    is compared, not traced, by ``jax.jit``.
    """

    treedef: Any
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"ParamsLayout({len(self.shapes)} leaves)"


class BucketedState(NamedTuple):
    """State of :func:`bucketed`.

    Attributes:
        offsets: int32 scalars, the start in its bucket of each chunk of small
            leaves of one shape (see :func:`bucketed`). They are runtime values on
            purpose: XLA then compiles one slicing kernel per leaf shape and
            position in a chunk instead of one per leaf.
        inner_state: the wrapped transformation's state over :class:`Buckets`.
        params_layout: the structure, shapes and dtypes of the params the state was
            built for (no arrays), checked by :func:`unbucket_state`; ``None`` in a
            state built by hand.
    """

    offsets: tuple[jax.Array, ...]
    inner_state: Any
    params_layout: ParamsLayout | None = None


class Layout(NamedTuple):
    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    where: tuple[tuple[int, int], ...]  # per leaf: (-1, index of large leaf) or (bucket, slot)
    chunk: tuple[int, ...]  # per small leaf (slot order): index of its chunk
    within: tuple[int, ...]  # per small leaf: start relative to its chunk
    chunk_starts: tuple[int, ...]  # per chunk: start in its bucket (the runtime offsets)
    bucket_dtypes: tuple[Any, ...]
    bucket_sizes: tuple[int, ...]
    bucket_slots: tuple[tuple[int, ...], ...]  # leaf indices of each bucket, in order


def is_buckets(x: Any) -> bool:
    return isinstance(x, Buckets)


def params_layout(params: Any) -> ParamsLayout:
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    return ParamsLayout(
        treedef,
        tuple(_tree.keystr(kp) for kp, _ in flat),
        tuple(tuple(jnp.shape(x)) for _, x in flat),
        tuple(jnp.result_type(x) for _, x in flat),
    )


def check_params(what: str, params: Any, built: ParamsLayout, against: str) -> None:
    """Raises ``ValueError`` naming the first key path where ``params`` differ from ``built``."""
    given = params_layout(params)
    if given.treedef != built.treedef:
        reference = built.treedef.unflatten(
            [jax.ShapeDtypeStruct(s, d) for s, d in zip(built.shapes, built.dtypes, strict=True)]
        )
        check_structure(
            what, params, reference, against, "Pass the params given to init.", subject="params'"
        )
        raise ValueError(f"{what}: the params' tree structure differs from the {against}.")
    for path, s, d, bs, bd in zip(
        given.paths, given.shapes, given.dtypes, built.shapes, built.dtypes, strict=True
    ):
        if s != bs or d != bd:
            raise ValueError(
                f"{what}: the param at {path} has shape {s} and dtype {d} but the {against} "
                f"has shape {bs} and dtype {bd} there. Pass the params given to init."
            )


def _concrete(x: Any) -> int | None:
    try:
        return int(x)
    except jax.errors.ConcretizationTypeError:  # traced: its value is not known here
        return None


def check_state_arrays(
    what: str, layout: Layout, params: Any, template: Any, state: BucketedState
) -> None:
    """Compares a bucketed state's offsets and packed arrays with those ``params`` give."""
    paths = [_tree.keystr(kp) for kp, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    fix = "Pass the params given to init."
    starts = [_concrete(o) for o in state.offsets]
    if len(starts) != len(layout.chunk_starts) or any(
        a is not None and a != b for a, b in zip(starts, layout.chunk_starts, strict=True)
    ):
        raise ValueError(
            f"{what}: the params' small leaves pack into chunks starting at "
            f"{list(layout.chunk_starts)} but the state's offsets are {starts}. {fix}"
        )
    large = [i for i, (b, _) in enumerate(layout.where) if b == -1]
    t_nodes = jax.tree.leaves(template, is_leaf=is_buckets)
    s_nodes = jax.tree.leaves(state.inner_state, is_leaf=is_buckets)
    for t, x in zip(t_nodes, s_nodes, strict=False):
        if not isinstance(t, Buckets):
            continue
        if not isinstance(x, Buckets) or len(x.leaves) != len(t.leaves):
            got = len(x.leaves) if isinstance(x, Buckets) else type(x).__name__
            raise ValueError(
                f"{what}: the params have {len(t.leaves)} leaves kept per-leaf but the state "
                f"holds {got}. {fix}"
            )
        for i, a, b in zip(large, x.leaves, t.leaves, strict=True):
            if jnp.shape(a) != b.shape or jnp.result_type(a) != b.dtype:
                raise ValueError(
                    f"{what}: the param at {paths[i]} needs shape {b.shape} and dtype "
                    f"{b.dtype} but the state holds shape {jnp.shape(a)} and dtype "
                    f"{jnp.result_type(a)} for it. {fix}"
                )
        for k, (a, b) in enumerate(zip(x.buckets, t.buckets, strict=False)):
            if jnp.shape(a) != b.shape or jnp.result_type(a) != b.dtype:
                names = ", ".join(paths[i] for i in layout.bucket_slots[k])
                raise ValueError(
                    f"{what}: the params' small leaves ({names}) pack into shape {b.shape} "
                    f"and dtype {b.dtype} but the state's bucket has shape {jnp.shape(a)} "
                    f"and dtype {jnp.result_type(a)}. {fix}"
                )
        if len(x.buckets) != len(t.buckets):
            raise ValueError(
                f"{what}: the params pack into {len(t.buckets)} buckets but the state "
                f"holds {len(x.buckets)}. {fix}"
            )


def check_per_leaf(where: str, layout: Layout, params: Any, t: Buckets, sub: Any) -> None:
    """Raises ``ValueError`` where a per-leaf state tree does not fit the params."""
    check_structure(
        "bucket_state",
        sub,
        params,
        "params",
        f"The state's tree at {where} must have the params' structure.",
        subject="state's",
    )
    paths = [_tree.keystr(kp) for kp, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    for i, (x, (b, j)) in enumerate(
        zip(layout.treedef.flatten_up_to(sub), layout.where, strict=True)
    ):
        want = (
            t.leaves[j] if b == -1 else jax.ShapeDtypeStruct(layout.shapes[i], t.buckets[b].dtype)
        )
        if tuple(jnp.shape(x)) != tuple(want.shape) or jnp.result_type(x) != want.dtype:
            raise ValueError(
                f"bucket_state: the state's leaf at {where}{paths[i]} has shape "
                f"{tuple(jnp.shape(x))} and dtype {jnp.result_type(x)} but the param at "
                f"{paths[i]} needs shape {tuple(want.shape)} and dtype {want.dtype}."
            )
