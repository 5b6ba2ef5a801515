"""torch's multiplicative learning-rate schedulers (private): closed form ``base_lr * F(epoch)``.

``StepLR``, ``MultiStepLR``, ``ConstantLR``, ``LinearLR``, ``ExponentialLR`` and
``PolynomialLR``. Their chainable rule (when another scheduler has changed a group's
``lr``) multiplies that ``lr`` by :math:`F(t) / F(t-1)`, written as torch writes each
multiplier (``lr * gamma``...), so that every ``lr`` is torch's to the last bit; see
:class:`~optimlab.optim.lr_scheduler.LRScheduler`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .. import schedules
from .._core._types import Schedule
from ._lr_scheduler import LRScheduler
from ._optimizer import Optimizer

__all__ = [
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
]


class _Multiplicative(LRScheduler):
    """A scheduler whose closed form is ``base_lr * F(epoch)``; ``step()`` multiplies, as torch."""

    _recursive = True

    def _value(self, i: int, t: float) -> float:
        return self.base_lrs[i] * self._factor(t)


class StepLR(_Multiplicative):
    """``torch.optim.lr_scheduler.StepLR``: decays by ``gamma`` every ``step_size`` epochs.

    Values from :func:`optimlab.schedules.step`.

    Args:
        optimizer: the optimizer.
        step_size: the period of the decay.
        gamma: the decay factor.
        last_epoch: the index of the last epoch.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(sched.get_last_lr()[0])
        ...     sched.step()
        >>> lrs
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    _keys = ("step_size", "gamma")

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.step(1.0, self.step_size, self.gamma)

    def _chain(self, i: int, lr: float, t: float) -> float:
        return lr if t == 0 or t % self.step_size != 0 else lr * self.gamma


class MultiStepLR(_Multiplicative):
    """``torch.optim.lr_scheduler.MultiStepLR``: decays by ``gamma`` at each milestone.

    Values from :func:`optimlab.schedules.multistep`.

    Args:
        optimizer: the optimizer.
        milestones: epochs (a repeated one decays by ``gamma`` as many times).
        gamma: the decay factor.
        last_epoch: the index of the last epoch.
    """

    _keys = ("milestones", "gamma")

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.multistep(1.0, sorted(self.milestones.elements()), self.gamma)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if t not in self.milestones:
            return lr
        return lr * self.gamma ** self.milestones[int(t)]


class ConstantLR(_Multiplicative):
    """``torch.optim.lr_scheduler.ConstantLR``: ``lr * factor`` until ``total_iters``.

    Values from :func:`optimlab.schedules.constant_factor`.

    Args:
        optimizer: the optimizer.
        factor: the factor, in ``(0, 1]``.
        total_iters: the number of epochs it lasts.
        last_epoch: the index of the last epoch.
    """

    _keys = ("factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.constant_factor(self.factor, self.total_iters)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if t == 0:
            return lr * self.factor
        return lr if t != self.total_iters else lr * (1.0 / self.factor)


class LinearLR(_Multiplicative):
    """``torch.optim.lr_scheduler.LinearLR``: the factor goes linearly from start to end.

    Values from :func:`optimlab.schedules.linear_factor`.

    Args:
        optimizer: the optimizer.
        start_factor: the factor at epoch 0, in ``(0, 1]``.
        end_factor: the factor from ``total_iters`` on, in ``[0, 1]``.
        total_iters: the length of the ramp.
        last_epoch: the index of the last epoch.
    """

    _keys = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and "
                "less or equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.linear_factor(self.start_factor, self.end_factor, self.total_iters)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if t == 0:
            return lr * self.start_factor
        if self._is_initial or t > self.total_iters:
            return lr
        start, end = self.start_factor, self.end_factor
        return lr * (1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start)))


class ExponentialLR(_Multiplicative):
    """``torch.optim.lr_scheduler.ExponentialLR``: ``base_lr * gamma ** epoch``.

    Values from :func:`optimlab.schedules.exponential`.

    Args:
        optimizer: the optimizer.
        gamma: the decay per epoch.
        last_epoch: the index of the last epoch.
    """

    _keys = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.exponential(1.0, self.gamma)

    def _chain(self, i: int, lr: float, t: float) -> float:
        return lr if self._is_initial else lr * self.gamma


class PolynomialLR(_Multiplicative):
    """``torch.optim.lr_scheduler.PolynomialLR``: polynomial decay to 0 in ``total_iters``.

    Values from :func:`optimlab.schedules.polynomial_decay`.

    Args:
        optimizer: the optimizer.
        total_iters: the epochs of the decay.
        power: the power of the polynomial.
        last_epoch: the index of the last epoch.
    """

    _keys = ("total_iters", "power")

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _factor_schedule(self) -> Schedule:
        return schedules.polynomial_decay(1.0, self.total_iters, self.power)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if self._is_initial or t > self.total_iters:
            return lr
        n = self.total_iters
        return lr * ((1.0 - t / n) / (1.0 - (t - 1) / n)) ** self.power
