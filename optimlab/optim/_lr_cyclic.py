"""torch's cosine and cyclical schedulers over ``optimlab.schedules`` (private)."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, TypedDict

from .. import schedules
from .._core._types import Schedule
from ._lr_checks import check_epoch
from ._lr_scheduler import LRScheduler, as_lr, check_optimizer, per_group
from ._optimizer import Optimizer

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"]


class CosineAnnealingLR(LRScheduler):
    """``torch.optim.lr_scheduler.CosineAnnealingLR``: a cosine of half period ``T_max``.

    Values from :func:`optimlab.schedules.cosine_annealing` (which, as torch, keeps
    oscillating past ``T_max``). Stacked on another scheduler it rescales the
    distance of the current ``lr`` to ``eta_min`` as torch's chainable form does.

    Args:
        optimizer: the optimizer.
        T_max: the half period, in epochs.
        eta_min: the minimum learning rate.
        last_epoch: the index of the last epoch.
    """

    _keys = ("T_max", "eta_min")

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _schedule(self, base_lr: float) -> Schedule:
        return schedules.cosine_annealing(base_lr, self.T_max, self.eta_min)

    def _factor_schedule(self) -> Schedule:  # (1 + cos(pi t / T)) / 2
        return schedules.cosine_annealing(1.0, self.T_max, 0.0)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if self._is_initial:
            return lr
        if self._step_count == 1 and t > 0:
            return self._value(i, t)
        g = self._factor
        if (t - 1 - self.T_max) % (2 * self.T_max) == 0:  # g(t-1) = 0: add the rise instead
            return lr + (self.base_lrs[i] - self.eta_min) * g(t)
        return self.eta_min + (lr - self.eta_min) * g(t) / g(t - 1)


class CosineAnnealingWarmRestarts(LRScheduler):
    """``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` (SGDR).

    Keeps torch's ``T_cur`` and ``T_i`` (``step()`` advances ``T_cur`` by one,
    ``step(epoch)`` accepts fractional epochs, interleaved as in torch) and takes the
    value from :func:`optimlab.schedules.cosine_annealing_warm_restarts` at the
    position they denote.

    Args:
        optimizer: the optimizer.
        T_0: the length of the first cycle, a positive ``int``.
        T_mult: the growth of each cycle, an ``int >= 1``.
        eta_min: the minimum learning rate.
        last_epoch: the index of the last epoch.
    """

    _keys = ("T_0", "T_i", "T_mult", "eta_min", "T_cur")
    _has_closed_form = False

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}"
            )
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _schedule(self, base_lr: float) -> Schedule:
        return schedules.cosine_annealing_warm_restarts(
            base_lr, self.T_0, self.T_mult, self.eta_min
        )

    def _value(self, i: int, t: float) -> float:
        del t  # the position is (T_i, T_cur), which step() keeps as torch does
        start = 0 if self.T_mult == 1 else (self.T_i - self.T_0) // (self.T_mult - 1)
        base = self.base_lrs[i]
        return self._table(("lr", base), lambda: self._schedule(base))(start + self.T_cur)

    def step(self, epoch: float | None = None) -> None:
        """Advances ``T_cur`` by one epoch, or moves to ``epoch`` (fractional allowed).

        Args:
            epoch: ``None``, or the (possibly fractional) epoch to move to.

        Raises:
            TypeError: ``epoch`` is not a real number.
            ValueError: a negative, NaN or infinite ``epoch``.
        """
        if epoch is not None:
            epoch = check_epoch(epoch)
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._write([self._value(i, 0) for i in range(len(self.optimizer.param_groups))])


class _CyclicShape(TypedDict):
    """The keyword arguments shared by ``schedules.cyclic`` and ``cyclic_momentum``."""

    step_size_up: float
    step_size_down: float
    mode: str
    gamma: float
    scale_fn: Callable[[Any], Any] | None
    scale_mode: str


class _OneCycleShape(TypedDict):
    """The keyword arguments shared by ``schedules.one_cycle`` and ``one_cycle_momentum``."""

    total_steps: int
    pct_start: float
    anneal_strategy: str
    three_phase: bool


class _OneCycleDivs(TypedDict):
    """``schedules.one_cycle``'s ``div_factor`` and ``final_div_factor``."""

    div_factor: float
    final_div_factor: float


def _set_momentum(group: dict[str, Any], value: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class _Cycling(LRScheduler):
    """Writes a momentum (``momentum``, or ``betas[0]``) next to each learning rate."""

    _has_closed_form = False  # torch's get_lr is its closed form, with the momentum side effect
    cycle_momentum: bool
    use_beta1: bool

    def _momentum(self, i: int, t: float) -> float:
        raise NotImplementedError

    def _setup_momentum(
        self,
        optimizer: Optimizer,
        cycle_momentum: bool,
        base_momentum: Any,
        max_momentum: Any,
        last_epoch: int,
    ) -> tuple[list[Any], list[Any]]:
        self.cycle_momentum = cycle_momentum
        if not cycle_momentum:
            return [], []
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(
                "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
            )
        self.use_beta1 = "betas" in optimizer.defaults
        base = per_group("base_momentum", optimizer, base_momentum)
        top = per_group("max_momentum", optimizer, max_momentum)
        if last_epoch == -1:
            for m, b, group in zip(top, base, optimizer.param_groups, strict=True):
                _set_momentum(group, m, self.use_beta1)
                group["max_momentum"] = m
                group["base_momentum"] = b
        return base, top

    def get_lr(self) -> list[float]:
        lrs = super().get_lr()
        if self.cycle_momentum:
            t = self.last_epoch
            for i, group in enumerate(self.optimizer.param_groups):
                _set_momentum(group, self._momentum(i, t), self.use_beta1)
        return lrs


class CyclicLR(_Cycling):
    """``torch.optim.lr_scheduler.CyclicLR``: a triangle wave, with momentum cycled inversely.

    Values from :func:`optimlab.schedules.cyclic` and
    :func:`optimlab.schedules.cyclic_momentum`; with ``cycle_momentum`` each step
    writes the momentum into ``param_groups`` (``momentum``, or ``betas[0]`` for the
    Adam family), as torch. A custom ``scale_fn`` receives a float array (see
    :class:`LambdaLR`).

    Args:
        optimizer: the optimizer.
        base_lr: the lower bound (one per group, or one for all); written into the groups.
        max_lr: the upper bound.
        step_size_up: epochs rising.
        step_size_down: epochs falling (default ``step_size_up``).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: the ``exp_range`` decay.
        scale_fn: a custom amplitude scale (overrides ``mode``).
        scale_mode: ``"cycle"`` or ``"iterations"``, the argument of ``scale_fn``.
        cycle_momentum: cycle the momentum too.
        base_momentum: the momentum at the learning rate's peak.
        max_momentum: the momentum at the cycle's start.
        last_epoch: the index of the last batch.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=0.1, momentum=0.9)
        >>> sched = optim.lr_scheduler.CyclicLR(opt, 0.1, 1.0, step_size_up=2)
        >>> sched.step()
        >>> round(opt.param_groups[0]["lr"], 3), round(opt.param_groups[0]["momentum"], 3)
        (0.55, 0.85)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[Any], Any] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = as_lr(group["lr"], lr)
        self.max_lrs = per_group("max_lr", optimizer, max_lr)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if not up > 0:  # checked before torch's division by it
            raise ValueError(f"Invalid step_size_up value: {step_size_up} (must be > 0)")
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = (
            scale_mode if scale_fn is not None else "iterations" if mode == "exp_range" else "cycle"
        )
        self._shape: _CyclicShape = {
            "step_size_up": up,
            "step_size_down": down,
            "mode": mode,
            "gamma": gamma,
            "scale_fn": scale_fn,
            "scale_mode": self.scale_mode,
        }
        schedules.cyclic(0.0, 1.0, **self._shape)  # validates
        self.base_momentums, self.max_momentums = self._setup_momentum(
            optimizer, cycle_momentum, base_momentum, max_momentum, last_epoch
        )
        extra = ("use_beta1", "base_momentums", "max_momentums") if cycle_momentum else ()
        self._keys = (
            "max_lrs",
            "total_size",
            "step_ratio",
            "mode",
            "gamma",
            "scale_mode",
            "cycle_momentum",
            *extra,
        )
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _value(self, i: int, t: float) -> float:
        lo, hi = self.base_lrs[i], self.max_lrs[i]
        return self._table(("lr", lo, hi), lambda: schedules.cyclic(lo, hi, **self._shape))(t)

    def _momentum(self, i: int, t: float) -> float:
        lo, hi = self.base_momentums[i], self.max_momentums[i]
        make = lambda: schedules.cyclic_momentum(lo, hi, **self._shape)
        return self._table(("momentum", lo, hi), make)(t)

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        fn = self._scale_fn_custom
        sd["_scale_fn_custom"] = (
            None if fn is None or isinstance(fn, types.FunctionType) else dict(fn.__dict__)
        )
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        saved = state_dict.get("_scale_fn_custom")
        if saved is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(saved)


class OneCycleLR(_Cycling):
    """``torch.optim.lr_scheduler.OneCycleLR``: up to ``max_lr``, then far below the start.

    Values from :func:`optimlab.schedules.one_cycle` (with each group's ``max_lr``)
    and :func:`optimlab.schedules.one_cycle_momentum` (with each group's
    ``base_momentum`` and ``max_momentum``); the momentum is written into the groups
    as in :class:`CyclicLR`. Stepping past ``total_steps`` raises ``ValueError``, as
    torch. Differs from torch: a group's ``initial_lr`` and ``min_lr`` are derived
    from its ``max_lr`` with this scheduler's ``div_factor`` and
    ``final_div_factor`` rather than read back from the group.

    Args:
        optimizer: the optimizer.
        max_lr: the peak (one per group, or one for all).
        total_steps: the number of steps (or give ``epochs`` and ``steps_per_epoch``).
        epochs: the number of epochs.
        steps_per_epoch: the steps per epoch.
        pct_start: the fraction of the steps spent rising.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: cycle the momentum too.
        base_momentum: the momentum at the peak.
        max_momentum: the momentum at the start and the end.
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: torch's three-phase variant.
        last_epoch: the index of the last batch.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        n = self.total_steps
        names = [("initial_lr", "max_lr", "max_momentum", "base_momentum")]
        ends = [float(pct_start * n) - 1]
        if three_phase:
            names += [
                ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                ("initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
            ends += [float(2 * pct_start * n) - 2, n - 1]
        else:
            names += [("max_lr", "min_lr", "base_momentum", "max_momentum")]
            ends += [n - 1]
        keys = ("start_lr", "end_lr", "start_momentum", "end_momentum")
        self._schedule_phases = [
            {"end_step": e, **dict(zip(keys, nm, strict=True))}
            for e, nm in zip(ends, names, strict=True)
        ]
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self._anneal_func_type = anneal_strategy
        self._shape: _OneCycleShape = {
            "total_steps": n,
            "pct_start": pct_start,
            "anneal_strategy": anneal_strategy,
            "three_phase": three_phase,
        }
        self._divs: _OneCycleDivs = {"div_factor": div_factor, "final_div_factor": final_div_factor}
        schedules.one_cycle(1.0, **self._shape, **self._divs)  # validates
        max_lrs = per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self._setup_momentum(optimizer, cycle_momentum, base_momentum, max_momentum, last_epoch)
        self._keys = (
            "total_steps",
            "_schedule_phases",
            "_anneal_func_type",
            "cycle_momentum",
            *(("use_beta1",) if cycle_momentum else ()),
        )
        super().__init__(optimizer, last_epoch)

    def _check(self, t: float) -> None:
        if t > self.total_steps:
            raise ValueError(
                f"Tried to step {t} times. The specified number of total steps is "
                f"{self.total_steps}"
            )

    def _value(self, i: int, t: float) -> float:
        self._check(t)
        peak = self.optimizer.param_groups[i]["max_lr"]
        make = lambda: schedules.one_cycle(peak, **self._shape, **self._divs)
        return self._table(("lr", peak), make)(t)

    def _momentum(self, i: int, t: float) -> float:
        group = self.optimizer.param_groups[i]
        lo, hi = group["base_momentum"], group["max_momentum"]
        make = lambda: schedules.one_cycle_momentum(
            base_momentum=lo, max_momentum=hi, **self._shape
        )
        return self._table(("momentum", lo, hi), make)(t)
