"""Gradient accumulation: ``accumulate`` with a single accumulator buffer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args, require_transformation
from .._core._types import DType, OptState, Updates
from .._core._validate import checked_arguments

__all__ = ["AccumulateState", "accumulate"]


class AccumulateState(NamedTuple):
    """State of :func:`accumulate`.

    Attributes:
        mini_step: int32 index of the next micro-step within the current window,
            in ``[0, every)``.
        acc: the running sum of the current window's gradients (the only
            parameter-sized buffer this wrapper adds). Right after a boundary it holds
            the update just returned (stored in the accumulator's dtype) or, when that
            dtype cannot hold the update exactly, the finished window's sum; the next
            micro-step overwrites it rather than adding to it, which lets XLA update it
            in place.
        inner_state: the wrapped optimizer's state, changed only at the last
            micro-step of each window.
    """

    mini_step: jax.Array
    acc: Updates
    inner_state: OptState


def _fits(updates: Any, acc: Any) -> bool:
    """Whether every update leaf can be stored in the accumulator and read back exactly."""

    def one(u, a) -> bool:
        if u is None or a is None:
            return u is None and a is None
        u_dt, a_dt = jnp.dtype(u.dtype), jnp.dtype(a.dtype)
        if u.shape != a.shape:
            return False
        if u_dt == a_dt:
            return True
        # float32 and float64 hold every narrower float exactly (bf16, f16, fp8).
        real = all(
            jnp.issubdtype(d, jnp.floating) and not jnp.issubdtype(d, jnp.complexfloating)
            for d in (u_dt, a_dt)
        )
        return real and a_dt in (jnp.float32, jnp.float64) and u_dt.itemsize < a_dt.itemsize

    if jax.tree.structure(updates, is_leaf=_tree.is_none) != jax.tree.structure(
        acc, is_leaf=_tree.is_none
    ):
        return False
    return all(jax.tree.leaves(jax.tree.map(one, updates, acc, is_leaf=_tree.is_none)))


@checked_arguments
def accumulate(
    opt: Any,
    every: int,
    mode: str = "mean",
    *,
    accumulator_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Accumulates gradients over ``every`` micro-steps, then applies ``opt`` once.

    With window :math:`W = \{t-k+1, \dots, t\}`:

    .. math::
        u_t = \begin{cases}
            \mathrm{opt}\big(\tfrac1k \sum_{s\in W} g_s\big) & t \equiv k-1 \pmod k
                \ (\text{``mean''; the plain sum with ``sum''}) \\
            0 & \text{otherwise}
        \end{cases}

    The updates are exactly zero between window boundaries, the wrapped
    optimizer's state is unchanged there (its step counter and schedules count
    optimizer steps, not micro-steps), and at each boundary it sees exactly the
    mean (or sum) of the window's gradients, summed left to right. With
    ``every=1`` it is bitwise the wrapped optimizer.

    Memory: the state adds one accumulator buffer and nothing else that is
    parameter-sized (``optax.MultiSteps`` keeps the same accumulator), and a
    donated micro-step needs no parameter-sized temporary: its peak is params +
    grads + optimizer state + accumulator (measured with ``adamw`` on XLA:CPU).
    The wrapped optimizer runs inside a ``lax.cond``, only at boundaries,
    updating its state in place; its update is written into the accumulator (the
    window's sum is no longer needed then) and read from there, and the
    accumulator is overwritten at a window's first micro-step instead of being
    reset at the boundary, which would force XLA to copy it. If the accumulator's
    dtype cannot hold the update exactly (say a bfloat16 accumulator for float32
    gradients), the update gets its own buffer: one parameter-sized temporary.
    ``benchmarks/accumulate_memory.py`` measures peak memory against
    ``optax.MultiSteps``.

    Args:
        opt: the optimizer to apply to the accumulated gradients.
        every: the number :math:`k \ge 1` of micro-steps per optimizer step.
        mode: ``"mean"`` (the optimizer sees the average, as with a ``k`` times
            larger batch) or ``"sum"``.
        accumulator_dtype: storage dtype of the accumulator (default: the
            gradients'); ``jnp.float32`` keeps bf16 gradients' sum exact-er.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`AccumulateState`.

    Raises:
        TypeError: ``every`` is not an integer (Python's or NumPy's), or a storage
            dtype is not floating.
        ValueError: ``every`` is below 1, or ``mode`` is unknown.

    Examples:
        >>> tx = optimlab.accumulate(optimlab.sgd(1.0), every=2)
        >>> state = tx.init(jnp.zeros(1))
        >>> u1, state = tx.update(jnp.array([1.0]), state)
        >>> u2, state = tx.update(jnp.array([3.0]), state)
        >>> u1, u2
        (Array([0.], dtype=float32), Array([-2.], dtype=float32))
    """
    every = _validate.integer("accumulate", "every", every, 1)
    if mode not in ("mean", "sum"):
        raise ValueError(f"accumulate: mode must be 'mean' or 'sum', got {mode!r}.")
    require_transformation(opt, "accumulate: opt")
    _rules.check_args("accumulate", every=every)
    inner_update = _update_with_extra_args(opt)

    def init_fn(params):
        acc = _tree.tree_map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype), params)
        return AccumulateState(jnp.zeros([], jnp.int32), acc, opt.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, AccumulateState):
            raise ValueError(
                f"accumulate: expected an AccumulateState, got {type(state).__name__}."
            )
        _tree.check_match("accumulate", updates, state.acc)
        first = state.mini_step == 0
        boundary = state.mini_step == every - 1

        def total(g, a):
            # At the window's first micro-step the sum is the gradient itself (exact,
            # signed zeros included), so every=1 is bitwise the wrapped optimizer.
            return jnp.where(first, g.astype(a.dtype), a + g.astype(a.dtype))

        sums = _tree.tree_map(total, updates, state.acc)

        def to_inner(s, g):
            if mode == "mean" and every > 1:
                s = s / _tree.scalar_like(every, s)
            return s.astype(g.dtype)

        def apply(sums, inner_state):
            inner_in = _tree.tree_map(to_inner, sums, updates)
            return inner_update(inner_in, inner_state, params, **extra_args)

        new_updates, new_inner = jax.eval_shape(apply, sums, state.inner_state)
        # Both branches return the dtypes ``jnp.where(new, old)`` would.
        dtypes = _tree.tree_map(jnp.result_type, new_inner, state.inner_state)

        def as_state(tree):
            return _tree.tree_map(lambda x, dt: jnp.asarray(x).astype(dt), tree, dtypes)

        mini_step = jnp.where(boundary, jnp.zeros_like(state.mini_step), state.mini_step + 1)
        # The inner optimizer runs in a ``cond``, so its state is updated in place at
        # boundaries and passed through untouched elsewhere (selecting between its new
        # and old state with ``where`` makes XLA copy every moment at every micro-step).
        if _fits(new_updates, sums):
            # The update goes into the accumulator, whose window sum it no longer needs,
            # so it takes no buffer of its own: the step stays at params + grads +
            # state.
            def step_into_acc(sums, inner_state):
                u, inner = apply(sums, inner_state)
                return _tree.tree_map(lambda x, a: x.astype(a.dtype), u, sums), as_state(inner)

            def keep_sums(sums, inner_state):
                return sums, as_state(inner_state)

            acc, inner_state = jax.lax.cond(
                boundary, step_into_acc, keep_sums, sums, state.inner_state
            )
            out = _tree.tree_map(
                lambda u, a: jnp.where(boundary, a.astype(u.dtype), jnp.zeros([], u.dtype)),
                new_updates,
                acc,
            )
            return out, AccumulateState(mini_step, acc, inner_state)

        def step(sums, inner_state):
            u, inner = apply(sums, inner_state)
            return u, as_state(inner)

        def skip(sums, inner_state):
            zeros = _tree.tree_map(lambda u: jnp.zeros(u.shape, u.dtype), new_updates)
            return zeros, as_state(inner_state)

        out, inner_state = jax.lax.cond(boundary, step, skip, sums, state.inner_state)
        return out, AccumulateState(mini_step, sums, inner_state)

    return GradientTransformation(init_fn, update_fn)
