"""Checks of the values a learning-rate scheduler is given or loads (private).

``step(epoch)``'s ``epoch``, a lambda's result, and a loaded state dict are checked
before the scheduler changes: a refused call leaves it as it was.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_base",
    "check_composite",
    "check_epoch",
    "check_factor",
    "check_plateau",
    "loading",
    "unchanged_on_error",
]


def _real(dtype: Any) -> bool:
    """Whether ``dtype`` holds real numbers (bfloat16 included)."""
    return dtype.kind in "iuf" or bool(jnp.issubdtype(dtype, jnp.floating))


def check_epoch(epoch: Any, what: str = "epoch") -> Any:
    """``epoch`` as a real finite number (a 0-d array is read as one).

    Raises:
        TypeError: a bool, a string, a list... (naming ``what``).
        ValueError: NaN or infinite.
    """
    if hasattr(epoch, "dtype") and np.ndim(epoch) == 0 and _real(np.asarray(epoch).dtype):
        arr = np.asarray(epoch)
        epoch = arr.item() if arr.dtype.kind in "iu" else float(arr.astype(np.float64))
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(epoch).__name__} {epoch!r:.80}")
    if not math.isfinite(epoch):
        raise ValueError(f"{what} must be finite, got {epoch}")
    return epoch


def check_factor(fn: Any, t: float, group: int, error: Exception) -> Exception:
    """The error to raise when evaluating ``lr_lambda`` at epoch ``t`` raised ``error``.

    The lambda is called once more on a float: when its result is not a number, a
    ``TypeError`` naming that result; otherwise (the lambda itself fails, or the
    number was refused) ``error`` itself.
    """
    try:
        result: Any = fn(float(t))
    except Exception:  # the lambda's own error: ``error`` is raised
        return error
    array = hasattr(result, "dtype") and _real(np.asarray(result).dtype)
    if array or (isinstance(result, numbers.Real) and not isinstance(result, bool)):
        return error
    return TypeError(
        f"lr_lambda of param group {group} must return a number, but at epoch {t} it "
        f"returned {type(result).__name__} {result!r:.80}"
    )


def _check_count(value: Any, what: str) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r:.80}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")


def _check_lrs(value: Any, n: int, what: str) -> None:
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be a list of {n} numbers, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(
            f"{what} has {len(value)} values, but the optimizer has {n} parameter group(s)"
        )
    for i, v in enumerate(value):
        check_epoch(v, f"{what}[{i}]")


def check_base(last_epoch: Any, step_count: Any, base_lrs: Any, groups: int) -> None:
    """Checks the loaded state every scheduler has (``last_epoch``, ``_step_count``, ``base_lrs``).

    Raises:
        TypeError: a value of the wrong type.
        ValueError: a value out of range, or not one ``base_lrs`` entry per group.
    """
    check_epoch(last_epoch, "'last_epoch'")
    _check_count(step_count, "'_step_count'")
    _check_lrs(base_lrs, groups, "'base_lrs'")


@contextlib.contextmanager
def loading(owner: str, method: str = "load_state_dict") -> Iterator[None]:
    """Prefixes the errors of the checks in the block with ``owner.method`` (``owner``: ``""``).

    A ``TypeError`` stays one; any other error of the checks is a ``ValueError``.
    """
    where = f"{owner}.{method}" if method else owner
    try:
        yield
    except (TypeError, ValueError, ArithmeticError) as e:
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(f"{where}: {e}") from None


def check_plateau(v: Mapping[str, Any], groups: int) -> None:
    """Checks the loaded attributes ``v`` of a ``ReduceLROnPlateau`` with ``groups`` groups.

    Raises:
        TypeError: a value of the wrong type.
        ValueError: a value out of range, or not one ``min_lrs`` entry per group.
    """
    check_epoch(v["last_epoch"], "'last_epoch'")
    factor = check_epoch(v["factor"], "'factor'")
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"'factor' must be in [0, 1), got {factor}")
    check_epoch(v["threshold"], "'threshold'")
    if check_epoch(v["eps"], "'eps'") < 0:
        raise ValueError(f"'eps' must be >= 0, got {v['eps']}")
    for name in ("patience", "cooldown", "cooldown_counter", "num_bad_epochs"):
        _check_count(v[name], repr(name))
    for name in ("mode", "threshold_mode"):
        if not isinstance(v[name], str):
            raise TypeError(f"'{name}' must be a str, got {type(v[name]).__name__}")
    if v["default_min_lr"] is not None:
        check_epoch(v["default_min_lr"], "'default_min_lr'")
    _check_lrs(v["min_lrs"], groups, "'min_lrs'")
    if any(lr < 0 for lr in v["min_lrs"]):
        raise ValueError(f"'min_lrs' must be >= 0, got {v['min_lrs']!r}")
    _check_lrs(v["_last_lr"], groups, "'_last_lr'")
    best = v["best"]
    if isinstance(best, (bool, np.bool_)) or not isinstance(best, numbers.Real) or best != best:
        raise (ValueError if best != best else TypeError)(
            f"'best' must be a real number (inf before the first metric), got {best!r:.80}"
        )


def check_composite(v: Mapping[str, Any], saved: Any, n: int, groups: int) -> list[Any]:
    """Checks the loaded attributes ``v`` of a ``SequentialLR``/``ChainedScheduler``.

    ``saved`` is the state dict's ``_schedulers`` entry, one state dict for each of
    the ``n`` schedulers composed; it is returned as a list.

    Raises:
        TypeError: a value of the wrong type.
        ValueError: not one saved state per scheduler, or a milestone out of place.
    """
    if not isinstance(saved, Sequence) or isinstance(saved, (str, bytes)):
        raise TypeError(f"'_schedulers' must be a list of {n} state dicts, got {saved!r:.80}")
    if len(saved) != n:
        raise ValueError(f"'_schedulers' has {len(saved)} state dicts, this one composes {n}")
    if "_milestones" in v:
        milestones = v["_milestones"]
        if not isinstance(milestones, Sequence) or len(milestones) != n - 1:
            raise ValueError(f"'_milestones' must be a list of {n - 1} epochs, got {milestones!r}")
        for i, m in enumerate(milestones):
            _check_count(m, f"'_milestones'[{i}]")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"'_milestones' must be in increasing order, got {milestones!r}")
    if "last_epoch" in v:
        check_epoch(v["last_epoch"], "'last_epoch'")
    _check_lrs(v["_last_lr"], groups, "'_last_lr'")
    return list(saved)


def _members(scheduler: Any) -> list[Any]:
    """``scheduler`` and, for a composite, every scheduler it holds (recursively)."""
    out = [scheduler]
    for s in getattr(scheduler, "schedulers", ()):
        out += _members(s)
    return out


@contextlib.contextmanager
def unchanged_on_error(scheduler: Any) -> Iterator[None]:
    """Puts back the attributes of ``scheduler`` (and of those it composes) if the block raises.

    A load sets attributes to deep copies, so a shallow copy of each ``__dict__``
    holds the state as it was.
    """
    saved = [(s, dict(s.__dict__)) for s in _members(scheduler)]
    try:
        yield
    except BaseException:
        for s, attributes in saved:
            s.__dict__.clear()
            s.__dict__.update(attributes)
        raise
