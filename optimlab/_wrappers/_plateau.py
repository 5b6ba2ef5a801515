"""``reduce_on_plateau``: optax's rule, or torch's ``ReduceLROnPlateau``, as a transformation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, safe_increment
from .._core._hyperparams import hyperparam_dtype

__all__ = ["ReduceLROnPlateauState", "ReduceOnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` with optax's rule (scalars; optax's fields).

    Attributes:
        scale: the current multiplier of the updates.
        best_value: the best accumulated metric so far (``+inf`` before any).
        plateau_count: accumulated metrics in a row without improvement (int32).
        cooldown_count: accumulations of cooldown left after a reduction (int32).
        count: metrics accumulated since the last check (int32).
        avg_value: their running mean.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


class ReduceOnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` with ``rule="torch"`` (scalars).

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


@_validate.checked_arguments
def reduce_on_plateau(  # noqa: C901 (argument checks inline; to be split)
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
    *,
    rule: str = "optax",
    threshold: float = 1e-4,
    eps: float = 1e-8,
    mode: str = "min",
    threshold_mode: str = "rel",
    base_lr: float = 1.0,
    min_lr: float | None = None,
) -> GradientTransformation:
    r"""Scales updates down by ``factor`` when a metric stops improving.

    ``update(updates, state, value=metric)`` takes the metric of the current
    step. Place it after the optimizer (``chain(adam(lr), reduce_on_plateau(...))``);
    ``chain`` forwards ``value`` to it. The updates are multiplied by the current
    scale :math:`s` (which starts at 1).

    **optax's rule** (the default, ``optax.contrib.reduce_on_plateau``): metrics
    are averaged over ``accumulation_size`` steps; each average :math:`a` improves
    on the best :math:`b` when :math:`a < (1 - r_{tol})\, b - a_{tol}`. Otherwise the
    plateau count grows, and when it reaches ``patience``, :math:`s \leftarrow
    \max(s\,\phi, s_{\min})`, the count resets and ``cooldown`` averages are
    ignored. Its state is a :class:`ReduceLROnPlateauState`.

    **torch's rule** (``rule="torch"``), exactly
    ``torch.optim.lr_scheduler.ReduceLROnPlateau.step(metric)``: a metric is
    better when

    .. math::
        \text{min/rel: } m < b\,(1 - \theta), \quad \text{min/abs: } m < b - \theta, \quad
        \text{max/rel: } m > b\,(1 + \theta), \quad \text{max/abs: } m > b + \theta

    then ``best`` becomes it and the bad-epoch count resets, otherwise the count
    grows; during cooldown the counter decreases and bad epochs are ignored; when
    the count exceeds ``patience`` the learning rate
    :math:`\eta = \eta_0 s` becomes :math:`\max(\eta \phi, \eta_{\min})`, if that
    lowers it by more than ``eps``, cooldown restarts and the count resets. Units:
    ``min_lr`` and ``eps`` are learning rates, compared to :math:`\eta_0 s` with
    ``base_lr`` :math:`\eta_0` (give the optimizer's learning rate for torch's exact
    rule); ``min_scale`` is the same bound as a fraction of ``base_lr``
    (``min_lr = base_lr * min_scale``, give one or the other). **NaN metrics are
    ignored** under this rule: the step leaves the state unchanged and the current
    scale is applied (torch counts a NaN as a bad epoch). Its state is a
    :class:`ReduceOnPlateauState`.

    .. note::
        ``rule="torch"`` and its arguments (``threshold``, ``eps``, ``mode``,
        ``threshold_mode``, ``base_lr``, ``min_lr``) are torch's; optax has none of
        them, and ``rtol``, ``atol`` and ``accumulation_size`` are optax's only.

    Args:
        factor: :math:`\phi`, the reduction factor (optax: in :math:`(0, 1)`;
            torch: in :math:`[0, 1)`).
        patience: plateau length that triggers a reduction (``>= 0``).
        rtol: :math:`r_{tol} \in [0, 1]`, relative improvement needed (optax's rule).
        atol: :math:`a_{tol} \ge 0`, absolute improvement needed (optax's rule).
        cooldown: checks to wait after a reduction before counting again (``>= 0``).
        accumulation_size: metrics averaged per check (optax's rule, ``>= 1``).
        min_scale: lower bound on the scale, in ``[0, 1]``.
        rule: ``"optax"`` or ``"torch"``.
        threshold: :math:`\theta \ge 0`, the significant improvement (torch's rule).
        eps: smallest change of learning rate applied (torch's rule, ``>= 0``).
        mode: ``"min"`` (lower is better) or ``"max"`` (torch's rule).
        threshold_mode: ``"rel"`` or ``"abs"`` (torch's rule).
        base_lr: :math:`\eta_0 > 0`, the learning rate the scale multiplies (torch's
            rule).
        min_lr: lower bound on :math:`\eta_0 s`, instead of ``min_scale`` (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.reduce_on_plateau(factor=0.5, patience=2)
        >>> state = tx.init(jnp.zeros(1))
        >>> for metric in [1.0, 1.0, 1.0]:
        ...     updates, state = tx.update(jnp.ones(1), state, value=metric)
        >>> float(state.scale), int(state.plateau_count), float(state.best_value)
        (0.5, 0, 1.0)
        >>> tx = optimlab.reduce_on_plateau(factor=0.5, patience=1, rule="torch")
        >>> state = tx.init(jnp.zeros(1))
        >>> for metric in [1.0, 1.0, 1.0, float("nan"), 0.5]:
        ...     updates, state = tx.update(jnp.ones(1), state, value=metric)
        >>> float(state.scale), int(state.num_bad_epochs), float(state.best)
        (0.5, 0, 0.5)

    References:
        optax, ``optax.contrib.reduce_on_plateau``. PyTorch,
        ``torch.optim.lr_scheduler.ReduceLROnPlateau``.
    """
    if rule == "optax":
        torch_only = dict(
            threshold=(threshold, 1e-4),
            eps=(eps, 1e-8),
            mode=(mode, "min"),
            threshold_mode=(threshold_mode, "rel"),
            base_lr=(base_lr, 1.0),
            min_lr=(min_lr, None),
        )
        # type too: True == 1.0, but base_lr=True is not the default
        given = [k for k, (v, d) in torch_only.items() if type(v) is not type(d) or v != d]
        if given:
            raise ValueError(
                f"reduce_on_plateau: {', '.join(given)} belong to torch's rule; pass "
                "rule='torch' to use them (optax's rule takes rtol, atol, accumulation_size)."
            )
        _check_common(patience, cooldown, min_scale)  # torch's wording first
        _rules.check_args(
            "reduce_on_plateau",
            factor=factor,
            patience=patience,
            rtol=rtol,
            atol=atol,
            cooldown=cooldown,
            accumulation_size=accumulation_size,
            min_scale=min_scale,
        )
        return _optax_rule(factor, patience, rtol, atol, cooldown, accumulation_size, min_scale)
    if rule != "torch":
        raise ValueError(f"reduce_on_plateau: rule must be 'optax' or 'torch', got {rule!r}.")
    if (rtol, atol, accumulation_size) != (1e-4, 0.0, 1):
        raise ValueError(
            "reduce_on_plateau: rtol, atol and accumulation_size belong to optax's rule; "
            "with rule='torch' use threshold and threshold_mode."
        )
    _validate.in_range(factor, "factor", 0.0, 1.0, hi_open=True)
    _check_common(patience, cooldown, min_scale)
    _validate.non_negative(threshold, "threshold")
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
        metric = _metric(value, state, ReduceOnPlateauState)
        metric = metric.astype(state.best.dtype)
        new = step(state, metric)
        state = jax.tree.map(lambda n, o: jnp.where(jnp.isnan(metric), o, n), new, state)
        scale = state.scale
        updates = _tree.tree_map(lambda u: u * _tree.hp(scale, u).astype(u.dtype), updates)
        return updates, state

    return GradientTransformation(init_fn, update_fn)


def _check_common(patience: Any, cooldown: Any, min_scale: Any) -> None:
    """The checks both rules share: counts ``>= 0`` (shown as given), ``min_scale`` in [0, 1]."""
    for name, value in (("patience", patience), ("cooldown", cooldown)):
        v = _validate.concrete(value)
        if v is not None and not v >= 0:
            raise ValueError(f"Invalid {name} value: {value} (must be an integer >= 0)")
    v = _validate.concrete(min_scale)
    if v is not None and not 0.0 <= v <= 1.0:
        raise ValueError(
            "reduce_on_plateau: min_scale must be in [0, 1] (the smallest fraction of the "
            f"learning rate it reduces to), got {min_scale}."
        )


def _optax_rule(factor, patience, rtol, atol, cooldown, accumulation_size, min_scale):
    """optax's ``reduce_on_plateau`` rule (``optax.contrib``), step for step."""
    if not 0.0 < float(factor) < 1.0:
        raise ValueError(f"reduce_on_plateau: factor must be in (0, 1), got {factor}.")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError(
            f"reduce_on_plateau: rtol and atol must be non-negative, got {rtol} and {atol}."
        )
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("reduce_on_plateau: give rtol > 0 or atol > 0 (both are zero).")
    if rtol > 1.0:
        raise ValueError(f"reduce_on_plateau: rtol must be at most 1, got {rtol}.")
    _check_common(patience, cooldown, min_scale)
    if int(accumulation_size) < 1:
        raise ValueError(
            f"reduce_on_plateau: accumulation_size must be >= 1, got {accumulation_size}."
        )
    patience, cooldown, accumulation_size = int(patience), int(cooldown), int(accumulation_size)

    def init_fn(params):
        dtypes = [
            jnp.dtype(x.dtype)
            for x in jax.tree.leaves(params)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)
        ] or [jnp.dtype(jnp.float32)]
        low = min(dtypes, key=lambda d: d.itemsize)
        high = max(dtypes, key=lambda d: d.itemsize)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], low),
            best_value=jnp.asarray(math.inf, high),
            plateau_count=jnp.zeros([], jnp.int32),
            cooldown_count=jnp.zeros([], jnp.int32),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.zeros([], high),
        )

    def check(state):
        avg = state.avg_value
        improved = avg < (1 - rtol) * state.best_value - atol
        best = jnp.where(improved, avg, state.best_value)
        one = jnp.ones([], jnp.int32)
        plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        hit = (plateau == patience) & ~cooling
        floor = _tree.scalar_like(min_scale, state.scale)
        scale = jnp.where(
            cooling,
            state.scale,
            jnp.maximum(jnp.where(hit, state.scale * factor, state.scale), floor),
        )
        plateau = jnp.where(cooling | hit, 0, plateau)
        cool = jnp.where(cooling, state.cooldown_count - one, jnp.where(hit, cooldown, 0))
        return ReduceLROnPlateauState(
            scale.astype(state.scale.dtype),
            best,
            plateau.astype(jnp.int32),
            cool.astype(jnp.int32),
            jnp.zeros([], jnp.int32),
            jnp.zeros([], avg.dtype),
        )

    def update_fn(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        metric = _metric(value, state, ReduceLROnPlateauState)
        count = safe_increment(state.count)
        dt = state.avg_value.dtype
        avg = (state.count.astype(dt) * state.avg_value + metric.astype(dt)) / count.astype(dt)
        state = state._replace(avg_value=avg, count=count)
        state = jax.lax.cond(count == accumulation_size, check, lambda s: s, state)
        scale = state.scale
        updates = _tree.tree_map(lambda u: u * _tree.hp(scale, u).astype(u.dtype), updates)
        return updates, state

    return GradientTransformation(init_fn, update_fn)


def _metric(value: Any, state: Any, cls: type) -> jax.Array:
    """The scalar metric passed as ``update(..., value=metric)``, after checking the state."""
    if value is None:
        raise ValueError(
            "reduce_on_plateau: update needs the metric, as update(updates, state, value=metric)."
        )
    if not isinstance(state, cls):
        raise ValueError(
            f"reduce_on_plateau: expected a {cls.__name__}, got {type(state).__name__}."
        )
    dtype = getattr(value, "dtype", None)
    kind = np.dtype(dtype).kind if dtype is not None else None
    if isinstance(value, (bool, np.bool_)) or not (
        kind in ("f", "i", "u", "V") or isinstance(value, (int, float))
    ):
        raise TypeError(
            f"reduce_on_plateau: the metric (value=) must be a real number, got "
            f"{type(value).__name__} {value!r:.60}."
        )
    metric = jnp.asarray(value)
    if metric.ndim != 0:
        raise ValueError(
            f"reduce_on_plateau: the metric must be a scalar, got shape {metric.shape}."
        )
    return metric
