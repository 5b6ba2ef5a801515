"""Multi-tensor path: small leaves packed into flat buckets, large leaves left alone.

XLA:CPU pays a fixed cost per leaf and per step (a few kernels of a few
microseconds each) and compiles every distinct kernel separately, so an
optimizer over thousands of small leaves is slow to run and very slow to
compile. :func:`bucketed` wraps an elementwise transformation so that it sees
one flat array per dtype for all the small leaves: its arithmetic becomes a
handful of large fused operations whatever the number of leaves.

Two measured details keep the packing cheap to compile (see
``benchmarks/RESULTS.md``). Leaves are concatenated in groups, each group behind
an optimization barrier: one concatenate of thousands of operands compiles for
seconds on XLA:CPU (and, fused into its consumers, selects between its operands
for every element). And leaves are sliced out of
their bucket at *runtime* offsets kept in the state: with offsets known at
compile time each leaf's slice is a distinct kernel (compiled separately, about
as slow to compile as the per-leaf optimizer, and also slower to run at 2,000
leaves), while with runtime offsets leaves of one shape share one kernel. As each
runtime offset is also passed in and out of every jitted call, leaves of one
shape are sliced in chunks of about the square root of their number: one offset
per chunk, one kernel per position in a chunk.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _fusion, _grads, _rules, _tree
from .._core._base import GradientTransformation
from .._core._elementwise import bucket_unsafe_part
from .._core._update import apply_updates
from .._core._validate import checked_arguments
from ._state import (
    BucketedState,
    Buckets,
    Layout,
    check_params,
    check_per_leaf,
    check_state_arrays,
    is_buckets,
    params_layout,
)

__all__ = [
    "BucketedState",
    "Buckets",
    "bucketed",
    "unbucket_state",
    "bucket_state",
    "update_and_apply",
]

#: Default size (in elements) from which a leaf stays per-leaf.
DEFAULT_MIN_LEAF_SIZE = 16384


def _chunk_length(count: int) -> int:
    """Leaves of one shape per chunk: about the square root of their number.

    A jitted step passes each runtime offset in and out (a few microseconds per
    scalar per call), and compiles one kernel per position in a chunk (a few
    milliseconds each, once): the square root balances both (2,000 leaves of one
    shape: 45 offsets, 45 kernels).
    """
    return min(64, math.isqrt(count - 1) + 1) if count > 1 else 1


def _layout(tree: Any, min_leaf_size: int) -> Layout:
    leaves, treedef = jax.tree.flatten(tree)
    shapes = tuple(tuple(jnp.shape(x)) for x in leaves)
    dtypes = [jnp.result_type(x) for x in leaves]
    small: dict[Any, dict[tuple[int, ...], list[int]]] = {}
    for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True)):
        if math.prod(s) < min_leaf_size:
            small.setdefault(d, {}).setdefault(s, []).append(i)
    # A bucket of one leaf saves nothing: such a leaf stays per-leaf.
    groups = [
        (d, by_shape) for d, by_shape in small.items() if sum(map(len, by_shape.values())) > 1
    ]
    where: list[tuple[int, int]] = [(-1, -1)] * len(leaves)
    chunk, within, chunk_starts, sizes, slots = [], [], [], [], []
    for b, (_, by_shape) in enumerate(groups):
        off = 0
        order: list[int] = []
        for shape, idx in by_shape.items():  # leaves of one shape are contiguous
            size, length = math.prod(shape), _chunk_length(len(idx))
            for k, i in enumerate(idx):
                if k % length == 0:
                    chunk_starts.append(off)
                where[i] = (b, len(chunk))
                chunk.append(len(chunk_starts) - 1)
                within.append(off - chunk_starts[-1])
                off += size
            order.extend(idx)
        sizes.append(off)
        slots.append(tuple(order))
    n_large = 0
    for i in range(len(leaves)):
        if where[i][0] == -1:
            where[i] = (-1, n_large)
            n_large += 1
    return Layout(
        treedef,
        shapes,
        tuple(where),
        tuple(chunk),
        tuple(within),
        tuple(chunk_starts),
        tuple(d for d, _ in groups),
        tuple(sizes),
        tuple(slots),
    )


#: Leaves concatenated at once when packing. A concatenate of thousands of operands
#: compiles slowly on XLA:CPU (about 1 s for 2,000, 3 s for 5,000); concatenating in
#: groups, each group behind an optimization barrier so that XLA does not merge the
#: levels back into one, compiles in a fraction of that (groups of one shape are one
#: kernel) for the same copy.
_CONCAT_GROUP = 64


def _concat(parts: list[Any]) -> Any:
    while len(parts) > _CONCAT_GROUP:
        groups = [parts[i : i + _CONCAT_GROUP] for i in range(0, len(parts), _CONCAT_GROUP)]
        merged = [jax.lax.concatenate(g, 0) for g in groups if len(g) > 1]
        merged = list(jax.lax.optimization_barrier(merged))
        it = iter(merged)
        parts = [next(it) if len(g) > 1 else g[0] for g in groups]
    return jax.lax.optimization_barrier(jax.lax.concatenate(parts, 0))


def _flat(x: Any, dtype: Any) -> Any:
    x = jnp.asarray(x)
    if x.dtype != dtype:
        x = x.astype(dtype)
    return x if x.ndim == 1 else jax.lax.reshape(x, (x.size,))


def _pack(layout: Layout, tree: Any) -> Buckets:
    """Packs a tree into :class:`Buckets` (one flat array per bucket).

    Always in groups (:func:`_concat`), also outside a jitted step (init, and
    :func:`bucket_state`): run eagerly, one concatenate of 2,000 leaves compiles for
    0.8 s, groups of one shape for 0.1 s.
    """
    leaves = layout.treedef.flatten_up_to(tree)
    large = tuple(x for x, (b, _) in zip(leaves, layout.where, strict=True) if b == -1)
    buckets = []
    for idx, dtype in zip(layout.bucket_slots, layout.bucket_dtypes, strict=True):
        parts = [_flat(leaves[i], dtype) for i in idx]
        buckets.append(_concat(parts))
    return Buckets(large, tuple(buckets))


def _fence(buckets: tuple[Any, ...], offsets: tuple[Any, ...]) -> tuple[Any, ...]:
    """The buckets, materialised before they are sliced.

    XLA fuses cheap elementwise producers into every consumer, so each of the
    thousands of per-leaf slicing kernels would otherwise recompute the tail of
    the update rule (multiply by the learning rate, add the weight decay...):
    bigger kernels, several seconds more to compile at 5,000 leaves, no faster to
    run. The fence's predicate always holds (offsets are starts in a bucket),
    which XLA cannot prove.
    """
    return _fusion.fence(tuple(buckets), offsets[0] >= 0)


def _unpack(layout: Layout, packed: Buckets, offsets: tuple[Any, ...] | None) -> Any:
    if offsets is not None and packed.buckets:
        packed = packed._replace(buckets=_fence(packed.buckets, offsets))
    out = []
    for i, (b, j) in enumerate(layout.where):
        if b == -1:
            out.append(packed.leaves[j])
            continue
        size = math.prod(layout.shapes[i])
        if offsets is None:
            start = layout.chunk_starts[layout.chunk[j]] + layout.within[j]
            flat = packed.buckets[b][start : start + size]
        else:
            start = offsets[layout.chunk[j]]
            if layout.within[j]:
                start = jax.lax.add(start, np.int32(layout.within[j]))
            flat = jax.lax.dynamic_slice(
                packed.buckets[b], (start,), (size,), allow_negative_indices=False
            )
        shape = layout.shapes[i]
        out.append(flat if len(shape) == 1 else jax.lax.reshape(flat, shape))
    return layout.treedef.unflatten(out)


class _Spec(NamedTuple):
    inner: GradientTransformation
    min_leaf_size: int


_SPECS: weakref.WeakKeyDictionary[Callable[..., Any], _Spec] = weakref.WeakKeyDictionary()


def _check_safe(tx: GradientTransformation) -> None:
    why = bucket_unsafe_part(tx)
    if why is not None:
        raise ValueError(
            f"bucketed: {why}: bucketing packs small leaves into flat arrays, which is only "
            "exact for transformations that act elementwise (or through a global norm), while "
            "per-leaf statistics (trust ratios, factored or per-leaf norms) would be computed "
            "over a whole bucket. Elementwise optimizers (sgd, the adam family, lion, rmsprop, "
            "adagrad, ...) and the clippings in front of them are bucket-safe, through chain "
            "and the aliases."
        )


@checked_arguments
def bucketed(
    tx: GradientTransformation, *, min_leaf_size: int = DEFAULT_MIN_LEAF_SIZE
) -> GradientTransformation:
    """Runs an elementwise transformation on flat buckets of the small leaves (multi-tensor).

    Leaves with fewer than ``min_leaf_size`` elements are packed, per dtype, into
    one flat array (a bucket); larger leaves are passed through unchanged (same
    sharding, no copy). ``tx`` then runs on the buckets, so its arithmetic is a
    handful of large fused operations whatever the number of leaves, its state
    stays bucketed across steps, and the updates are sliced back into the
    params' structure. A dtype with a single small leaf is not bucketed.

    The results are those of ``tx`` itself, to an ulp: the same arithmetic per
    element, which XLA may fuse (and contract into FMAs) differently in a
    bucket's kernel than in a leaf's; ``clip_by_global_norm`` also accumulates
    its sum of squares in another order. Hyperparameters stay readable and settable with
    :func:`~optimlab.hyperparams` / :func:`~optimlab.set_hyperparams`, ``None``
    leaves pass through, and :func:`unbucket_state` / :func:`bucket_state`
    convert the state to and from ``tx``'s own per-leaf form (for checkpoints).

    ``tx`` must be bucket-safe: each transformation declares, when it is built,
    whether it acts elementwise (``sgd``, the adam family, ``lion``, ``rmsprop``,
    ``adagrad``, ...) or through a global norm (``clip_by_global_norm``), and
    ``chain`` and the aliases are safe when all their parts are. Anything else
    (per-leaf norms, factored moments, foreign transformations) raises
    ``ValueError`` here, at construction, naming the part that is not safe. Updates must have
    the params' dtypes.

    It pays with many small leaves (2,000 leaves of 1,000 floats: about half the
    step time of the per-leaf optimizer or optax, and more than ten times faster to
    compile) and changes nothing for large ones; see ``benchmarks/RESULTS.md``.

    Args:
        tx: the transformation to run on buckets.
        min_leaf_size: leaves with at least this many elements stay per-leaf.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`BucketedState`.

    Raises:
        ValueError: ``tx`` is not bucket-safe.

    Examples:
        >>> tx = optimlab.bucketed(optimlab.chain(
        ...     optimlab.clip_by_global_norm(1.0), optimlab.adamw(0.1)))
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2), "s": jnp.ones(())}
        >>> state = tx.init(params)
        >>> [x.shape for x in state.inner_state[1].inner_state[0].mu.buckets]
        [(7,)]
        >>> updates, state = tx.update(params, state, params)
        >>> optimlab.apply_updates(params, updates)["w"]
        Array([[0.89999, 0.89999],
               [0.89999, 0.89999]], dtype=float32)
        >>> round(float(optimlab.hyperparams(state)["learning_rate"]), 3)
        0.1
        >>> optimlab.bucketed(optimlab.lamb(0.1))
        Traceback (most recent call last):
        ...
        ValueError: bucketed: ... is not bucket-safe: ...
    """
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(f"bucketed: tx must be a GradientTransformation, got {type(tx).__name__}.")
    _check_safe(tx)
    _rules.check_args("bucketed", min_leaf_size=min_leaf_size)
    if int(min_leaf_size) < 1:
        raise ValueError(f"bucketed: min_leaf_size must be at least 1, got {min_leaf_size}.")
    min_size = int(min_leaf_size)

    def init_fn(params):
        _grads.reject_non_float("bucketed init", params)  # named by the params' key paths
        layout = _layout(params, min_size)
        offsets = tuple(jnp.asarray(o, jnp.int32) for o in layout.chunk_starts)
        return BucketedState(offsets, tx.init(_pack(layout, params)), params_layout(params))

    def update_fn(updates, state, params=None, **extra_args):
        return _update(tx, min_size, updates, state, params, extra_args, apply=False)

    out = GradientTransformation(init_fn, update_fn)
    _SPECS[out.init] = _Spec(tx, min_size)
    return out


def _update(
    tx: GradientTransformation,
    min_size: int,
    updates: Any,
    state: Any,
    params: Any,
    extra_args: dict[str, Any],
    *,
    apply: bool,
) -> tuple[Any, BucketedState]:
    # The update of bucketed(tx); with ``apply``, the new params instead of the updates.
    if not isinstance(state, BucketedState):
        raise ValueError(
            f"bucketed: expected a BucketedState, got {type(state).__name__}: pass the "
            "state returned by this optimizer's init (or convert a per-leaf state with "
            "optimlab.bucket_state)."
        )
    layout = _layout(updates, min_size)
    if len(layout.chunk_starts) != len(state.offsets):
        raise ValueError(
            f"bucketed: the updates pack into {len(layout.chunk_starts)} chunks of small "
            f"leaves but the state was built for {len(state.offsets)}. Pass updates with "
            "the structure, shapes "
            "and dtypes of the params given to init."
        )
    offsets = state.offsets
    packed_params = None if params is None else _pack(layout, params)
    packed, inner_state = tx.update(
        _pack(layout, updates), state.inner_state, packed_params, **extra_args
    )
    if apply:  # in the buckets: the sum is in the kernel that computes the updates
        packed = apply_updates(packed_params, packed)
    return _unpack(layout, packed, offsets), state._replace(inner_state=inner_state)


def update_and_apply(
    tx: GradientTransformation, updates: Any, state: BucketedState, params: Any
) -> tuple[Any, BucketedState]:
    """``tx.update`` then :func:`~optimlab.apply_updates`, the sum taken in the buckets.

    The new params are sliced from their buckets, so each is computed by the
    kernel that computes the updates, as it is when a per-leaf step adds them in
    one fused kernel: XLA then contracts the same multiply-adds into FMAs, and the
    bits are those of the per-leaf step. Adding sliced updates to the params in
    kernels of their own would round the update first (an ulp apart).

    Args:
        tx: the transformation returned by :func:`bucketed`.
        updates: the gradients, with the params' structure and dtypes.
        state: its state.
        params: the current params.

    Returns:
        ``(new_params, new_state)``.
    """
    spec = _spec(tx, "update_and_apply")
    if params is None:
        raise ValueError("update_and_apply: params is None; pass the current params.")
    return _update(spec.inner, spec.min_leaf_size, updates, state, params, {}, apply=True)


def _spec(tx: GradientTransformation, what: str) -> _Spec:
    spec = _SPECS.get(tx.init)
    if spec is None:
        raise ValueError(f"{what}: the transformation was not built by optimlab.bucketed.")
    return spec


@checked_arguments
def unbucket_state(tx: GradientTransformation, state: BucketedState, params: Any) -> Any:
    """Converts a bucketed state to the per-leaf state of the wrapped transformation.

    The result is exactly what the wrapped ``tx`` would hold without bucketing
    (same structure, shapes, dtypes and values), so checkpoints and
    ``optimlab.optim`` state dicts do not depend on bucketing.

    Args:
        tx: the transformation returned by :func:`bucketed`.
        state: its state.
        params: the params (or a tree of ``jax.ShapeDtypeStruct``) given to init.

    Returns:
        The wrapped transformation's per-leaf state.

    Examples:
        >>> inner = optimlab.adam(0.1)
        >>> tx = optimlab.bucketed(inner)
        >>> params = [jnp.ones(2), jnp.ones(3)]
        >>> per_leaf = optimlab.unbucket_state(tx, tx.init(params), params)
        >>> [x.shape for x in per_leaf.inner_state[0].mu]
        [(2,), (3,)]
    """
    spec = _spec(tx, "unbucket_state")
    if not isinstance(state, BucketedState):
        raise TypeError(
            f"unbucket_state: state must be a BucketedState, got {type(state).__name__}."
        )
    if state.params_layout is not None:
        check_params("unbucket_state", params, state.params_layout, "state")
    layout = _layout(params, spec.min_leaf_size)
    if state.params_layout is None:  # a state built by hand: check what its arrays tell
        template = jax.eval_shape(lambda p: spec.inner.init(_pack(layout, p)), params)
        check_state_arrays("unbucket_state", layout, params, template, state)
    leaves, treedef = jax.tree.flatten(state.inner_state, is_leaf=is_buckets)
    out = [_unpack(layout, x, None) if isinstance(x, Buckets) else x for x in leaves]
    return treedef.unflatten(out)


@checked_arguments
def bucket_state(tx: GradientTransformation, state: Any, params: Any) -> BucketedState:
    """Converts the wrapped transformation's per-leaf state to a bucketed state.

    The inverse of :func:`unbucket_state`: ``state`` is what the wrapped ``tx``
    holds without bucketing (for instance loaded from a checkpoint).

    Args:
        tx: the transformation returned by :func:`bucketed`.
        state: a per-leaf state of the wrapped transformation.
        params: the params (or a tree of ``jax.ShapeDtypeStruct``).

    Returns:
        A :class:`BucketedState` for ``tx``.

    Examples:
        >>> inner = optimlab.sgd(0.1, momentum=0.9)
        >>> tx = optimlab.bucketed(inner)
        >>> params = [jnp.ones(2), jnp.ones(3)]
        >>> state = optimlab.bucket_state(tx, inner.init(params), params)
        >>> state.inner_state.inner_state[0].trace.buckets[0].shape
        (5,)
    """
    spec = _spec(tx, "bucket_state")
    layout = _layout(params, spec.min_leaf_size)
    template = jax.eval_shape(lambda p: spec.inner.init(_pack(layout, p)), params)
    t_flat, prefix = jax.tree_util.tree_flatten_with_path(template, is_leaf=is_buckets)
    try:
        subtrees = prefix.flatten_up_to(state)
    except (ValueError, TypeError) as e:
        raise ValueError(
            "bucket_state: the state does not have the structure of the wrapped "
            f"transformation's state for these params ({e})."
        ) from None
    for (kp, t), sub in zip(t_flat, subtrees, strict=True):
        if isinstance(t, Buckets):
            check_per_leaf(_tree.keystr(kp), layout, params, t, sub)
    out = [
        _pack(layout, s) if isinstance(t, Buckets) else s
        for (_, t), s in zip(t_flat, subtrees, strict=True)
    ]
    offsets = tuple(jnp.asarray(o, jnp.int32) for o in layout.chunk_starts)
    return BucketedState(offsets, prefix.unflatten(out), params_layout(params))
