"""Scaling primitives: ``scale``, ``scale_by_learning_rate`` and ``add_decayed_weights``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _elementwise, _fusion, _rules, _tree, _validate
from .._core._base import EmptyState, GradientTransformation, identity, safe_increment
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, ScalarOrSchedule, Schedule
from .._core._validate import checked_arguments

__all__ = [
    "ScaleByScheduleState",
    "scale",
    "scale_by_learning_rate",
    "add_decayed_weights",
    "scale_by_schedule",
]


@checked_arguments
def scale(step_size: ArrayLike) -> GradientTransformation:
    r"""Multiplies updates by a scalar.

    .. math:: u \leftarrow \alpha\, u

    Args:
        step_size: the scalar :math:`\alpha` (an array, possibly traced).

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.scale(2.0)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([2., 2.], dtype=float32)
    """
    _rules.check_args("scale", step_size=step_size)
    return _scale(step_size, negate=False)


def _scale(step_size: ArrayLike, *, negate: bool) -> GradientTransformation:
    # The factor is read once per update (it may be a hyperparameter bound then).
    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        factor = -jnp.asarray(step_size) if negate else jnp.asarray(step_size)
        factor = _fusion.hoist(factor, updates)

        def scaled(u):
            o = _tree.LAX if u.dtype.kind != "b" else _tree.OPERATORS  # one dtype already
            return o.mul(u, _tree.scalar_like(factor, u))

        return _tree.tree_map(scaled, updates), state

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


class ScaleByScheduleState(NamedTuple):
    """Step counter of a standalone scheduled scaling.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step
            (:func:`~optimlab.scale_by_schedule` with ``step``).
    """

    count: jax.Array | None


@checked_arguments
def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    r"""Scales updates by ``-learning_rate`` (a descent step), or ``+`` with ``flip_sign=False``.

    .. math:: u \leftarrow -\eta_t\, u

    A constant (or traced) learning rate keeps an :class:`~optimlab.EmptyState`;
    a schedule keeps a :class:`ScaleByScheduleState` step counter. Inside an
    optimizer alias the learning rate lives in the alias's state instead (see
    :func:`~optimlab.with_hyperparams`). ``learning_rate=None`` (the default, as in
    optax) means no scaling: the result is :func:`~optimlab.identity`, whatever
    ``flip_sign`` says.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule of the step; ``None``
            for no scaling.
        flip_sign: negate, so that adding the update descends.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.scale_by_learning_rate(0.1)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([-0.1, -0.1], dtype=float32)
    """
    if learning_rate is None:
        return identity()
    sign = -1.0 if flip_sign else 1.0
    if not callable(learning_rate):
        _validate.lr(learning_rate)
        _rules.check_args("scale_by_learning_rate", learning_rate=learning_rate)
        return _scale(learning_rate, negate=flip_sign)
    schedule: Callable[[jax.Array], Any] = learning_rate

    def init_fn(params):
        del params
        return ScaleByScheduleState(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        lr = schedule(state.count)
        updates = _tree.tree_map(lambda u: u * (sign * _tree.hp(lr, u)).astype(u.dtype), updates)
        return updates, ScaleByScheduleState(safe_increment(state.count))

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


@checked_arguments
def add_decayed_weights(weight_decay: ArrayLike = 0.0, mask: Any = None) -> GradientTransformation:
    r"""Adds ``weight_decay * params`` to the updates (L2 or decoupled decay, by position).

    .. math:: u \leftarrow u + \lambda\, p

    Placed before an adaptive scaling it is L2 regularisation (torch's ``Adam``
    ``weight_decay``); placed after it, before the learning rate, it is decoupled
    decay (``AdamW``).

    Args:
        weight_decay: :math:`\lambda`.
        mask: optional pytree of bools with the params' structure (or a callable
            ``params -> mask``); leaves where it is ``False`` are not decayed. It may
            also be path patterns, as for :func:`~optimlab.masked`: a list of the
            patterns to decay (``["**/kernel"]``) or a dict ``{pattern: bool}``
            (``{"**": True, "**/bias": False}``).

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.add_decayed_weights(0.5)
        >>> p = jnp.ones(2)
        >>> tx.update(jnp.zeros(2), tx.init(p), p)[0]
        Array([0.5, 0.5], dtype=float32)
    """
    _validate.weight_decay(weight_decay)
    _rules.check_args("add_decayed_weights", weight_decay=weight_decay)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _validate.require_params("add_decayed_weights", params)
        m = None if mask is None else _mask_tree(params, mask, "add_decayed_weights")
        # Read once (it may be a hyperparameter bound now) and computed once for all
        # the leaves' kernels.
        wd = _fusion.hoist(jnp.asarray(weight_decay), updates)

        def decay(u, p, keep=True):
            if keep is False:
                return u
            g = _tree.upcast(u)
            pc = _tree.upcast(p)
            pc = pc if pc.dtype == g.dtype else pc.astype(g.dtype)
            # One dtype already: lax's primitives apply as they are (not to booleans).
            o = _tree.LAX if g.shape == pc.shape and g.dtype.kind != "b" else _tree.OPERATORS
            out = o.add(g, o.mul(_tree.scalar_like(wd, g), pc))
            if keep is not True:
                out = jnp.where(keep, out, g)
            return out if out.dtype == u.dtype else out.astype(u.dtype)

        try:
            if m is None:
                return _tree.tree_map(decay, updates, params), state
            return _tree.tree_map(decay, updates, params, m), state
        except (TypeError, ValueError):
            # Updates that do not fit the params: say where, naming this function.
            _tree.check_match("add_decayed_weights", updates, params, what="params")
            raise

    tx = GradientTransformation(init_fn, update_fn)
    if mask is None:
        return _elementwise.declare(tx)
    return _elementwise.refuse(
        tx,
        "add_decayed_weights with a mask is not bucket-safe (the mask has the params' "
        "structure). Use optimlab.partition to keep the undecayed leaves in another group, "
        "and bucket each group",
    )


def _mask_tree(params: Any, mask: Any, what: str) -> Any:
    from .._wrappers._masking import mask_tree

    return mask_tree(params, mask, what)


@checked_arguments
def scale_by_schedule(
    step_size_fn: Schedule, *, step: jax.Array | None = None
) -> GradientTransformation:
    r"""Multiplies the updates by a schedule of the step.

    .. math:: u_t \leftarrow s(t)\, u_t

    with :math:`t` the 0-based step count. Unlike :func:`~optimlab.scale_by_learning_rate`
    the sign is kept. Same as ``optax.scale_by_schedule``.

    Args:
        step_size_fn: the schedule :math:`s`, a pure function of the int32 step.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a
        :class:`~optimlab.ScaleByScheduleState`.

    Examples:
        >>> tx = optimlab.scale_by_schedule(lambda t: 0.5 ** t)
        >>> state = tx.init(jnp.zeros(1))
        >>> _, state = tx.update(jnp.ones(1), state)
        >>> tx.update(jnp.ones(1), state)[0]
        Array([0.5], dtype=float32)
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"scale_by_schedule: step_size_fn must be callable, got {type(step_size_fn).__name__}."
        )

    def init_fn(params):
        del params
        return ScaleByScheduleState(initial_count(step))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = current_count(step, state)
        s = step_size_fn(count)
        # Checked once per trace (a jitted step checks it when it is traced).
        if not isinstance(s, jax.Array) and np.asarray(s).dtype.kind not in "biufc":
            raise TypeError(
                "scale_by_schedule: the schedule returned "
                f"{'None' if s is None else f'a {type(s).__name__} ({s!r})'}, not a number; "
                "step_size_fn must return a scalar."
            )
        out = _tree.tree_map(lambda u: u * _tree.hp(s, u).astype(u.dtype), updates)
        return out, ScaleByScheduleState(next_count(step, state))

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))
