"""``reduce_on_plateau``: torch's ``ReduceLROnPlateau`` rule as a gradient transformation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _rules, _tree, _validate
from ._base import GradientTransformation
from ._hyperparams import hyperparam_dtype

__all__ = ["ReduceOnPlateauState", "reduce_on_plateau"]


class ReduceOnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` (scalars).

    Attributes:
        scale: the current multiplier of the updates (learning rate / base lr).
        best: the best metric seen so far (``+inf`` / ``-inf`` before any).
        num_bad_epochs: metrics in a row that did not improve on ``best`` (int32).
        cooldown_counter: steps of cooldown left after a reduction (int32).
    """

    scale: jax.Array
    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    cooldown: int = 0,
    min_scale: float = 0.0,
    eps: float = 1e-8,
    *,
    mode: str = "min",
    threshold_mode: str = "rel",
    base_lr: float = 1.0,
    min_lr: float | None = None,
) -> GradientTransformation:
    r"""Scales updates down by ``factor`` when a metric stops improving (torch's rule).

    ``update(updates, state, value=metric)`` takes the metric of the current
    step and follows ``torch.optim.lr_scheduler.ReduceLROnPlateau.step(metric)``
    exactly. A metric is better when

    .. math::
        \text{min/rel: } m < b\,(1 - \theta), \quad \text{min/abs: } m < b - \theta, \quad
        \text{max/rel: } m > b\,(1 + \theta), \quad \text{max/abs: } m > b + \theta

    then ``best`` becomes it and the bad-epoch count resets, otherwise the count
    grows; during cooldown the counter decreases and bad epochs are ignored; when
    the count exceeds ``patience`` the learning rate
    :math:`\eta = \eta_0 s` becomes :math:`\max(\eta \phi, \eta_{\min})`, if that
    lowers it by more than ``eps``, cooldown restarts and the count resets. The
    updates are multiplied by the new scale :math:`s`.

    Place it after the optimizer (``chain(adam(lr), reduce_on_plateau(...))``);
    ``chain`` forwards ``value`` to it. Units: the scale starts at 1; ``min_lr``
    and ``eps`` are learning rates, compared to :math:`\eta_0 s` with ``base_lr``
    :math:`\eta_0` (give the optimizer's learning rate for torch's exact rule);
    ``min_scale`` is the same bound as a fraction of ``base_lr``
    (``min_lr = base_lr * min_scale``, give one or the other).

    **NaN metrics are ignored**: the step leaves the state unchanged (no decay,
    counters unchanged, no warning) and the current scale is applied. torch
    instead counts a NaN as a bad epoch.

    Args:
        factor: :math:`\phi \in [0, 1)`, the reduction factor.
        patience: bad epochs tolerated before reducing (``>= 0``).
        threshold: :math:`\theta \ge 0`, the significant improvement.
        cooldown: steps to wait after a reduction before counting again (``>= 0``).
        min_scale: lower bound on the scale (``>= 0``).
        eps: smallest change of learning rate applied (``>= 0``).
        mode: ``"min"`` (lower is better) or ``"max"``.
        threshold_mode: ``"rel"`` or ``"abs"``.
        base_lr: :math:`\eta_0 > 0`, the learning rate the scale multiplies.
        min_lr: lower bound on :math:`\eta_0 s`, instead of ``min_scale``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ReduceOnPlateauState`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.reduce_on_plateau(factor=0.5, patience=1)
        >>> state = tx.init(jnp.zeros(1))
        >>> for metric in [1.0, 1.0, 1.0, float("nan"), 0.5]:
        ...     updates, state = tx.update(jnp.ones(1), state, value=metric)
        >>> float(state.scale), int(state.num_bad_epochs), float(state.best)
        (0.5, 0, 0.5)

    References:
        PyTorch, ``torch.optim.lr_scheduler.ReduceLROnPlateau``.
    """
    _validate.in_range(factor, "factor", 0.0, 1.0, hi_open=True)
    _validate.non_negative(patience, "patience")
    _validate.non_negative(threshold, "threshold")
    _validate.non_negative(cooldown, "cooldown")
    _validate.non_negative(min_scale, "min_scale")
    _validate.non_negative(eps, "eps")
    _validate.positive(base_lr, "base_lr")
    if mode not in ("min", "max"):
        raise ValueError(f"Invalid mode value: {mode!r} (must be 'min' or 'max')")
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(
            f"Invalid threshold_mode value: {threshold_mode!r} (must be 'rel' or 'abs')"
        )
    if min_lr is not None:
        _validate.non_negative(min_lr, "min_lr")
        if _validate.concrete(min_scale) != 0.0:
            raise ValueError("reduce_on_plateau: give min_lr or min_scale, not both.")
    _rules.check_args(
        "reduce_on_plateau",
        factor=factor,
        patience=patience,
        threshold=threshold,
        cooldown=cooldown,
        min_scale=min_scale,
        eps=eps,
        base_lr=base_lr,
        min_lr=min_lr,
    )
    worse = math.inf if mode == "min" else -math.inf
    patience, cooldown = int(patience), int(cooldown)

    def init_fn(params):
        del params
        dt = hyperparam_dtype()
        return ReduceOnPlateauState(
            scale=jnp.ones([], dt),
            best=jnp.asarray(worse, dt),
            num_bad_epochs=jnp.zeros([], jnp.int32),
            cooldown_counter=jnp.zeros([], jnp.int32),
        )

    def is_better(a, best):
        if mode == "min" and threshold_mode == "rel":
            return a < best * (1.0 - threshold)
        if mode == "min":
            return a < best - threshold
        if threshold_mode == "rel":
            return a > best * (threshold + 1.0)
        return a > best + threshold

    def step(state, metric):
        better = is_better(metric, state.best)
        best = jnp.where(better, metric, state.best)
        one = jnp.ones([], jnp.int32)
        bad = jnp.where(better, 0, state.num_bad_epochs + one)
        in_cooldown = state.cooldown_counter > 0
        cool = jnp.where(in_cooldown, state.cooldown_counter - one, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad > patience
        lr0 = _tree.scalar_like(base_lr, state.scale)
        old_lr = lr0 * state.scale
        floor = lr0 * min_scale if min_lr is None else _tree.scalar_like(min_lr, old_lr)
        new_lr = jnp.maximum(old_lr * factor, floor)
        apply = reduce & (old_lr - new_lr > eps)
        scale = jnp.where(apply, new_lr / lr0, state.scale)
        cool = jnp.where(reduce, jnp.asarray(cooldown, jnp.int32), cool)
        bad = jnp.where(reduce, 0, bad)
        return ReduceOnPlateauState(scale, best, bad.astype(jnp.int32), cool.astype(jnp.int32))

    def update_fn(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau: update needs the metric, as "
                "update(updates, state, value=metric)."
            )
        if not isinstance(state, ReduceOnPlateauState):
            raise ValueError(
                f"reduce_on_plateau: expected a ReduceOnPlateauState, got {type(state).__name__}."
            )
        metric = jnp.asarray(value)
        if metric.ndim != 0:
            raise ValueError(
                f"reduce_on_plateau: the metric must be a scalar, got shape {metric.shape}."
            )
        metric = metric.astype(state.best.dtype)
        new = step(state, metric)
        state = jax.tree.map(lambda n, o: jnp.where(jnp.isnan(metric), o, n), new, state)
        scale = state.scale
        updates = _tree.tree_map(lambda u: u * _tree.hp(scale, u).astype(u.dtype), updates)
        return updates, state

    return GradientTransformation(init_fn, update_fn)
