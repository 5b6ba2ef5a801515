"""Schedules with optax's names, arguments and values (private).

Each returns a pure ``step -> value`` function equal to the optax schedule of the
same name (``optax.<name>_schedule`` or ``optax.<name>``). Unlike optax, arguments
are validated when the schedule is built: optax silently turns a non-positive
``transition_steps`` or a negative ``transition_begin`` into a constant schedule,
optimlab raises ``ValueError`` naming the argument (``transition_steps=0`` stays
valid for ``linear``/``polynomial``/``warmup_*``, meaning "no transition").
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp

from .._core import _validate
from .._core._types import ArrayLike, Schedule
from .._core._validate import checked_arguments
from . import _common as c

__all__ = [
    "constant",
    "polynomial",
    "linear",
    "exponential_decay",
    "cosine_decay",
    "piecewise_constant",
    "piecewise_interpolate",
]


@c.checked_values
def constant(value: ArrayLike) -> Schedule:
    """A constant schedule, :math:`v_t = v`.

    Args:
        value: the value :math:`v` (a number or scalar array).

    Returns:
        A schedule ``step -> value``, with the step's shape.

    Examples:
        >>> from optimlab import schedules
        >>> float(schedules.constant(0.5)(10))
        0.5
    """

    def schedule(step):
        t = c.as_step(step)
        return jnp.zeros_like(t) + c.value(value)

    return schedule


@c.checked_values
def polynomial(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: float,
    transition_begin: float = 0,
) -> Schedule:
    r"""Polynomial interpolation from ``init_value`` to ``end_value``.

    .. math::
        s = \operatorname{clip}(t - t_0, 0, T), \qquad
        v_t = (v_0 - v_1)\,(1 - s/T)^p + v_1

    With ``transition_steps = 0`` the schedule is the constant ``init_value``.

    Args:
        init_value: :math:`v_0`.
        end_value: :math:`v_1`.
        power: :math:`p \ge 0`.
        transition_steps: :math:`T \ge 0`.
        transition_begin: :math:`t_0 \ge 0`, the step the transition starts at.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.polynomial(1.0, 0.0, power=2, transition_steps=10)
        >>> [round(float(fn(t)), 4) for t in (0, 5, 10, 20)]
        [1.0, 0.25, 0.0, 0.0]

    References:
        optax, ``polynomial_schedule``.
    """
    steps = c.non_negative(transition_steps, "transition_steps")
    begin = c.non_negative(transition_begin, "transition_begin")
    if _validate.concrete(power) is not None:  # as polynomial_decay: a negative one gives inf
        c.non_negative(power, "power")
    if steps == 0:
        return constant(init_value)

    def schedule(step):
        s = jnp.clip(c.as_step(step) - begin, 0.0, steps)
        frac = (steps - s) / steps  # exactly 0 at the end, even with a reciprocal multiply
        v0, v1 = c.value(init_value), c.value(end_value)
        return (v0 - v1) * frac ** c.value(power) + v1

    return schedule


@c.checked_values
def linear(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: float,
    transition_begin: float = 0,
) -> Schedule:
    """Linear interpolation: :func:`polynomial` with ``power=1``.

    Args:
        init_value: value before ``transition_begin``.
        end_value: value after ``transition_begin + transition_steps``.
        transition_steps: length of the transition (``>= 0``).
        transition_begin: step the transition starts at (``>= 0``).

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.linear(0.0, 1.0, transition_steps=4)
        >>> [round(float(fn(t)), 2) for t in (0, 1, 4, 9)]
        [0.0, 0.25, 1.0, 1.0]
    """
    return polynomial(init_value, end_value, 1, transition_steps, transition_begin)


@checked_arguments
@c.checked_values
def exponential_decay(
    init_value: ArrayLike,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Exponential decay, optionally staircased and clipped at ``end_value``.

    .. math::
        s = t - t_0, \qquad
        v_t = \begin{cases} v_0 & s \le 0 \\
        v_0\, r^{s/T}\ (\text{or } r^{\lfloor s/T \rfloor} \text{ staircase}) & s > 0
        \end{cases}

    then clipped from below by ``end_value`` when ``r < 1`` (from above when ``r > 1``).

    Args:
        init_value: :math:`v_0`.
        transition_steps: :math:`T > 0`.
        decay_rate: :math:`r > 0` (concrete).
        transition_begin: :math:`t_0 \ge 0`.
        staircase: decay in discrete jumps every ``transition_steps``.
        end_value: optional bound on the value.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
        >>> [round(float(fn(t)), 4) for t in (0, 5, 10, 20)]
        [1.0, 0.7071, 0.5, 0.25]

    References:
        optax, ``exponential_decay``.
    """
    steps = c.positive(transition_steps, "transition_steps")
    rate = c.positive(decay_rate, "decay_rate")
    begin = c.non_negative(transition_begin, "transition_begin")

    def schedule(step):
        s = c.as_step(step) - begin
        p = s / steps
        if staircase:
            p = jnp.floor(p)
        v0 = c.value(init_value)
        out = jnp.where(s <= 0, v0, v0 * c.value(rate) ** p)
        if end_value is not None:
            clip = jnp.maximum if rate < 1.0 else jnp.minimum
            out = clip(out, c.value(end_value))
        return out

    return schedule


@c.checked_values
def cosine_decay(
    init_value: ArrayLike, decay_steps: float, alpha: ArrayLike = 0.0, exponent: ArrayLike = 1.0
) -> Schedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value``, then constant.

    .. math::
        s = \min(t, T), \qquad
        v_t = v_0 \left((1 - \alpha) \left(\tfrac{1 + \cos(\pi s / T)}{2}\right)^{e}
        + \alpha\right)

    Args:
        init_value: :math:`v_0`.
        decay_steps: :math:`T > 0`.
        alpha: :math:`\alpha`, the final value as a fraction of ``init_value``.
        exponent: :math:`e \ge 0`.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cosine_decay(1.0, decay_steps=10, alpha=0.1)
        >>> [round(float(fn(t)), 4) for t in (0, 5, 10, 20)]
        [1.0, 0.55, 0.1, 0.1]

    References:
        Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
        <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    steps = c.positive(decay_steps, "decay_steps")
    if _validate.concrete(exponent) is not None:  # a negative one gives inf at the end
        c.non_negative(exponent, "exponent")

    def schedule(step):
        s = jnp.minimum(c.as_step(step), steps)
        cos = 0.5 * (1.0 + jnp.cos(jnp.pi * s / steps))
        a = c.value(alpha)
        return c.value(init_value) * ((1.0 - a) * cos ** c.value(exponent) + a)

    return schedule


def _sorted_scales(
    boundaries_and_scales: Mapping[int, float] | None, who: str
) -> tuple[list[float], list[float]]:
    if boundaries_and_scales is not None and not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            f"{who}: boundaries_and_scales must be a dict {{step: scale}} or None, got "
            f"{type(boundaries_and_scales).__name__} {boundaries_and_scales!r}."
        )
    if not boundaries_and_scales:
        return [], []
    items = sorted(boundaries_and_scales.items())
    bounds = [c.non_negative(b, "boundaries_and_scales") for b, _ in items]
    scales = [c.number(s, "boundaries_and_scales") for _, s in items]
    for s in scales:
        if not s >= 0:
            raise ValueError(
                f"Invalid boundaries_and_scales value: {dict(items)} ({who} "
                "expects non-negative scale factors)"
            )
    return bounds, scales


@c.checked_values
def piecewise_constant(
    init_value: ArrayLike, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    r"""Piecewise constant: multiplied by each scale once its boundary is reached.

    .. math:: v_t = v_0 \prod_{i:\ b_i \le t} s_i

    Args:
        init_value: :math:`v_0`.
        boundaries_and_scales: ``{b_i: s_i}``, boundaries ``>= 0`` and scales ``>= 0``.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.piecewise_constant(1.0, {3: 0.5, 6: 0.1})
        >>> [round(float(fn(t)), 4) for t in (0, 3, 5, 6)]
        [1.0, 0.5, 0.5, 0.05]
    """
    bounds, scales = _sorted_scales(boundaries_and_scales, "piecewise_constant")

    def schedule(step):
        t = c.as_step(step)
        v = c.value(init_value) + jnp.zeros_like(t)
        for b, s in zip(bounds, scales, strict=True):
            v = jnp.where(t >= b, v * s, v)
        return v

    return schedule


@c.checked_values
def piecewise_interpolate(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    r"""Interpolates (linearly or by a half cosine) between scaled values at boundaries.

    With :math:`b_0 = 0`, :math:`v_{(0)} = v_0` and :math:`v_{(i)} = v_{(i-1)} s_i`,
    on :math:`b_{i-1} \le t < b_i` the value goes from :math:`v_{(i-1)}` to
    :math:`v_{(i)}` with :math:`p = (t - b_{i-1}) / \max(b_i - b_{i-1}, 1)`:

    .. math::
        \text{linear: } v_{(i-1)} + (v_{(i)} - v_{(i-1)})\,p, \qquad
        \text{cosine: } v_{(i)} + \tfrac{v_{(i-1)} - v_{(i)}}{2}(1 + \cos \pi p)

    and it is :math:`v_{(n)}` from the last boundary on. As in optax, the value is
    0 for negative steps.

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: :math:`v_0`.
        boundaries_and_scales: ``{b_i: s_i}``, boundaries ``>= 0`` and scales ``>= 0``.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.piecewise_interpolate("linear", 1.0, {4: 0.5})
        >>> [round(float(fn(t)), 4) for t in (0, 2, 4, 8)]
        [1.0, 0.75, 0.5, 0.5]
    """
    c.choice(interpolate_type, "interpolate_type", ("linear", "cosine"))
    interp = c.linear_anneal if interpolate_type == "linear" else c.cosine_anneal
    bounds, scales = _sorted_scales(boundaries_and_scales, "piecewise_interpolate")
    edges = [0.0, *bounds]

    def schedule(step):
        t = c.as_step(step)
        vals = [c.value(init_value)]
        for s in scales:
            vals.append(vals[-1] * s)
        out = jnp.where(edges[-1] <= t, vals[-1], jnp.zeros_like(vals[-1]))
        for i in range(len(bounds)):
            lo, hi = edges[i], edges[i + 1]
            pct = (t - lo) / max(hi - lo, 1.0)
            inside = (lo <= t) & (t < hi)
            out = jnp.where(inside, interp(vals[i], vals[i + 1], pct), out)
        return out

    return schedule
