"""Combinators: ``join`` (optax), ``sequential`` (SequentialLR), ``chained`` (ChainedScheduler)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from .._core._types import Schedule
from . import _common as c

__all__ = ["join", "sequential", "chained"]


@c.checked_values
def join(schedules: Sequence[Schedule], boundaries: Sequence[float]) -> Schedule:
    r"""Runs schedules one after another, each restarted from 0 at its boundary.

    With boundaries :math:`b_1 < \dots < b_{n-1}` and :math:`b_0 = 0`:

    .. math:: v_t = f_i(t - b_i) \quad \text{for } b_i \le t < b_{i+1}

    (before :math:`b_1`, :math:`f_0(t)` for every :math:`t`, negative included), as
    ``optax.join_schedules``.

    Args:
        schedules: the :math:`n` schedules.
        boundaries: the :math:`n - 1` steps where the next schedule starts,
            non-negative and strictly increasing.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.join([schedules.constant(1.0),
        ...                      schedules.linear(1.0, 0.0, 4)], [2])
        >>> [round(float(fn(t)), 2) for t in (0, 1, 2, 4, 6)]
        [1.0, 1.0, 1.0, 0.5, 0.0]
    """
    fns = [c.schedule_fn(f, "schedules") for f in c.sequence(schedules, "schedules")]
    if not fns:
        raise ValueError("Invalid schedules value: [] (must hold at least one schedule)")
    boundaries = c.sequence(boundaries, "boundaries")
    if len(boundaries) != len(fns) - 1:
        raise ValueError(
            f"Invalid boundaries value: {list(boundaries)} (expected "
            f"{len(fns) - 1} boundaries for {len(fns)} schedules)"
        )
    bounds = c.boundaries(boundaries, "boundaries", strict=True)

    def schedule(step):
        t = c.as_step(step)
        out = c.value(fns[0](t))
        for b, fn in zip(bounds, fns[1:], strict=True):
            out = jnp.where(t < b, out, c.value(fn(t - b)))
        return out

    return schedule


@c.checked_values
def sequential(schedules: Sequence[Schedule], milestones: Sequence[int]) -> Schedule:
    r"""torch's ``SequentialLR``: schedule :math:`i` runs from milestone :math:`i`, restarted.

    .. math:: v_t = f_i(t - m_i), \quad i = \#\{j : m_j \le t\},\ m_0 = 0

    The same closed form as :func:`join`; ``SequentialLR(opt, [s_0, s_1], [m])``
    maps onto ``sequential([f_0, f_1], [m])`` where each :math:`f_i` is the
    function of the scheduler :math:`s_i` built with the same base learning rate.
    (torch restarts each scheduler with its closed form at its milestone, so
    recursive schedulers without a closed form, like ``MultiplicativeLR``, are the
    exception: torch multiplies the previous scheduler's last value there.)

    Args:
        schedules: the schedules (absolute values or factors alike).
        milestones: ``len(schedules) - 1`` steps, non-negative, strictly increasing.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> warm = schedules.linear_factor(0.1, 1.0, total_iters=2)
        >>> fn = schedules.sequential([warm, schedules.exponential(1.0, 0.5)], [2])
        >>> [round(float(fn(t)), 3) for t in range(5)]
        [0.1, 0.55, 1.0, 0.5, 0.25]

    References:
        PyTorch, ``torch.optim.lr_scheduler.SequentialLR``.
    """
    fns = [c.schedule_fn(f, "schedules") for f in c.sequence(schedules, "schedules")]
    if not fns:
        raise ValueError("Invalid schedules value: [] (must hold at least one schedule)")
    milestones = c.sequence(milestones, "milestones")
    if len(milestones) != len(fns) - 1:
        raise ValueError(
            f"Invalid milestones value: {milestones} (expected "
            f"{len(fns) - 1} milestones for {len(fns)} schedules)"
        )
    c.boundaries(milestones, "milestones", strict=True)  # named here, not by join
    return join(fns, milestones)


@c.checked_values
def chained(*factors: Schedule) -> Schedule:
    r"""torch's ``ChainedScheduler``: the product of multiplicative factors.

    .. math:: v_t = \prod_k f_k(t)

    Each :math:`f_k` is a factor (a ``*_factor`` schedule, :func:`multiplicative`,
    or a torch-set schedule built with ``base_lr=1.0``); multiply the result by the
    base learning rate. This equals torch whenever each chained scheduler updates
    the learning rate multiplicatively (``StepLR``, ``MultiStepLR``, ``ConstantLR``,
    ``LinearLR``, ``ExponentialLR``, ``PolynomialLR``, ``MultiplicativeLR``).

    Args:
        *factors: the factor schedules.

    Returns:
        A schedule ``step -> factor``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.chained(schedules.constant_factor(0.5, total_iters=2),
        ...                        schedules.exponential(1.0, gamma=0.9))
        >>> [round(float(fn(t)), 4) for t in range(4)]
        [0.5, 0.45, 0.81, 0.729]

    References:
        PyTorch, ``torch.optim.lr_scheduler.ChainedScheduler``.
    """
    fns = [c.schedule_fn(f, "factors") for f in factors]
    if not fns:
        raise ValueError("Invalid factors value: () (must hold at least one schedule)")

    def schedule(step):
        t = c.as_step(step)
        out = c.value(fns[0](t))
        for fn in fns[1:]:
            out = out * c.value(fn(t))
        return out

    return schedule
