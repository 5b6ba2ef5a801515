"""Param groups: ``partition`` by label tree, function or path patterns, and ``extend_state``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from .._core import _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._paths import (
    is_function_spec,
    leaves_with_paths,
    resolve,
    subset_scope,
    unique_paths,
)
from .._core._types import OptState, Params
from .._core._validate import UNSET, checked_arguments
from ._masking import masked_extra_args

__all__ = ["PartitionState", "partition", "partition_overrides", "extend_state"]


class PartitionState(NamedTuple):
    """State of :func:`partition`.

    Attributes:
        inner_states: the state of each group's transformation, by group name. Each
            holds only its own group's leaves (in a flat dict keyed by path).
    """

    inner_states: dict[Any, OptState]


def _gather(flat: list[tuple[str, Any]], labels: list[Any], group: str) -> dict[str, Any]:
    return {
        p: leaf
        for (p, leaf), lab in zip(flat, labels, strict=True)
        if leaf is not None and lab == group
    }


@checked_arguments
def partition(
    transforms: Mapping[Any, Any],
    param_labels: Any = UNSET,
    *,
    mask_compatible_extra_args: bool = False,
    labels: Any = None,
) -> GradientTransformation:
    """Applies a different transformation to each group of leaves (param groups).

    Every leaf gets a group label (``param_labels``), from one of:

    - a **label tree** with the params' structure (or a prefix of it, so that
      ``{"encoder": "slow", "head": "fast"}`` labels whole subtrees);
    - a **function** ``params -> label tree`` (optax's form), or
      ``(path, leaf) -> label`` where ``path`` is the leaf's key path joined by
      ``'/'`` (``"encoder/layers/0/kernel"``). A function is first called with the
      params; one that takes two arguments (a ``TypeError`` then) is called per
      leaf;
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

    Extra arguments of ``update`` reach every group unchanged; with
    ``mask_compatible_extra_args=True`` (as in optax), one that is a tree with the
    updates' structure is partitioned like the updates, each group seeing its own
    leaves.

    Args:
        transforms: the transformation of each group, by label (any hashable, as
            in optax; :func:`~optimlab.hyperparams` shows it as a string prefix).
        param_labels: a label tree, a function ``params -> label tree`` or
            ``(path, leaf) -> label``, or a dict of path patterns.
        mask_compatible_extra_args: also partition the extra arguments that have
            the updates' tree structure.
        labels: the former name of ``param_labels``, deprecated (a
            ``DeprecationWarning``); removed in the next release.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`PartitionState`.

    Raises:
        ValueError: at ``init``, a leaf without a label, a label tree entry that
            matches no leaf, an ambiguous pattern match, or a label that is not a
            key of ``transforms``.

    Examples:
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
    spec = _validate.renamed("partition", "labels", "param_labels", labels, param_labels)
    if spec is UNSET:
        raise TypeError("partition: missing the argument 'param_labels'.")
    _check_arguments(transforms, mask_compatible_extra_args)
    groups = dict(transforms)
    updaters = {g: _update_with_extra_args(t) for g, t in groups.items()}

    def labels_of(tree):
        labs = resolve(tree, _label_tree(spec, tree), "partition")
        flat, _ = leaves_with_paths(tree)
        unique_paths(flat, "partition")
        for (path, leaf), lab in zip(flat, labs, strict=True):
            if leaf is not None and lab not in groups:
                raise ValueError(
                    f"partition: the leaf at {path!r} has label {lab!r}, which is not a group; "
                    f"the groups are {sorted(groups, key=repr)}."
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
                f"{sorted(groups, key=repr)}; pass the state returned by this partition's init (or "
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
            g_extra = extra_args
            if mask_compatible_extra_args:
                g_extra = masked_extra_args(
                    extra_args, updates, labs, lambda flat, labs, g=g: _gather(flat, labs, g)
                )
            with subset_scope(u_flat):
                g_updates, new_states[g] = updaters[g](
                    g_updates, state.inner_states[g], g_params, **g_extra
                )
            for path, leaf in g_updates.items():
                out[index[path]] = leaf
        return jax.tree_util.tree_unflatten(treedef, out), PartitionState(new_states)

    return GradientTransformation(init_fn, update_fn)


def _check_arguments(transforms: Any, mask_compatible_extra_args: Any) -> None:
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError("partition: transforms must be a non-empty dict {label: transformation}.")
    for name, t in transforms.items():
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(
                f"partition: the transformation of group {name!r} is {type(t).__name__}, not a "
                "gradient transformation."
            )


def _label_tree(spec: Any, tree: Any) -> Any:
    """optax's ``params -> label tree`` function called, or ``spec`` as it is."""
    if not is_function_spec(spec, tree):
        return spec
    try:
        out = spec(tree)
    except TypeError:
        return spec  # a (path, leaf) function: resolve calls it per leaf
    if callable(out) and is_function_spec(out, tree):
        raise TypeError(
            "partition: the param_labels function returned a function; it takes the params "
            "and returns a label tree, or takes (path, leaf) and returns a label."
        )
    return out


@checked_arguments
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
    if not callable(factory):
        raise TypeError(
            "partition_overrides: factory must be an optimizer factory such as "
            f"optimlab.adam (called once per group), got {type(factory).__name__} {factory!r}."
        )
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


@checked_arguments
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
