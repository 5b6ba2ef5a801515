"""Closed forms of torch's learning-rate schedulers (private).

Absolute schedules take the base value first (``base_lr``, torch's ``initial_lr``)
and return the learning rate; the ``*_factor``, ``lambda_factor`` and
``multiplicative`` schedules return a factor the base value is multiplied by. A
torch scheduler ``Sched(optimizer, **kw)`` maps onto one call ``sched(base_lr, **kw)``
evaluated at ``step = last_epoch``; building an absolute schedule with
``base_lr=1.0`` gives its factor (for :func:`~optimlab.schedules.chained`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core._types import ArrayLike, Schedule
from . import _common as c

__all__ = [
    "step",
    "multistep",
    "constant_factor",
    "linear_factor",
    "exponential",
    "cosine_annealing",
    "cosine_annealing_warm_restarts",
    "polynomial_decay",
    "lambda_factor",
    "multiplicative",
    "swa_anneal",
]


@c.checked_values
def step(base_lr: ArrayLike, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""torch's ``StepLR``: decays by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}

    Args:
        base_lr: :math:`\eta_0`.
        step_size: :math:`s > 0`.
        gamma: :math:`\gamma \ge 0`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.step(1.0, step_size=2, gamma=0.5)
        >>> [round(float(fn(t)), 3) for t in range(5)]
        [1.0, 1.0, 0.5, 0.5, 0.25]

    References:
        PyTorch, ``torch.optim.lr_scheduler.StepLR``.
    """
    s = c.positive(step_size, "step_size")
    c.non_negative(gamma, "gamma")

    def schedule(t):
        t = c.as_step(t)
        return c.value(base_lr) * c.value(gamma) ** jnp.floor(t / s)

    return schedule


@c.checked_values
def multistep(base_lr: ArrayLike, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""torch's ``MultiStepLR``: decays by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0\, \gamma^{\#\{i : m_i \le t\}}

    A milestone repeated :math:`k` times decays by :math:`\gamma^k` (as torch).

    Args:
        base_lr: :math:`\eta_0`.
        milestones: non-negative, non-decreasing steps.
        gamma: :math:`\gamma \ge 0`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.multistep(1.0, [2, 4, 4], gamma=0.5)
        >>> [round(float(fn(t)), 3) for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.125, 0.125]

    References:
        PyTorch, ``torch.optim.lr_scheduler.MultiStepLR``.
    """
    ms = c.boundaries(milestones, "milestones", strict=False)
    c.non_negative(gamma, "gamma")

    def schedule(t):
        t = c.as_step(t)
        n = jnp.zeros_like(t)
        for m in ms:
            n = n + (t >= m).astype(t.dtype)
        return c.value(base_lr) * c.value(gamma) ** n

    return schedule


@c.checked_values
def constant_factor(factor: float = 1.0 / 3, total_iters: int = 5) -> Schedule:
    r"""torch's ``ConstantLR`` as a factor: ``factor`` until ``total_iters``, then 1.

    .. math:: f_t = \begin{cases} \phi & t < T \\ 1 & t \ge T \end{cases}

    Args:
        factor: :math:`\phi \in (0, 1]`.
        total_iters: :math:`T > 0`.

    Returns:
        A schedule ``step -> factor`` (multiply by the base learning rate).

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.constant_factor(0.5, total_iters=2)
        >>> [float(fn(t)) for t in range(4)]
        [0.5, 0.5, 1.0, 1.0]

    References:
        PyTorch, ``torch.optim.lr_scheduler.ConstantLR``.
    """
    c.in_range(factor, "factor", 0.0, 1.0, lo_open=True)
    total = c.positive_int(total_iters, "total_iters")

    def schedule(t):
        t = c.as_step(t)
        phi = c.value(factor)
        return jnp.where(t >= total, jnp.ones_like(phi), phi)

    return schedule


@c.checked_values
def linear_factor(
    start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> Schedule:
    r"""torch's ``LinearLR`` as a factor: linear from ``start_factor`` to ``end_factor``.

    .. math:: f_t = \phi_0 + (\phi_1 - \phi_0)\, \min(t, T) / T

    Args:
        start_factor: :math:`\phi_0 \in (0, 1]`.
        end_factor: :math:`\phi_1 \in [0, 1]`.
        total_iters: :math:`T > 0`.

    Returns:
        A schedule ``step -> factor``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.linear_factor(0.5, 1.0, total_iters=2)
        >>> [float(fn(t)) for t in range(4)]
        [0.5, 0.75, 1.0, 1.0]

    References:
        PyTorch, ``torch.optim.lr_scheduler.LinearLR``.
    """
    c.in_range(start_factor, "start_factor", 0.0, 1.0, lo_open=True)
    c.in_range(end_factor, "end_factor", 0.0, 1.0)
    total = c.positive_int(total_iters, "total_iters")

    def schedule(t):
        t = c.as_step(t)
        a, b = c.value(start_factor), c.value(end_factor)
        return a + (b - a) * jnp.minimum(t, total) / total

    return schedule


@c.checked_values
def exponential(base_lr: ArrayLike, gamma: float) -> Schedule:
    r"""torch's ``ExponentialLR``: :math:`\eta_t = \eta_0\, \gamma^t`.

    Args:
        base_lr: :math:`\eta_0`.
        gamma: :math:`\gamma > 0`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.exponential(1.0, gamma=0.5)
        >>> [float(fn(t)) for t in range(4)]
        [1.0, 0.5, 0.25, 0.125]

    References:
        PyTorch, ``torch.optim.lr_scheduler.ExponentialLR``.
    """
    c.positive(gamma, "gamma")

    def schedule(t):
        return c.value(base_lr) * c.value(gamma) ** c.as_step(t)

    return schedule


@c.checked_values
def cosine_annealing(base_lr: ArrayLike, T_max: int, eta_min: ArrayLike = 0.0) -> Schedule:
    r"""torch's ``CosineAnnealingLR``, a cosine of period :math:`2T` (past ``T_max`` too).

    .. math::
        \eta_t = \eta_{\min} + \frac{\eta_0 - \eta_{\min}}{2}
        \left(1 + \cos\frac{\pi t}{T}\right)

    torch computes this recursively,
    :math:`\eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
    \frac{1 + \cos(\pi t / T)}{1 + \cos(\pi (t-1) / T)}`, adding
    :math:`(\eta_0 - \eta_{\min})(1 - \cos(\pi/T))/2` instead where the
    denominator vanishes (:math:`t - 1 \equiv T \bmod 2T`). Both rules hold for the
    closed form at every step, so past ``T_max`` torch's learning rate climbs back
    to :math:`\eta_0` at :math:`2T` and keeps oscillating; this schedule does the
    same (it does not stop at ``eta_min`` like optax's ``cosine_decay``).

    Args:
        base_lr: :math:`\eta_0`.
        T_max: :math:`T > 0`, the half period.
        eta_min: :math:`\eta_{\min}`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cosine_annealing(1.0, T_max=4)
        >>> [round(float(fn(t)), 4) for t in (0, 2, 4, 6, 8)]
        [1.0, 0.5, 0.0, 0.5, 1.0]

    References:
        Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
        <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    T = c.positive(T_max, "T_max")

    def schedule(t):
        t = c.as_step(t)
        t = t - 2 * T * jnp.floor(t / (2 * T))  # exact period reduction keeps cos accurate
        lo = c.value(eta_min)
        return lo + (c.value(base_lr) - lo) * (1.0 + jnp.cos(jnp.pi * t / T)) / 2.0

    return schedule


@c.checked_values
def cosine_annealing_warm_restarts(
    base_lr: ArrayLike, T_0: int, T_mult: int = 1, eta_min: ArrayLike = 0.0
) -> Schedule:
    r"""torch's ``CosineAnnealingWarmRestarts`` (SGDR), fractional epochs included.

    Cycle :math:`n` has length :math:`T_i = T_0 T_m^n` and starts at
    :math:`S_n = T_0 (T_m^n - 1)/(T_m - 1)` (:math:`n T_0` when :math:`T_m = 1`);
    with :math:`n` the cycle containing :math:`t` and :math:`T_{cur} = t - S_n`:

    .. math::
        \eta_t = \eta_{\min} + \frac{\eta_0 - \eta_{\min}}{2}
        \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    The step may be fractional (torch's ``step(epoch=1.5)``).

    Args:
        base_lr: :math:`\eta_0`.
        T_0: :math:`T_0`, a positive integer, the first cycle's length.
        T_mult: :math:`T_m`, an integer ``>= 1``, the growth of each cycle.
        eta_min: :math:`\eta_{\min}`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cosine_annealing_warm_restarts(1.0, T_0=2, T_mult=2)
        >>> [round(float(fn(t)), 4) for t in range(7)]
        [1.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 1.0]

    References:
        Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
        <https://arxiv.org/abs/1608.03983>`_, 2017.
    """
    t0 = float(c.positive_int(T_0, "T_0"))
    m = float(c.positive_int(T_mult, "T_mult"))

    def schedule(t):
        t = jnp.maximum(c.as_step(t), 0.0)
        if m == 1.0:
            n = jnp.floor(t / t0)
            t_i = jnp.full_like(t, t0)
        else:
            n = jnp.floor(jnp.log(t / t0 * (m - 1.0) + 1.0) / math.log(m))
            start = lambda k: t0 * (m**k - 1.0) / (m - 1.0)
            n = jnp.where(start(n + 1.0) <= t, n + 1.0, n)  # repair log rounding
            n = jnp.where(start(n) > t, n - 1.0, n)
            t_i = t0 * m**n
        t_cur = t - (n * t0 if m == 1.0 else t0 * (m**n - 1.0) / (m - 1.0))
        lo = c.value(eta_min)
        return lo + (c.value(base_lr) - lo) * (1.0 + jnp.cos(jnp.pi * t_cur / t_i)) / 2.0

    return schedule


@c.checked_values
def polynomial_decay(base_lr: ArrayLike, total_iters: int = 5, power: float = 1.0) -> Schedule:
    r"""torch's ``PolynomialLR``: polynomial decay to 0 over ``total_iters`` steps.

    .. math:: \eta_t = \eta_0 \left(1 - \min(t, T)/T\right)^{p}

    Args:
        base_lr: :math:`\eta_0`.
        total_iters: :math:`T > 0`.
        power: :math:`p \ge 0`.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.polynomial_decay(1.0, total_iters=4, power=2.0)
        >>> [round(float(fn(t)), 4) for t in range(6)]
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]

    References:
        PyTorch, ``torch.optim.lr_scheduler.PolynomialLR``.
    """
    total = c.positive_int(total_iters, "total_iters")
    c.non_negative(power, "power")

    def schedule(t):
        t = c.as_step(t)
        # (T - min(t, T)) / T is exactly 0 at T, even where XLA divides by a reciprocal.
        return c.value(base_lr) * ((total - jnp.minimum(t, total)) / total) ** c.value(power)

    return schedule


@c.checked_values
def lambda_factor(lr_lambda: Callable[[jax.Array], ArrayLike]) -> Schedule:
    r"""torch's ``LambdaLR`` as a factor: :math:`f_t = \lambda(t)`.

    ``lr_lambda`` receives the step as a floating array (holding torch's integer
    epoch; possibly traced), so it must be written with ``jax.numpy`` (or plain
    arithmetic) to be jitted; its result is cast to the schedule dtype.

    Args:
        lr_lambda: ``step -> factor``.

    Returns:
        A schedule ``step -> factor`` (multiply by the base learning rate).

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.lambda_factor(lambda t: 0.5 ** (t // 2))
        >>> [float(fn(t)) for t in range(4)]
        [1.0, 1.0, 0.5, 0.5]

    References:
        PyTorch, ``torch.optim.lr_scheduler.LambdaLR``.
    """
    fn = c.schedule_fn(lr_lambda, "lr_lambda")

    def schedule(t):
        t = c.as_step(t)
        return c.value(fn(t)) + jnp.zeros_like(t)

    return schedule


def _factors_table(fn: Callable[[Any], Any], n: int) -> np.ndarray:
    """``[1, fn(1), fn(1) fn(2), ...]`` (``n + 1`` running products, in float64)."""
    ks = np.arange(1, n + 1)
    try:
        vals = np.broadcast_to(np.asarray(fn(c.as_step(ks)), np.float64), ks.shape)
    except (TypeError, ValueError):
        vals = np.array([float(fn(int(k))) for k in ks], np.float64)  # a Python-only lambda
    out = np.ones(n + 1, np.float64)
    acc = 1.0
    for i, v in enumerate(vals, start=1):  # sequential products, rounded as torch's
        acc = acc * float(v)
        out[i] = acc
    return out


@c.checked_values
def multiplicative(lr_lambda: Callable[[Any], ArrayLike], num_steps: int | None = None) -> Schedule:
    r"""torch's ``MultiplicativeLR`` as a factor: the running product of ``lr_lambda``.

    .. math:: f_t = \prod_{k=1}^{t} \lambda(k) \qquad (f_t = 1 \text{ for } t \le 0)

    With ``num_steps`` the products are computed once, when the schedule is
    built (``lr_lambda`` is called on a float array of steps, or step by step
    with Python ints if it only handles scalars), and looked up: evaluation is O(1) at
    any step, and the factor stays at :math:`f_N` after ``num_steps``. Without it
    each evaluation runs a loop over :math:`k \le t` (exact at any step, O(t)
    work), so ``lr_lambda`` must then be written with ``jax.numpy``.

    Args:
        lr_lambda: ``step -> factor`` applied at each step :math:`k \ge 1`.
        num_steps: optional horizon :math:`N \ge 0` of a precomputed table.

    Returns:
        A schedule ``step -> factor`` (multiply by the base learning rate).

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.multiplicative(lambda k: 0.5, num_steps=10)
        >>> [float(fn(t)) for t in range(4)]
        [1.0, 0.5, 0.25, 0.125]

    References:
        PyTorch, ``torch.optim.lr_scheduler.MultiplicativeLR``.
    """
    fn = c.schedule_fn(lr_lambda, "lr_lambda")
    if num_steps is not None:
        n = c.positive_int(num_steps, "num_steps", minimum=0)
        table = _factors_table(fn, n)

        def lookup(t):
            t = c.as_step(t)
            idx = jnp.clip(jnp.floor(t), 0.0, float(n)).astype(jnp.int32)
            return jnp.asarray(table).astype(c.dtype())[idx]

        return lookup

    def schedule(t):
        t = c.as_step(t)
        last = jnp.maximum(jnp.floor(t), 0.0).astype(jnp.result_type(int))

        def body(k, acc):
            return acc * c.value(fn(k.astype(c.dtype())))

        one = jnp.ones((), c.dtype())
        return jax.lax.fori_loop(jnp.ones_like(last), last + 1, body, one)

    return schedule


@c.checked_values
def swa_anneal(
    base_lr: ArrayLike, swa_lr: ArrayLike, anneal_epochs: int = 10, anneal_strategy: str = "cos"
) -> Schedule:
    r"""torch's ``SWALR``: anneals from ``base_lr`` to ``swa_lr``, then holds it.

    With :math:`p = \operatorname{clip}(t / \max(1, A), 0, 1)` (and :math:`t` raised
    to at least 1 when :math:`A = 0`, so the value is ``swa_lr`` from step 0):

    .. math::
        \alpha = \tfrac{1 - \cos(\pi p)}{2}\ (\text{cos}) \text{ or } p\ (\text{linear}),
        \qquad \eta_t = \alpha\, \eta_{swa} + (1 - \alpha)\, \eta_0

    torch reaches the same values recursively, recovering :math:`\eta_0` from the
    previous learning rate at each step.

    Args:
        base_lr: :math:`\eta_0`, the optimizer's learning rate when SWA starts.
        swa_lr: :math:`\eta_{swa}`.
        anneal_epochs: :math:`A \ge 0`, an integer.
        anneal_strategy: ``"cos"`` or ``"linear"``.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.swa_anneal(1.0, 0.2, anneal_epochs=4, anneal_strategy="linear")
        >>> [round(float(fn(t)), 2) for t in range(6)]
        [1.0, 0.8, 0.6, 0.4, 0.2, 0.2]

    References:
        Izmailov et al., `Averaging Weights Leads to Wider Optima and Better
        Generalization <https://arxiv.org/abs/1803.05407>`_, 2018.
    """
    a = c.positive_int(anneal_epochs, "anneal_epochs", minimum=0)
    c.choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))

    def schedule(t):
        t = c.as_step(t)
        if a == 0:
            t = jnp.maximum(t, 1.0)
        p = jnp.clip(t / max(1, a), 0.0, 1.0)
        alpha = (1.0 - jnp.cos(jnp.pi * p)) / 2.0 if anneal_strategy == "cos" else p
        return c.value(swa_lr) * alpha + c.value(base_lr) * (1.0 - alpha)

    return schedule
