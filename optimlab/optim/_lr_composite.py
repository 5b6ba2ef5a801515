"""torch's SequentialLR, ChainedScheduler and ReduceLROnPlateau (private)."""

from __future__ import annotations

import copy
import math
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ._lr_checks import (
    check_composite,
    check_epoch,
    check_plateau,
    loading,
    unchanged_on_error,
)
from ._lr_scheduler import (
    EPOCH_DEPRECATION_WARNING,
    LRScheduler,
    as_lr,
    check_optimizer,
    load_keys,
)
from ._optimizer import Optimizer

__all__ = ["SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"]


def _check_members(owner: str, schedulers: Sequence[Any], optimizer: Any) -> None:
    for i, s in enumerate(schedulers):
        if not hasattr(s, "optimizer"):
            raise TypeError(f"{owner} at index {i} should have `optimizer` as its attribute.")
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {i} in the given schedulers sequence."
            )
        if optimizer is not s.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, "
                f"but got scheduler {type(s).__name__} at index {i} has "
                f"{s.optimizer}, which is different from "
                f"{type(optimizer).__name__}."
            )


class _Composite(LRScheduler):
    _schedulers: list[LRScheduler]

    @property
    def schedulers(self) -> list[LRScheduler]:
        """The schedulers composed (the list itself)."""
        return self._schedulers

    def state_dict(self) -> dict[str, Any]:
        sd = {k: copy.deepcopy(getattr(self, k)) for k in self._keys}
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state dict from :meth:`state_dict` or from the torch scheduler.

        The composite's own values and each scheduler's state dict are checked; a
        refused state dict leaves this scheduler, and those it composes, as they were.

        Args:
            state_dict: the state, with one state dict per scheduler in ``_schedulers``.

        Raises:
            TypeError: ``state_dict`` is not a dict, or a value of the wrong type.
            ValueError: a value out of range, or not one saved state per scheduler.
        """
        name = type(self).__name__
        with unchanged_on_error(self):
            load_keys(self, state_dict, self._keys)
            with loading(name):
                groups = len(self.optimizer.param_groups)
                saved = state_dict.get("_schedulers")
                saved = check_composite(vars(self), saved, len(self._schedulers), groups)
            for s, sub in zip(self._schedulers, saved, strict=True):
                s.load_state_dict(sub)


class SequentialLR(_Composite):
    """``torch.optim.lr_scheduler.SequentialLR``: scheduler ``i`` runs from milestone ``i``.

    As torch: construction resets the groups to ``initial_lr``, undoes the initial
    step of every scheduler and takes it again for the first one only; at each
    milestone the next scheduler restarts at its epoch 0 (its closed form), between
    milestones it steps. The values are those of
    :func:`optimlab.schedules.sequential` over the schedulers' closed forms.

    Args:
        optimizer: the optimizer all the schedulers drive.
        schedulers: the schedulers, in order.
        milestones: ``len(schedulers) - 1`` epochs where the next one starts.
        last_epoch: the index of the last epoch.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> L = optim.lr_scheduler
        >>> warm = L.LinearLR(opt, start_factor=0.1, total_iters=2)
        >>> decay = L.ExponentialLR(opt, gamma=0.5)
        >>> sched = L.SequentialLR(opt, [warm, decay], milestones=[2])
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(round(sched.get_last_lr()[0], 3))
        ...     sched.step()
        >>> lrs
        [0.1, 0.55, 1.0, 0.5, 0.25]
    """

    _keys = ("_milestones", "last_epoch", "_last_lr")

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{name} expects at least one scheduler, but got no scheduler.")
        _check_members(name, schedulers, optimizer)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be "
                "one more than the number of milestone points, but got number of "
                f"schedulers {len(schedulers)} and the number of milestones to be "
                f"equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = as_lr(group["lr"], group["initial_lr"])
        self._undo(self)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx].initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def _undo(self, sched: Any) -> None:
        if isinstance(sched, _Composite):
            for s in sched.schedulers:
                self._undo(s)
        elif hasattr(sched, "last_epoch"):
            sched.last_epoch -= 1

    def recursive_undo(self, sched: Any = None) -> None:
        """Steps back the ``last_epoch`` of every nested scheduler (torch's helper).

        Args:
            sched: the scheduler to undo (default: this one's schedulers).
        """
        self._undo(self if sched is None else sched)

    def step(self) -> None:  # type: ignore[override]
        """Advances one epoch: a restart at a milestone, else a step of the current scheduler."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler.update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """``torch.optim.lr_scheduler.ChainedScheduler``: steps every scheduler at each step.

    Multiplicative schedulers compose into the product of their factors
    (:func:`optimlab.schedules.chained`), each applying torch's chainable rule to
    the ``lr`` the previous one left.

    Args:
        schedulers: the schedulers.
        optimizer: their optimizer (default: the first one's).

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> L = optim.lr_scheduler
        >>> sched = L.ChainedScheduler([L.ConstantLR(opt, factor=0.5, total_iters=2),
        ...                             L.ExponentialLR(opt, gamma=0.9)])
        >>> lrs = []
        >>> for _ in range(4):
        ...     lrs.append(round(sched.get_last_lr()[0], 4))
        ...     sched.step()
        >>> lrs
        [0.5, 0.45, 0.81, 0.729]
    """

    _keys = ("_last_lr",)

    def __init__(
        self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None
    ) -> None:
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(
                f"{name} expects at least one scheduler to be chained, but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_members(name, schedulers, optimizer)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = [g["lr"] for g in self._schedulers[-1].optimizer.param_groups]

    def step(self) -> None:  # type: ignore[override]
        """Steps every scheduler, in order."""
        for s in self._schedulers:
            s.step()
        self._last_lr = [g["lr"] for g in self._schedulers[-1].optimizer.param_groups]


class ReduceLROnPlateau(LRScheduler):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: divides ``lr`` when a metric stalls.

    ``step(metric)`` follows torch's rule exactly (that of
    :func:`optimlab.reduce_on_plateau`, per group): better when it beats ``best`` by
    ``threshold``; after more than ``patience`` bad epochs each group's ``lr``
    becomes ``max(lr * factor, min_lr)`` if that lowers it by more than ``eps``,
    then ``cooldown`` epochs are ignored. Unlike :func:`optimlab.reduce_on_plateau`,
    and as torch, a NaN metric counts as a bad epoch. Differs from torch, which
    takes any value: the options are checked when built and when a state dict is
    loaded (``factor`` in ``[0, 1)``, counts that are ints >= 0, ``min_lr`` and
    ``eps`` >= 0, a finite ``threshold``).

    Args:
        optimizer: the optimizer.
        mode: ``"min"`` or ``"max"``.
        factor: the reduction factor, ``< 1``.
        patience: bad epochs tolerated.
        threshold: the significant change.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: epochs ignored after a reduction.
        min_lr: a lower bound (one per group, or one for all).
        eps: the smallest change applied.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        >>> for metric in [1.0, 1.0, 1.0, 0.5]:
        ...     sched.step(metric)
        >>> sched.get_last_lr()
        [0.5]
    """

    _keys = (
        "factor",
        "default_min_lr",
        "min_lrs",
        "patience",
        "cooldown",
        "eps",
        "last_epoch",
        "_last_lr",
        "mode_worse",
        "mode",
        "threshold",
        "threshold_mode",
        "best",
        "cooldown_counter",
        "num_bad_epochs",
    )

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        name = type(self).__name__
        with loading(name, ""):
            check_epoch(factor, "factor")
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]
        self._set_mode(mode, threshold, threshold_mode)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0
        with loading(name, ""):
            check_plateau(vars(self), len(optimizer.param_groups))

    def _set_mode(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (
                best * (1.0 - self.threshold)
                if self.threshold_mode == "rel"
                else best - self.threshold
            )
        return a > (
            best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold
        )

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Takes the epoch's metric (a number or a scalar array) and reduces ``lr`` if it stalled.

        Args:
            metrics: the metric.
            epoch: deprecated, as in torch.
        """
        current = float(metrics)
        if epoch is not None:
            epoch = check_epoch(epoch)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` ({len(groups)})"
                    " differs from when `ReduceLROnPlateau` was initialized "
                    f"({len(self.min_lrs)}), usually due to a new param group "
                    "being added to the optimizer. Please modify the `min_lrs` "
                    "field to match the length of the `optimizer` param groups."
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for i, group in enumerate(groups):
            old = float(group["lr"])
            new = max(old * self.factor, self.min_lrs[i])
            if old - new > self.eps:
                group["lr"] = as_lr(group["lr"], new)

    @property
    def in_cooldown(self) -> bool:
        """Whether reductions are paused after the last one."""
        return self.cooldown_counter > 0

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state dict from :meth:`state_dict` or from the torch scheduler.

        The values are checked as the constructor checks them (``factor < 1``, the
        modes, counts that are ints >= 0, one ``min_lrs`` entry per group); a refused
        state dict leaves the scheduler as it was.

        Args:
            state_dict: the scheduler state; keys this class does not hold are ignored.

        Raises:
            TypeError: ``state_dict`` is not a dict, or a value of the wrong type.
            ValueError: a value out of range.
        """
        with unchanged_on_error(self):
            load_keys(self, state_dict, self._keys)
            with loading(type(self).__name__):
                check_plateau(vars(self), len(self.optimizer.param_groups))
                self._set_mode(self.mode, self.threshold, self.threshold_mode)

    def state_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(getattr(self, k)) for k in self._keys}
