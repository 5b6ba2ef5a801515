"""The per-leaf lifter: an elementwise rule written for one leaf, applied to a tree (private).

An elementwise optimizer is a rule for one array: given a leaf's gradient and
its state slots (moments, accumulators), it returns the leaf's update and the
new slots. :func:`lift` turns such a rule into a
:class:`~optimlab.GradientTransformation` over pytrees, the way
``jax.example_libraries.optimizers`` lifts a per-array rule, and owns what every
elementwise family would otherwise write again:

- the step counter, kept in the state (saturating int32) or supplied by an
  enclosing optimizer (``step=``), and its one increment per update;
- ``init``: each slot built with a tree map of ``zeros_like`` / ``full_like``
  over the params, so it keeps their sharding, runs under ``jax.eval_shape`` and
  passes ``None`` leaves through;
- the dtype policy: the rule computes in at least float32 (bfloat16 and float16
  leaves are upcast), slots are stored in their own dtype (``mu_dtype``...) or
  the param's, a slot of squared magnitudes is real for complex leaves, and the
  update comes back in the gradient's dtype;
- complex leaves, either natively (the rule handles them, as optax's moments of
  :math:`|g|^2` do) or componentwise (real and imaginary parts as two real
  arrays, torch's ``view_as_real``);
- the structure check of updates against the state, naming the key path;
- the declaration that the transformation is elementwise, which
  :func:`optimlab.bucketed` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _elementwise, _fusion, _tree
from ._base import GradientTransformation, safe_increment
from ._types import DType

__all__ = ["Slot", "lift"]


class Slot(NamedTuple):
    """One per-leaf state array of a lifted rule.

    Attributes:
        dtype: the storage dtype; ``None`` for the param's.
        dtype_arg: the factory argument that chose ``dtype`` (``"mu_dtype"``), named
            when a real dtype is refused for complex params; ``None`` when the
            slot's dtype is not a user's choice.
        real: stored in the real dtype of complex params (a moment of
            :math:`|g|^2`); the rule receives it real.
        fill: the initial value: a number, or a function of the param returning
            the initial array (in its storage dtype).
    """

    dtype: DType | None = None
    dtype_arg: str | None = None
    real: bool = False
    fill: Any = 0.0


def _init_slot(slot: Slot, params: Any) -> Any:
    def one(p: jax.Array) -> jax.Array:
        dtype = _tree.real_dtype(p, slot.dtype) if slot.real else slot.dtype
        if callable(slot.fill):
            return jnp.asarray(slot.fill(p))
        if isinstance(slot.fill, (int, float)) and slot.fill == 0:
            return jnp.zeros_like(p, dtype=dtype)
        return jnp.full_like(p, slot.fill, dtype=dtype)

    return _tree.tree_map(one, params)


def _prepare(
    prepare: Callable[..., Any] | None, count: Any, shared: tuple[Any, ...], has_shared: bool
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The per-update scalars for every leaf's rule, and the new shared fields."""
    if prepare is None:
        return {}, ()
    if has_shared:
        prepared, fields = prepare(count, *shared)
        return dict(prepared), tuple(fields)
    return dict(prepare(count)), ()


def lift(
    name: str,
    rule: Callable[..., tuple[Any, ...]],
    state_cls: Callable[..., Any],
    slots: Sequence[Slot | None],
    *,
    counter: bool = True,
    step: jax.Array | None = None,
    prepare: Callable[..., Any] | None = None,
    componentwise: bool = False,
    check_params: Callable[[Any], None] | None = None,
    check_state: Callable[[Any], None] | None = None,
    shared: Callable[[], tuple[Any, ...]] | None = None,
    with_params: bool = False,
) -> GradientTransformation:
    """The transformation applying ``rule`` to every leaf.

    Args:
        name: the public factory's name, for messages.
        rule: ``rule(g, *slots, **scalars) -> (update, *new_slots)`` for one leaf:
            ``g`` and the slots arrive in the compute dtype (real slots real), and
            the outputs are cast back by the lifter. A slot declared ``None`` is
            absent: the rule receives ``None`` and returns ``None`` for it.
        state_cls: the state's NamedTuple, built as
            ``state_cls(count, *shared, *slots)`` (without ``count`` when there is
            no counter).
        slots: the rule's state slots, in ``state_cls``'s order.
        counter: whether the state has a ``count`` field (first).
        step: the step count supplied by an enclosing optimizer; the ``count``
            field is then ``None``.
        prepare: ``prepare(count) -> scalars``, computed once per update (bias
            corrections...) and passed to every leaf's rule by keyword. With
            ``shared``: ``prepare(count, *shared) -> (scalars, new_shared)``.
        shared: the initial values of optimizer-wide scalar fields (NAdam's
            momentum product, ASGD's step size), kept after ``count``.
        componentwise: complex leaves go through the rule as two real arrays.
        check_params: extra checks of the params at ``init``.
        check_state: extra checks of the state at ``update`` (after the structure's).
        with_params: the rule takes the leaf's param after ``g``
            (``rule(g, p, *slots, **scalars)``), cast to the compute dtype;
            ``update`` then requires ``params``.

    Returns:
        The :class:`~optimlab.GradientTransformation`, declared elementwise.
    """
    present = [s for s in slots if s is not None]
    dtype_args = {s.dtype_arg: s.dtype for s in present if s.dtype_arg is not None}
    where = [i for i, s in enumerate(slots) if s is not None]
    reals = [s.real for s in present]
    head = int(counter) + (0 if shared is None else len(shared()))

    def init_fn(params):
        if check_params is not None:
            check_params(params)
        if dtype_args:
            _tree.reject_complex_for_real_dtypes(name, params, **dtype_args)
        trees = [None if s is None else _init_slot(s, params) for s in slots]
        fields = () if shared is None else shared()
        if counter:
            fields = (None if step is not None else jnp.zeros([], jnp.int32), *fields)
        return state_cls(*fields, *trees)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        trees = tuple(state[head:])
        if present:
            _tree.check_match(name, updates, trees[where[0]])
        if check_state is not None:
            check_state(state)
        if with_params and params is None:
            raise ValueError(f"{name}: params is None; pass the current params to update().")
        count = step if step is not None or not counter else state.count
        scalars, fields = _prepare(prepare, count, state[int(counter) : head], shared is not None)
        scalars = _fusion.hoist(scalars, updates)

        def leaf(g, *held):  # held: the param (with_params) and the present slots
            # A cast to the dtype an array already has (not weakly typed) returns it:
            # skipped, the same program, ~7 us less per cast while tracing.
            gc = _tree.upcast(g)
            real = gc.dtype if gc.dtype.kind != "c" else jnp.finfo(gc.dtype).dtype
            ins: list[Any] = [None] * len(slots)
            for k, i in enumerate(where):
                x, want = held[k + skip], real if reals[k] else gc.dtype
                ins[i] = x if x.dtype == want and not x.weak_type else x.astype(want)
            lead = (_tree.upcast(held[0]).astype(gc.dtype),) if with_params else ()
            out = rule(gc, *lead, *ins, **scalars)
            u = out[0]
            result = [u if u.dtype == g.dtype and not u.weak_type else u.astype(g.dtype)]
            for k, i in enumerate(where):  # loops, not comprehensions: no frame per leaf
                x, want = out[1 + i], held[k + skip].dtype
                result.append(x if x.dtype == want and not x.weak_type else x.astype(want))
            return tuple(result)

        skip = int(with_params)
        fn = _tree.componentwise(leaf) if componentwise else leaf
        rest = [params] if with_params else []
        outs = _tree.tree_map_multi(
            fn, 1 + len(where), updates, *rest, *map(trees.__getitem__, where)
        )
        new_trees: list[Any] = [None] * len(slots)
        for k, i in enumerate(where):
            new_trees[i] = outs[1 + k]
        if counter:
            new_count = None if step is not None else safe_increment(state.count)
            fields = (new_count, *fields)
        return outs[0], state_cls(*fields, *new_trees)

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))
