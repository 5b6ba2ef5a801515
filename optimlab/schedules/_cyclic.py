"""Cyclical schedules: torch's CyclicLR and OneCycleLR (rate, momentum), optax's one-cycles."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._core._types import ArrayLike, Schedule
from .._core._validate import checked_arguments
from . import _common as c
from ._optax_set import piecewise_interpolate

__all__ = [
    "cyclic",
    "cyclic_momentum",
    "one_cycle",
    "one_cycle_momentum",
    "cosine_onecycle",
    "linear_onecycle",
]

_MODES = ("triangular", "triangular2", "exp_range")


def _cyclic_shape(
    step_size_up: float,
    step_size_down: float | None,
    mode: str,
    gamma: float,
    scale_fn: Callable[[jax.Array], ArrayLike] | None,
    scale_mode: str,
) -> Callable[[jax.Array], jax.Array]:
    """``step -> height``: the triangle's height in [0, 1] times the amplitude scale."""
    up = c.positive(step_size_up, "step_size_up")
    down = up if step_size_down is None else c.non_negative(step_size_down, "step_size_down")
    total = up + down
    ratio = up / total
    if scale_fn is None:
        c.choice(mode, "mode", _MODES)
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
        if mode == "triangular":
            scale_fn = lambda x: jnp.ones_like(x)
        elif mode == "triangular2":
            scale_fn = lambda x: 1.0 / 2.0 ** (x - 1.0)
        else:
            c.positive(gamma, "gamma")
            scale_fn = lambda x: c.value(gamma) ** x
    else:
        c.schedule_fn(scale_fn, "scale_fn")
        c.choice(scale_mode, "scale_mode", ("cycle", "iterations"))
    fn = scale_fn

    def height(t):
        t = c.as_step(t)
        whole = jnp.floor(t / total)
        cycle = whole + 1.0
        x = (t - whole * total) / total  # = 1 + t/L - c, reduced first to stay exact at large t
        rising = x <= ratio
        factor = jnp.where(rising, x / ratio, (x - 1.0) / (ratio - 1.0 if ratio != 1.0 else -1.0))
        amp = c.value(fn(cycle if scale_mode == "cycle" else t))
        return factor * amp

    return height


@c.checked_values
def cyclic(
    base_lr: ArrayLike,
    max_lr: ArrayLike,
    step_size_up: float = 2000,
    step_size_down: float | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], ArrayLike] | None = None,
    scale_mode: str = "cycle",
) -> Schedule:
    r"""torch's ``CyclicLR``: a triangle wave between ``base_lr`` and ``max_lr``.

    With :math:`L = u + d` steps per cycle and :math:`r = u / L`:

    .. math::
        c = \lfloor 1 + t/L \rfloor, \quad x = 1 + t/L - c, \quad
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases} \\
        \eta_t = \eta_b + (\eta_m - \eta_b)\, h\, \sigma(c \text{ or } t)

    with the amplitude scale :math:`\sigma` of the mode: ``triangular``
    :math:`\sigma = 1`; ``triangular2`` :math:`\sigma(c) = 2^{1-c}`; ``exp_range``
    :math:`\sigma(t) = \gamma^t`; or a custom ``scale_fn`` of the cycle number
    (``scale_mode="cycle"``) or of the step (``"iterations"``), which then
    overrides ``mode``.

    Args:
        base_lr: :math:`\eta_b`, the lower bound.
        max_lr: :math:`\eta_m`, the upper bound.
        step_size_up: :math:`u > 0`, steps rising.
        step_size_down: :math:`d \ge 0`, steps falling (default: :math:`u`).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: :math:`\gamma > 0` of ``exp_range``.
        scale_fn: optional custom amplitude scale, written with ``jax.numpy``.
        scale_mode: ``"cycle"`` or ``"iterations"``, the argument of ``scale_fn``.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cyclic(0.1, 1.0, step_size_up=2, mode="triangular2")
        >>> [round(float(fn(t)), 3) for t in range(7)]
        [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55]

    References:
        Smith, `Cyclical Learning Rates for Training Neural Networks
        <https://arxiv.org/abs/1506.01186>`_, 2017.
    """
    height = _cyclic_shape(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(t):
        lo = c.value(base_lr)
        return lo + (c.value(max_lr) - lo) * height(t)

    return schedule


@c.checked_values
def cyclic_momentum(
    base_momentum: ArrayLike = 0.8,
    max_momentum: ArrayLike = 0.9,
    step_size_up: float = 2000,
    step_size_down: float | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], ArrayLike] | None = None,
    scale_mode: str = "cycle",
) -> Schedule:
    r"""The momentum that torch's ``CyclicLR`` cycles inversely to the learning rate.

    .. math:: \mu_t = \mu_m - (\mu_m - \mu_b)\, h\, \sigma

    with :math:`h` and :math:`\sigma` as in :func:`cyclic`. Give it to any
    momentum-like hyperparameter (``sgd``'s ``momentum``, ``adam``'s ``b1``).

    Args:
        base_momentum: :math:`\mu_b`, reached at the learning rate's peak.
        max_momentum: :math:`\mu_m`, at the start of each cycle.
        step_size_up: as in :func:`cyclic`.
        step_size_down: as in :func:`cyclic`.
        mode: as in :func:`cyclic`.
        gamma: as in :func:`cyclic`.
        scale_fn: as in :func:`cyclic`.
        scale_mode: as in :func:`cyclic`.

    Returns:
        A schedule ``step -> momentum``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cyclic_momentum(0.8, 0.9, step_size_up=2)
        >>> [round(float(fn(t)), 3) for t in range(5)]
        [0.9, 0.85, 0.8, 0.85, 0.9]

    References:
        Smith, `A disciplined approach to neural network hyper-parameters
        <https://arxiv.org/abs/1803.09820>`_, 2018.
    """
    height = _cyclic_shape(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(t):
        hi = c.value(max_momentum)
        return hi - (hi - c.value(base_momentum)) * height(t)

    return schedule


def _phases(total_steps: int, pct_start: float, three_phase: bool) -> tuple[int, list[float]]:
    total = c.positive_int(total_steps, "total_steps")
    c.in_range(pct_start, "pct_start", 0.0, 1.0)
    p = float(pct_start)
    ends = (
        [p * total - 1, 2 * p * total - 2, total - 1.0]
        if three_phase
        else [p * total - 1, total - 1.0]
    )
    starts = [0.0, *ends[:-1]]
    for s, e in zip(starts, ends, strict=True):
        if s == e:
            raise ValueError(
                f"Invalid pct_start value: {pct_start} (a phase of {total} "
                "total_steps would have zero length)"
            )
    return total, ends


def _one_cycle(
    values: list[tuple[jax.Array, jax.Array]],
    total: int,
    ends: list[float],
    anneal: Callable[..., jax.Array],
    t: jax.Array,
) -> jax.Array:
    t = jnp.clip(c.as_step(t), 0.0, float(total))
    out = None
    for i in reversed(range(len(ends))):
        start = 0.0 if i == 0 else ends[i - 1]
        pct = (t - start) / (ends[i] - start)
        v = anneal(values[i][0], values[i][1], pct)
        out = v if out is None else jnp.where(t <= ends[i], v, out)
    assert out is not None
    return out


@checked_arguments
@c.checked_values
def one_cycle(
    max_lr: ArrayLike,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    r"""torch's ``OneCycleLR``: warm up to ``max_lr``, then anneal far below the start.

    With :math:`\eta_0 = \eta_m / d` and :math:`\eta_{\min} = \eta_0 / f`, the
    phases end at :math:`e_1 = \rho N - 1` (the peak, as torch) and
    :math:`e_2 = N - 1` (three-phase: :math:`e_2 = 2\rho N - 2`, :math:`e_3 = N - 1`).
    In the phase :math:`(e_{i-1}, e_i]` containing :math:`t` (:math:`e_0 = 0`), with
    :math:`p = (t - e_{i-1}) / (e_i - e_{i-1})`:

    .. math::
        \eta_t = \operatorname{anneal}(a_i, b_i, p), \quad
        \text{cos: } b + \tfrac{a - b}{2}(1 + \cos \pi p), \quad
        \text{linear: } a + (b - a)\, p

    from :math:`\eta_0` to :math:`\eta_m` then to :math:`\eta_{\min}` (three-phase:
    :math:`\eta_0 \to \eta_m \to \eta_0 \to \eta_{\min}`). Step :math:`N` is
    evaluated as torch does (the last phase continued one step); torch refuses
    later steps, this schedule holds the value of step :math:`N` there.

    Args:
        max_lr: :math:`\eta_m`.
        total_steps: :math:`N > 0` (torch's ``epochs * steps_per_epoch``).
        pct_start: :math:`\rho \in [0, 1]`.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        div_factor: :math:`d > 0`.
        final_div_factor: :math:`f > 0`.
        three_phase: use torch's three-phase variant.

    Returns:
        A schedule ``step -> learning rate``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.one_cycle(1.0, total_steps=10, pct_start=0.2, div_factor=10.0,
        ...                          anneal_strategy="linear")
        >>> [round(float(fn(t)), 3) for t in (0, 1, 3, 9)]
        [0.1, 1.0, 0.75, 0.0]

    References:
        Smith & Topin, `Super-Convergence <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    total, ends = _phases(total_steps, pct_start, three_phase)
    c.choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))
    d = c.positive(div_factor, "div_factor")
    f = c.positive(final_div_factor, "final_div_factor")
    anneal = c.cosine_anneal if anneal_strategy == "cos" else c.linear_anneal

    def schedule(t):
        peak = c.value(max_lr)
        initial = peak / d
        low = initial / f
        values = (
            [(initial, peak), (peak, initial), (initial, low)]
            if three_phase
            else [(initial, peak), (peak, low)]
        )
        return _one_cycle(values, total, ends, anneal, t)

    return schedule


@checked_arguments
@c.checked_values
def one_cycle_momentum(
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    base_momentum: ArrayLike = 0.85,
    max_momentum: ArrayLike = 0.95,
    three_phase: bool = False,
) -> Schedule:
    r"""The momentum that torch's ``OneCycleLR`` anneals inversely to the learning rate.

    Same phases and annealing as :func:`one_cycle`, from :math:`\mu_m` down to
    :math:`\mu_b` at the peak, then back to :math:`\mu_m` (three-phase: held at
    :math:`\mu_m` in the last phase). Give it to any momentum-like hyperparameter.

    Args:
        total_steps: :math:`N > 0`.
        pct_start: :math:`\rho \in [0, 1]`.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        base_momentum: :math:`\mu_b`.
        max_momentum: :math:`\mu_m`.
        three_phase: use torch's three-phase variant.

    Returns:
        A schedule ``step -> momentum``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.one_cycle_momentum(10, pct_start=0.2, anneal_strategy="linear")
        >>> [round(float(fn(t)), 3) for t in (0, 1, 9)]
        [0.95, 0.85, 0.95]

    References:
        Smith, `A disciplined approach to neural network hyper-parameters
        <https://arxiv.org/abs/1803.09820>`_, 2018.
    """
    total, ends = _phases(total_steps, pct_start, three_phase)
    c.choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))
    anneal = c.cosine_anneal if anneal_strategy == "cos" else c.linear_anneal

    def schedule(t):
        lo, hi = c.value(base_momentum), c.value(max_momentum)
        values = [(hi, lo), (lo, hi), (hi, hi)] if three_phase else [(hi, lo), (lo, hi)]
        return _one_cycle(values, total, ends, anneal, t)

    return schedule


@c.checked_values
def cosine_onecycle(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""optax's one-cycle with cosine interpolation (see :func:`one_cycle` for torch's).

    A :func:`piecewise_interpolate` ``"cosine"`` schedule from :math:`v_p / d` up to
    :math:`v_p` at step :math:`\lfloor \rho T \rfloor`, then down to
    :math:`v_p / (d f)` at step :math:`T`, constant afterwards.

    Args:
        transition_steps: :math:`T > 0`.
        peak_value: :math:`v_p`.
        pct_start: :math:`\rho`, fraction of the steps spent increasing.
        div_factor: :math:`d > 0`.
        final_div_factor: :math:`f > 0`.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.cosine_onecycle(10, 1.0, pct_start=0.5, div_factor=10.0)
        >>> [round(float(fn(t)), 4) for t in (0, 5, 10)]
        [0.1, 1.0, 0.0]

    References:
        Smith & Topin, `Super-Convergence <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    steps = c.positive_int(transition_steps, "transition_steps")
    c.in_range(pct_start, "pct_start", 0.0, 1.0, lo_open=True, hi_open=True)
    d = c.positive(div_factor, "div_factor")
    f = c.positive(final_div_factor, "final_div_factor")
    if not 0 < int(pct_start * steps) < steps:
        raise ValueError(
            f"Invalid pct_start value: {pct_start} (int(pct_start * "
            f"transition_steps) must lie strictly between 0 and {steps})"
        )
    return _scaled_interpolate(
        "cosine", peak_value, d, {int(pct_start * steps): d, steps: 1.0 / (d * f)}
    )


@c.checked_values
def linear_onecycle(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""optax's one-cycle with linear interpolation (see :func:`one_cycle` for torch's).

    A :func:`piecewise_interpolate` ``"linear"`` schedule from :math:`v_p / d` up to
    :math:`v_p` at :math:`\lfloor \rho_s T \rfloor`, back to :math:`v_p / d` at
    :math:`\lfloor \rho_f T \rfloor`, then to :math:`v_p / (d f)` at :math:`T`.

    Args:
        transition_steps: :math:`T > 0`.
        peak_value: :math:`v_p`.
        pct_start: :math:`\rho_s`.
        pct_final: :math:`\rho_f > \rho_s`.
        div_factor: :math:`d > 0`.
        final_div_factor: :math:`f > 0`.

    Returns:
        A schedule ``step -> value``.

    Examples:
        >>> from optimlab import schedules
        >>> fn = schedules.linear_onecycle(10, 1.0, 0.2, 0.6, div_factor=10.0)
        >>> [round(float(fn(t)), 4) for t in (0, 2, 6, 10)]
        [0.1, 1.0, 0.1, 0.0]

    References:
        Smith & Topin, `Super-Convergence <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    steps = c.positive_int(transition_steps, "transition_steps")
    c.in_range(pct_start, "pct_start", 0.0, 1.0, lo_open=True, hi_open=True)
    c.in_range(pct_final, "pct_final", 0.0, 1.0, lo_open=True, hi_open=True)
    d = c.positive(div_factor, "div_factor")
    f = c.positive(final_div_factor, "final_div_factor")
    a, b = int(pct_start * steps), int(pct_final * steps)
    if not 0 < a < b < steps:
        raise ValueError(
            f"Invalid pct_final value: {pct_final} (need 0 < int(pct_start * T) "
            f"< int(pct_final * T) < T, got {a}, {b}, {steps})"
        )
    return _scaled_interpolate("linear", peak_value, d, {a: d, b: 1.0 / d, steps: 1.0 / f})


def _scaled_interpolate(
    kind: str, peak_value: ArrayLike, div: float, scales: dict[int, float]
) -> Schedule:
    def start(step):
        del step
        return c.value(peak_value) / div

    def schedule(step):
        return piecewise_interpolate(kind, start(step), scales)(step)

    return schedule
