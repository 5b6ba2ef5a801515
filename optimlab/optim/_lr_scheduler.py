"""torch's learning-rate schedulers over the closed forms of ``optimlab.schedules`` (private).

Each class adds torch's bookkeeping (``last_epoch``, ``initial_lr``, ``base_lrs``, the
step taken at construction, ``get_last_lr``, ``state_dict``) to a pure schedule.
Values are the closed form; when another scheduler (or the user) has changed a
group's ``lr`` since this one set it, the class applies torch's *chainable* rule
to that ``lr`` instead, so that stacked schedulers compose as in torch:
multiplicative schedulers multiply it by :math:`F(t) / F(t-1)` (their closed-form
factor at this epoch over the previous one), ``CosineAnnealingLR`` rescales its
distance to ``eta_min``, and the others overwrite it with their closed form.
"""

from __future__ import annotations

import copy
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .. import schedules
from .._core import _validate
from .._core._types import Schedule
from ._lr_checks import check_base, check_epoch, check_factor, loading, unchanged_on_error
from ._optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "as_lr",
    "LambdaLR",
    "MultiplicativeLR",
]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated "
    "where possible. Please use `scheduler.step()` to step the scheduler. During the "
    "deprecation, if epoch is different from None, the closed form is used instead of the new "
    "chainable form, where available."
)
_BASE_KEYS = (
    "base_lrs",
    "last_epoch",
    "_step_count",
    "_is_initial",
    "_get_lr_called_within_step",
    "_last_lr",
)
_BLOCK = 256


class Values:
    """A schedule evaluated on the host in float64, cached per integer step.

    Integer steps are evaluated ``256`` at a time (one vectorised call); other steps
    (and schedules whose callables only take scalars) one by one.
    """

    def __init__(self, fn: Schedule):
        self.fn = fn
        self.cache: dict[int, float] = {}

    def __call__(self, t: float) -> float:
        if float(t).is_integer():
            k = int(t)
            hit = self.cache.get(k)
            if hit is None:
                self._fill(k)
                hit = self.cache[k]
            return hit
        return self._one(float(t))

    def _one(self, t: float) -> float:
        with jax.enable_x64(True):
            # Schedules take NumPy steps (they convert with jnp.asarray) and return a real
            # value; the Schedule annotation says jax.Array in and ArrayLike out.
            return float(self.fn(np.float64(t)))  # pyright: ignore[reportArgumentType]

    def _fill(self, k: int) -> None:
        steps = np.arange(k, k + _BLOCK, dtype=np.float64)
        try:
            with jax.enable_x64(True):
                # A NumPy step array, as in _one (the annotation says jax.Array).
                out = self.fn(steps)  # pyright: ignore[reportArgumentType]
                vals = np.broadcast_to(np.asarray(out, np.float64), steps.shape)
            values = [float(v) for v in vals]
        except Exception:  # a callable written for scalars: evaluate this step alone
            values = [self._one(float(k))]
        if len(self.cache) > 16 * _BLOCK:
            self.cache.clear()
        self.cache.update(zip(range(k, k + len(values)), values, strict=True))


def as_lr(current: Any, value: Any) -> Any:
    """``value`` held as the group's ``lr`` is: a float, or a 0-d array in its dtype.

    torch fills a tensor ``lr`` in place (``_update_param_group_val``), so its
    schedules then run in the tensor's dtype (``lr * gamma`` in float32 for a
    float32 ``lr``); an array ``lr`` here keeps its dtype the same way.
    """
    if getattr(current, "dtype", None) is None or np.ndim(current) != 0:
        return float(value)
    if isinstance(current, jax.Array):
        return jnp.asarray(value, current.dtype)
    if isinstance(current, np.generic):
        return current.dtype.type(value)
    # A NumPy array or a torch tensor: a host array in its dtype (float64 included,
    # which a JAX array holds only under jax_enable_x64).
    return np.asarray(value, np.asarray(current).dtype)


def load_keys(scheduler: Any, state_dict: Any, keys: Sequence[str]) -> None:
    """Sets each of ``keys`` found in ``state_dict`` on ``scheduler`` (a deep copy).

    Keys the scheduler does not hold are ignored, so torch's state dicts load; a
    ``state_dict`` that is not a dict is refused before anything changes.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"{type(scheduler).__name__}.load_state_dict: state_dict must be a dict (from "
            f"state_dict()), got {type(state_dict).__name__}."
        )
    for key in keys:
        if key in state_dict:
            setattr(scheduler, key, copy.deepcopy(state_dict[key]))


def check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """One value per group from a scalar or a list (torch's ``_format_param``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has "
                f"{len(optimizer.param_groups)}."
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def lambdas(optimizer: Optimizer, lr_lambda: Any) -> list[Callable[..., Any]]:
    if not isinstance(lr_lambda, (list, tuple)):
        return [lr_lambda] * len(optimizer.param_groups)
    if len(lr_lambda) != len(optimizer.param_groups):
        raise ValueError(
            f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
        )
    return list(lr_lambda)


class LRScheduler:
    """Base class of the schedulers: torch's ``LRScheduler`` over a closed form.

    At construction (``last_epoch=-1``) every group gets ``initial_lr`` (its ``lr``,
    unless already set), ``base_lrs`` are those, and one step is taken to
    ``last_epoch=0``, writing the first value into ``param_groups``. Resuming with
    ``last_epoch >= 0`` requires ``initial_lr`` in every group (from a loaded
    optimizer state dict) and steps to ``last_epoch + 1``, as torch. Call
    :meth:`step` after the optimizer's ``step``; the new ``lr`` values are plain
    floats fed to the jitted step as data, so they never recompile it.

    Differences from torch: ``optimizer.step`` is not wrapped, so torch's warning
    about calling ``scheduler.step()`` before ``optimizer.step()`` is not given;
    ``state_dict`` lists torch's keys explicitly rather than the object's
    ``__dict__`` (``load_state_dict`` sets those keys and ignores others).

    Args:
        optimizer: an :class:`~optimlab.optim.Optimizer`.
        last_epoch: the index of the last epoch, ``-1`` to start.
    """

    # The attributes state_dict saves besides the base ones; a class constant, except
    # where the saved set depends on the arguments (CyclicLR, OneCycleLR set it in __init__).
    _keys: tuple[str, ...] = ()
    _has_closed_form: ClassVar[bool] = True
    #: ``step()`` applies the chainable rule even to an untouched ``lr``, as torch does,
    #: so that each value is torch's product to the last bit (not the closed form).
    _recursive: ClassVar[bool] = False
    _is_initial: bool = False
    _get_lr_called_within_step: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] "
                        "when resuming scheduler with last_epoch >= 0."
                    )
        self.base_lrs: list[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.initial_step()

    # -------------------------------------------------------------- stepping
    def initial_step(self) -> None:
        """Takes the initial step (epoch 0) again, with a fresh step count.

        The constructor takes it; :class:`SequentialLR` retakes it for its first
        scheduler after undoing every scheduler's (as torch does).
        """
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self, epoch: int | None = None) -> None:
        """Advances one epoch (or, deprecated as in torch, jumps to ``epoch``: closed form).

        A refused step (a bad ``epoch``, a lambda returning no number) leaves the
        scheduler and the groups' ``lr`` as they were.

        Args:
            epoch: ``None``; a number sets ``last_epoch`` and warns, as torch.

        Raises:
            TypeError: ``epoch`` is not a real number (a bool, a string...).
            ValueError: ``epoch`` is NaN or infinite.
        """
        if epoch is not None:
            epoch = check_epoch(epoch)
        saved = self.last_epoch, self._step_count
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        try:
            self.update_lr(epoch)
        except BaseException:
            self.last_epoch, self._step_count = saved
            raise

    def update_lr(self, epoch: float | None = None) -> None:
        """Writes the next epoch's values, or (given ``epoch``) that epoch's closed form.

        :meth:`step` without the step count and the deprecation warning: what
        :class:`SequentialLR` uses to restart a scheduler at epoch 0 at a milestone.

        Args:
            epoch: ``None`` for the next epoch, or the epoch to jump to.
        """
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch  # type: ignore[assignment]
                values = self._closed_form_lr() if self._has_closed_form else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._write(values)

    def _write(self, values: Sequence[float]) -> None:
        groups = self.optimizer.param_groups
        new = [as_lr(group["lr"], lr) for group, lr in zip(groups, values, strict=True)]
        for group, lr in zip(groups, new, strict=True):
            group["lr"] = lr
        self._last_lr = [g["lr"] for g in groups]
        # Remember which groups now hold exactly the closed form: while nobody else
        # changes them, the next value is the closed form again.
        t = self.last_epoch
        exact = self._has_closed_form and float(t).is_integer()
        self._mark = (
            t,
            [
                lr if exact and lr == self._value(i, t) else None
                for i, lr in enumerate(self._last_lr)
            ],
        )

    def get_lr(self) -> list[float]:
        """The learning rates for the current ``last_epoch`` (use :meth:`get_last_lr` to read them).

        Returns:
            One learning rate per parameter group.
        """
        if not getattr(self, "_get_lr_called_within_step", False):
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use "
                "`get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        t = self.last_epoch
        mark = getattr(self, "_mark", None)
        out = []
        for i, group in enumerate(self.optimizer.param_groups):
            lr = group["lr"]
            untouched = (
                not self._is_initial
                and mark is not None
                and mark[0] == t - 1
                and i < len(mark[1])
                and mark[1][i] == lr
            )
            recurse = self._recursive and not self._is_initial
            out.append(self._value(i, t) if untouched and not recurse else self._chain(i, lr, t))
        return out

    def _closed_form_lr(self) -> list[float]:
        return [self._value(i, self.last_epoch) for i in range(len(self.optimizer.param_groups))]

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler last set, one per parameter group.

        Returns:
            A new list of floats.
        """
        return list(self._last_lr)

    # ------------------------------------------------- the closed form, per class
    def _schedule(self, base_lr: float) -> Schedule:
        """The closed form ``epoch -> lr`` from ``base_lr`` (an ``optimlab.schedules`` function)."""
        raise NotImplementedError

    def _table(self, key: Any, make: Callable[[], Schedule]) -> Values:
        tables = self.__dict__.setdefault("_tables", {})
        # A 0-d array lr (jax, NumPy or torch) is not hashable: keyed by value and dtype.
        key = tuple((float(k), str(np.asarray(k).dtype)) if hasattr(k, "dtype") else k for k in key)
        hit = tables.get(key)
        if hit is None:
            # A schedule's error is named by this class ("StepLR: ...", not "step: ...").
            hit = tables[key] = Values(_validate.named(make, name=type(self).__name__)())
        return hit

    def _value(self, i: int, t: float) -> float:
        base = self.base_lrs[i]
        return self._table(("lr", base), lambda: self._schedule(base))(t)

    def _factor_schedule(self) -> Schedule:
        """The closed form's factor ``epoch -> F(epoch)`` (multiplicative schedulers)."""
        raise NotImplementedError

    def _factor(self, t: float) -> float:
        return self._table("factor", self._factor_schedule)(t)

    def _ratio(self, t: float) -> float:
        """:math:`F(t) / F(t-1)` (1 exactly where the factor is flat)."""
        a, b = self._factor(t), self._factor(t - 1)
        return 1.0 if a == b else a / b

    def _chain(self, i: int, lr: float, t: float) -> float:
        """Torch's rule applied to the group's current ``lr`` (default: overwrite)."""
        del lr
        return self._value(i, t)

    # ------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """The state dict of the torch scheduler: the same keys and value types.

        Returns:
            A dict of numbers, strings, lists (and a ``Counter`` for ``MultiStepLR``);
            it loads into the torch scheduler and saves with ``torch.save``.
        """
        return {k: copy.deepcopy(getattr(self, k)) for k in (*self._keys, *_BASE_KEYS)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state dict from :meth:`state_dict` or from the torch scheduler.

        The loaded values are checked as the constructor checks them: ``last_epoch``
        a finite number, ``base_lrs`` one number per group, the options
        (``step_size``, ``gamma``...) those the closed form accepts. A refused state
        dict leaves the scheduler as it was.

        Args:
            state_dict: the scheduler state; keys this class does not hold are ignored.

        Raises:
            TypeError: ``state_dict`` is not a dict, or a value of the wrong type.
            ValueError: a value out of range; the scheduler is unchanged.
        """
        with unchanged_on_error(self):
            self.__dict__.pop("_tables", None)  # built again from the loaded options
            load_keys(self, state_dict, (*self._keys, *_BASE_KEYS))
            with loading(type(self).__name__):
                n = len(self.optimizer.param_groups)
                check_base(self.last_epoch, self._step_count, self.base_lrs, n)
                for i in range(n if self._has_closed_form else 0):
                    self._value(i, 0)  # the closed form's own checks (step_size, gamma...)
        self._mark = None


class _Lambdas(LRScheduler):
    lr_lambdas: list[Callable[..., Any]]

    def _lambda(self, i: int, t: float) -> float:
        fn = self.lr_lambdas[i]
        try:
            return self._table(("lambda", id(fn)), lambda: schedules.lambda_factor(fn))(t)
        except (TypeError, ValueError) as e:
            error = check_factor(fn, t, i, e)
            if error is e:
                raise
            raise error from e

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        # As torch: only callable objects' attributes are saved, functions are not.
        sd["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
            for fn in self.lr_lambdas
        ]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for fn, saved in zip(self.lr_lambdas, state_dict.get("lr_lambdas", []), strict=False):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_Lambdas):
    """``torch.optim.lr_scheduler.LambdaLR``: ``base_lr * lr_lambda(epoch)``.

    Values from :func:`optimlab.schedules.lambda_factor`. Differs from torch:
    ``lr_lambda`` receives the epoch as a float64 array (several epochs at once when
    it accepts them) rather than a Python ``int``; write it with arithmetic or
    ``jax.numpy``.

    Args:
        optimizer: the optimizer.
        lr_lambda: ``epoch -> factor``, or one per parameter group.
        last_epoch: the index of the last epoch.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> sched = optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
        >>> sched.step(); sched.step()
        >>> sched.get_last_lr(), opt.param_groups[0]["lr"]
        ([0.25], 0.25)
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _value(self, i: int, t: float) -> float:
        return self.base_lrs[i] * self._lambda(i, t)


class MultiplicativeLR(_Lambdas):
    """``torch.optim.lr_scheduler.MultiplicativeLR``: multiplies ``lr`` by ``lr_lambda(epoch)``.

    Each step multiplies the group's current ``lr`` by the factor of
    :func:`optimlab.schedules.lambda_factor` (the closed form is the running product,
    :func:`optimlab.schedules.multiplicative`). ``lr_lambda`` receives a float array
    (see :class:`LambdaLR`).

    Args:
        optimizer: the optimizer.
        lr_lambda: ``epoch -> factor``, or one per parameter group.
        last_epoch: the index of the last epoch.
    """

    _has_closed_form = False

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = lambdas(optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def _chain(self, i: int, lr: float, t: float) -> float:
        if self._is_initial:
            return lr
        return lr * self._lambda(i, t)
