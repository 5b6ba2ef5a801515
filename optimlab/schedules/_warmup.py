"""Warmup schedules with optax's names: a linear warmup joined to a decay (private).

Each is optax's schedule of the same name (``optax.<name>_schedule``), built from
the plain schedules of :mod:`._optax_set` with :func:`.join`, and validated when
it is built as they are. :func:`sgdr` joins warmup-cosine cycles end to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp

from .._core._types import ArrayLike, Schedule
from .._core._validate import checked_arguments
from . import _common as c
from ._combinators import join
from ._optax_set import cosine_decay, exponential_decay, linear

__all__ = ["warmup_constant", "warmup_cosine_decay", "warmup_exponential_decay", "sgdr"]


@c.checked_values
def warmup_constant(init_value: ArrayLike, peak_value: ArrayLike, warmup_steps: int) -> Schedule:
    """Linear warmup from ``init_value`` to ``peak_value``, then constant (:func:`linear`).

    Args:
        init_value: value at step 0.
        peak_value: value from ``warmup_steps`` on.
        warmup_steps: length of the warmup (``>= 0``).

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.warmup_constant(0.0, 1.0, warmup_steps=2)
        >>> [round(float(fn(t)), 2) for t in (0, 1, 2, 3)]
        [0.0, 0.5, 1.0, 1.0]
    """
    return linear(init_value, peak_value, warmup_steps)


@c.checked_values
def warmup_cosine_decay(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    With :math:`W` warmup steps and :math:`D` total steps (warmup included):

    .. math::
        v_t = \begin{cases} v_0 + (v_p - v_0)\, t / W & t < W \\
        v_e + (v_p - v_e) \left(\tfrac{1 + \cos(\pi \min(t - W, D - W)/(D - W))}{2}
        \right)^{e} & t \ge W \end{cases}

    (the decay is :func:`cosine_decay` with ``alpha = end_value / peak_value``, 0
    when ``peak_value`` is 0, as in optax).

    Args:
        init_value: :math:`v_0`.
        peak_value: :math:`v_p`.
        warmup_steps: :math:`W \ge 0`.
        decay_steps: :math:`D > W`, the total length including the warmup.
        end_value: :math:`v_e`.
        exponent: :math:`e`.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=12)
        >>> [round(float(fn(t)), 4) for t in (0, 1, 2, 7, 12)]
        [0.0, 0.5, 1.0, 0.5, 0.0]

    References:
        Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
        <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    w = c.non_negative(warmup_steps, "warmup_steps")
    d = c.positive(decay_steps, "decay_steps")
    if not d > w:
        raise ValueError(
            f"Invalid decay_steps value: {decay_steps} (must be > warmup_steps = {warmup_steps})"
        )

    def alpha(step):
        del step
        p = c.value(peak_value)
        safe = jnp.where(p == 0, jnp.ones_like(p), p)
        return jnp.where(p == 0, jnp.zeros_like(p), c.value(end_value) / safe)

    def decay(step):
        return cosine_decay(peak_value, d - w, alpha(step), exponent)(step)

    return join([linear(init_value, peak_value, w), decay], [w])


@checked_arguments
@c.checked_values
def warmup_exponential_decay(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from it.

    .. math::
        v_t = \begin{cases} v_0 + (v_p - v_0)\, t / W & t < W \\
        \operatorname{exponential\_decay}(v_p, T, r, t_0, \ldots)(t - W) & t \ge W
        \end{cases}

    Args:
        init_value: :math:`v_0`.
        peak_value: :math:`v_p`.
        warmup_steps: :math:`W \ge 0`.
        transition_steps: :math:`T > 0`.
        decay_rate: :math:`r > 0`.
        transition_begin: :math:`t_0`, counted from the end of the warmup.
        staircase: decay in discrete jumps.
        end_value: optional bound on the value.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.warmup_exponential_decay(0.0, 1.0, 2, 1, 0.5)
        >>> [round(float(fn(t)), 4) for t in (0, 1, 2, 3, 4)]
        [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    w = c.non_negative(warmup_steps, "warmup_steps")
    return join(
        [
            linear(init_value, peak_value, w),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [w],
    )


@c.checked_values
def sgdr(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    r"""Warm restarts: :func:`warmup_cosine_decay` cycles joined end to end.

    Cycle :math:`k` runs :func:`warmup_cosine_decay` with the keyword arguments
    ``cosine_kwargs[k]`` over its ``decay_steps`` steps, then the next starts.

    Args:
        cosine_kwargs: one dict of :func:`warmup_cosine_decay` arguments per cycle.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)
        >>> fn = schedules.sgdr([cycle, cycle])
        >>> [round(float(fn(t)), 2) for t in range(6)]
        [0.0, 1.0, 0.5, 0.0, 1.0, 0.5]

    References:
        Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
        <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    kwargs = c.sequence(cosine_kwargs, "cosine_kwargs")
    if not kwargs:
        raise ValueError("Invalid cosine_kwargs value: [] (must hold at least one cycle)")
    schedules, bounds, at = [], [], 0.0
    for i, kw in enumerate(kwargs):
        if not isinstance(kw, Mapping):
            raise TypeError(
                f"cosine_kwargs[{i}] must be a dict of warmup_cosine_decay arguments, got "
                f"{type(kw).__name__} {kw!r}."
            )
        try:
            schedules.append(warmup_cosine_decay(**kw))
        except (TypeError, ValueError) as e:
            raise type(e)(f"cosine_kwargs[{i}]: {e}") from None
        at += c.positive(kw["decay_steps"], "decay_steps")
        bounds.append(at)
    return join(schedules, bounds[:-1])
