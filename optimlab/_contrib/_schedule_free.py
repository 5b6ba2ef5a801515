"""Schedule-Free learning: the ``schedule_free`` wrapper with its SGD and AdamW aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _paths, _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args, chain, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, OptState, Params, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._scale import add_decayed_weights, scale_by_learning_rate

__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_sgd",
    "schedule_free_adamw",
    "schedule_free_eval_params",
]


class ScheduleFreeState(NamedTuple):
    r"""State of :func:`schedule_free`.

    Attributes:
        b1: the interpolation weight the current parameters ``y`` were formed with
            (the ``b1`` of the last step), used by :func:`schedule_free_eval_params`.
        weight_sum: running sum of the averaging weights :math:`\sum_i \gamma_{\max,i}^{r}`.
        max_lr: largest learning rate seen so far.
        z: the base optimizer's iterate sequence :math:`z_t`.
        base_optimizer_state: the state of the wrapped optimizer.
    """

    b1: jax.Array
    weight_sum: jax.Array
    max_lr: jax.Array
    z: Params
    base_optimizer_state: OptState


@checked_arguments
def schedule_free(
    base_optimizer: Any,
    learning_rate: ArrayLike,
    b1: ArrayLike = 0.9,
    weight_lr_power: ArrayLike = 2.0,
    *,
    state_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Makes a momentum-free base optimizer schedule-free (see :func:`schedule_free_sgd`).

    The base optimizer's updates move :math:`z`; the parameters passed to
    ``update`` are the gradient points :math:`y`, and the returned updates move
    them to :math:`y_{t+1}`. Algebraically
    :math:`y_{t+1} - y_t = c_{t+1}(z_t - y_t) + (1 - \beta_1(1 - c_{t+1}))\,\Delta_t`
    with :math:`\Delta_t` the base update, which is how it is computed: a zero
    base update at :math:`z = y` gives an exactly zero update. Switch off the
    base optimizer's own momentum.

    Args:
        base_optimizer: the transformation producing the steps of :math:`z`
            (learning rate included).
        learning_rate: the current learning rate :math:`\gamma_t` (a scalar array,
            possibly traced); it only sets the averaging weights. Schedules are
            evaluated by the aliases.
        b1: the interpolation weight :math:`\beta_1 \in (0, 1)`.
        weight_lr_power: the power :math:`r` of the averaging weights.
        state_dtype: dtype of :math:`z` (default: the params').

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScheduleFreeState`.
    """
    _rules.check_args(
        "schedule_free", learning_rate=learning_rate, b1=b1, weight_lr_power=weight_lr_power
    )
    base_init = base_optimizer.init
    base_update = _update_with_extra_args(base_optimizer)

    def init_fn(params):
        # a real z would drop the imaginary part (optax: "not supported")
        _tree.reject_complex_for_real_dtypes("schedule_free", params, state_dtype=state_dtype)
        sd = _tree.scalar_dtype(params)
        z = _tree.tree_map(
            lambda p: jnp.array(p, dtype=state_dtype or jnp.asarray(p).dtype, copy=True), params
        )
        return ScheduleFreeState(
            jnp.asarray(b1).astype(sd), jnp.zeros([], sd), jnp.zeros([], sd), z, base_init(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        _validate.state_type("schedule_free", state, ScheduleFreeState)
        _tree.check_match("schedule_free", updates, state.z)
        if params is None:
            raise ValueError(
                "schedule_free: params is None; pass the current params (the "
                "points y where the gradients were taken) to update()."
            )
        sd = state.weight_sum.dtype
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(learning_rate).astype(sd))
        weight = max_lr ** jnp.asarray(weight_lr_power).astype(sd)
        total = state.weight_sum + weight
        ck = jnp.where(total > 0, weight / jnp.where(total > 0, total, 1), 0)
        b1_ = jnp.asarray(b1).astype(sd)
        base_updates, base_state = base_update(
            updates, state.base_optimizer_state, params, **extra_args
        )

        def one(g, z, y, d):
            zc, yc, dc = _tree.upcast(z), _tree.upcast(y), _tree.upcast(d)
            c = _tree.scalar_like(ck, zc)
            w = _tree.scalar_like(1 - b1_ * (1 - ck), zc)
            return (c * (zc - yc.astype(zc.dtype)) + w * dc.astype(zc.dtype)).astype(g.dtype), (
                zc + dc.astype(zc.dtype)
            ).astype(z.dtype)

        out, z = _tree.tree_map_multi(one, 2, updates, state.z, params, base_updates)
        return out, ScheduleFreeState(b1_, total, max_lr, z, base_state)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def schedule_free_eval_params(state: Any, params: Params) -> Params:
    r"""The evaluation parameters :math:`x_t = (y_t - (1-\beta_1) z_t) / \beta_1`.

    Args:
        state: a state holding a :class:`ScheduleFreeState` (from the aliases or
            :func:`schedule_free`).
        params: the current (training) parameters :math:`y_t`.

    Returns:
        The averaged parameters to evaluate the model at, in the params' dtypes.

    Raises:
        ValueError: the state holds no :class:`ScheduleFreeState`, or the params'
            structure or a shape differs from the state's, naming the key path.
    """
    found = [x for _, x in _paths.find_nodes(state, ScheduleFreeState)]
    if not found:
        raise ValueError(
            "schedule_free_eval_params: the state holds no ScheduleFreeState; "
            "pass the state of a schedule-free optimizer."
        )
    sf = found[0]
    _tree.check_match("schedule_free_eval_params", params, sf.z, "state's z", subject="param")

    def one(y, z):
        yc = _tree.upcast(y)
        b = _tree.scalar_like(sf.b1, yc)
        return ((yc - (1 - b) * _tree.upcast(z).astype(yc.dtype)) / b).astype(y.dtype)

    return _tree.tree_map(one, params, sf.z)


@never_negative("nu")
class _ScaleByRmsState(NamedTuple):
    """Bias-corrected second moment of ``schedule_free_adamw``'s base optimizer."""

    count: jax.Array | None
    nu: Updates


def _scale_by_rms(b2, eps, *, step=None) -> GradientTransformation:
    """``g / (sqrt(nu / (1 - b2**t)) + eps)``: Adam without the first moment."""

    def rule(g, v, bc2):
        # v averages |g|^2: real for complex leaves (optax's stays complex, imaginary 0)
        v_new = _tree.update_moment(g, v, b2, 2)
        bc = _tree.scalar_like(bc2, v_new)
        den = jnp.sqrt(v_new / bc) + _tree.scalar_like(eps, v_new)
        return g / den.astype(g.dtype), v_new

    return lift(
        "schedule_free_adamw",
        rule,
        _ScaleByRmsState,
        (Slot(real=True),),
        step=step,
        # Once per update, for every leaf (the lifter computes it once).
        prepare=lambda count: {"bc2": _tree.bias_correction(b2, count)},
    )


def _warmup(learning_rate: ScalarOrSchedule, warmup_steps: int | None) -> ScalarOrSchedule:
    if warmup_steps is None:
        return learning_rate
    _validate.positive_int(warmup_steps, "warmup_steps")

    def schedule(count):
        lr = jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate)
        if not jnp.issubdtype(lr.dtype, jnp.floating):
            lr = lr.astype(jnp.result_type(float))
        frac = jnp.minimum((count + 1) / warmup_steps, 1.0)
        return lr * frac.astype(lr.dtype)

    return schedule


def _validate_common(learning_rate, b1, weight_lr_power) -> None:
    _validate.lr(learning_rate)
    _validate.in_range(b1, "b1", 0, 1, lo_open=True, hi_open=True)
    _validate.non_negative(weight_lr_power, "weight_lr_power")


@checked_arguments
def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: ScalarOrSchedule = 2.0,
    *,
    state_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Schedule-Free SGD: interpolation and averaging instead of momentum and decay schedules.

    With gradients taken at :math:`y_t` (the parameters being trained):

    .. math::
        z_{t+1} &= z_t - \gamma_t\,(\nabla f(y_t) + \lambda y_t) \\
        c_{t+1} &= \frac{\gamma_{\max,t}^{r}}{\sum_{i \le t} \gamma_{\max,i}^{r}}, \qquad
        x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1}\, z_{t+1} \\
        y_{t+1} &= \beta_1 x_{t+1} + (1 - \beta_1)\, z_{t+1}

    Evaluate the model at :math:`x_t`, given by :func:`schedule_free_eval_params`.
    :func:`schedule_free_adamw` replaces the gradient step on :math:`z` by an
    RMS-scaled one. Every numeric argument lives in the state.

    Differences from optax: with ``warmup_steps``, step :math:`t` (1-based) uses
    :math:`\gamma\,\min(t/T_w, 1)` both for the step and for the averaging weights,
    as the reference implementation does; optax's base optimizer is one step behind
    its weights (its first step is zero). Complex parameters are optimized as
    optax does (a real averaging weight; :func:`schedule_free_adamw` scales by the
    RMS of :math:`|g|`); a real ``state_dtype`` refuses them.

    Args:
        learning_rate: :math:`\gamma`, a scalar or a schedule (without decay).
        warmup_steps: length :math:`T_w` of a linear warmup, or ``None``.
        b1: :math:`\beta_1 \in (0, 1)`.
        weight_decay: :math:`\lambda`, applied at :math:`y_t`; ``None`` or zero
            leaves the term out.
        weight_lr_power: :math:`r`.
        state_dtype: dtype of :math:`z` (default: the params').

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        With a constant gradient of 1, :math:`z` goes from 1 to 0 to -1; the
        evaluation point :math:`x_2` is their average after the first:

        >>> tx = optimlab.schedule_free_sgd(learning_rate=1.0)
        >>> y = jnp.array([1.0])
        >>> state = tx.init(y)
        >>> for _ in range(2):
        ...     updates, state = tx.update(jnp.ones(1), state, y)
        ...     y = optimlab.apply_updates(y, updates)
        >>> print(y, optimlab.schedule_free_eval_params(state, y))
        [-0.55] [-0.5]

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, `The Road Less Scheduled
        <https://arxiv.org/abs/2405.15682>`_, 2024.
    """
    _validate_common(learning_rate, b1, weight_lr_power)
    if weight_decay is not None:
        _validate.weight_decay(weight_decay)
    return _alias(
        "schedule_free_sgd",
        learning_rate,
        warmup_steps,
        b1,
        weight_decay,
        weight_lr_power,
        rms=None,
        state_dtype=state_dtype,
    )


@checked_arguments
def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: ScalarOrSchedule = 2.0,
    *,
    state_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Schedule-Free AdamW: :func:`schedule_free_sgd` with an RMS-scaled step on :math:`z`.

    The step on :math:`z` is
    :math:`-\gamma_t\,\big(g_t / (\sqrt{v_t/(1-\beta_2^t)} + \epsilon) + \lambda y_t\big)`
    with :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`; the rest is as in
    :func:`schedule_free_sgd`, whose notes on warmup apply.

    Args:
        learning_rate: :math:`\gamma`, a scalar or a schedule (without decay).
        warmup_steps: length of a linear warmup, or ``None``.
        b1: :math:`\beta_1 \in (0, 1)`, the interpolation weight.
        b2: :math:`\beta_2`, the second-moment decay.
        eps: :math:`\epsilon`, added outside the square root.
        weight_decay: decoupled decay :math:`\lambda`, applied at :math:`y_t`.
        weight_lr_power: power of the averaging weights.
        state_dtype: dtype of :math:`z` (default: the params').

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.schedule_free_adamw(learning_rate=0.4, warmup_steps=4)
        >>> y = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(jnp.array([5.0, -0.5]), tx.init(y), y)
        >>> updates  # Adam's first step -sign(g), at the warmed-up rate 0.4 * 1/4
        Array([-0.1,  0.1], dtype=float32)

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, `The Road Less Scheduled
        <https://arxiv.org/abs/2405.15682>`_, 2024.
    """
    _validate_common(learning_rate, b1, weight_lr_power)
    _validate.beta(b2, 1)
    _validate.eps(eps)
    _validate.weight_decay(weight_decay)
    return _alias(
        "schedule_free_adamw",
        learning_rate,
        warmup_steps,
        b1,
        weight_decay,
        weight_lr_power,
        rms=dict(b2=b2, eps=eps),
        state_dtype=state_dtype,
    )


def _alias(
    name, learning_rate, warmup_steps, b1, weight_decay, weight_lr_power, *, rms, state_dtype
):
    """The aliases' body: each number's rule, the warmup, and the build.

    :func:`schedule_free` around ``[RMS scaling] [decay] learning rate``; ``rms``:
    the RMS scaling's ``b2`` and ``eps`` (schedule-free AdamW), or ``None`` (SGD).
    The numbers are already checked with their alias's wording.
    """
    numbers = dict(b1=b1, **(rms or {}), weight_lr_power=weight_lr_power)  # the state's
    lead = dict(learning_rate=learning_rate, warmup_steps=warmup_steps)
    _rules.check_args(name, **lead, **numbers, weight_decay=weight_decay)
    use_decay = _validate.present(weight_decay)
    lr = _warmup(learning_rate, warmup_steps)

    def build(step, h):
        txs = [_scale_by_rms(h["b2"], h["eps"], step=step)] if rms is not None else []
        if use_decay:
            txs.append(add_decayed_weights(h["weight_decay"]))
        base = chain(*txs, scale_by_learning_rate(h["learning_rate"]))
        return schedule_free(
            base, h["learning_rate"], h["b1"], h["weight_lr_power"], state_dtype=state_dtype
        )

    decay = optional(weight_decay=weight_decay)
    return alias_hyperparams(build, name, learning_rate=lr, **numbers, **decay)
