"""Helpers shared by the schedules: the floating step, value casts and validation (private)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from .._core import _validate
from .._core._hyperparams import hyperparam_dtype

_P = ParamSpec("_P")
_R = TypeVar("_R")


def dtype() -> jnp.dtype:
    """The dtype schedules compute and return in: float64 under x64, else float32."""
    return hyperparam_dtype()


def as_step(step: Any) -> jax.Array:
    """The step as a floating array (int32, int64, traced or fractional; never wraps)."""
    step = jnp.asarray(step)
    if step.dtype == jnp.bool_:
        raise TypeError("a schedule's step must be a number, got a bool.")
    return step.astype(dtype())


def value(x: Any) -> jax.Array:
    """A numeric hyperparameter (number, array or tracer) cast to the schedule dtype."""
    return jnp.asarray(x).astype(dtype())


def number(x: Any, name: str) -> float:
    """A structural argument that must be a concrete real number (not traced)."""
    v = None if isinstance(x, (bool, str, bytes)) else _validate.concrete(x)
    if v is None:
        raise TypeError(f"{name} must be a concrete real number, got {type(x).__name__}.")
    return v


def positive(x: Any, name: str) -> float:
    v = number(x, name)
    _validate.check(v > 0 and not math.isnan(v), f"Invalid {name} value: {x} (must be > 0)")
    return v


def non_negative(x: Any, name: str) -> float:
    v = number(x, name)
    _validate.check(v >= 0 and not math.isnan(v), f"Invalid {name} value: {x} (must be >= 0)")
    return v


def positive_int(x: Any, name: str, minimum: int = 1) -> int:
    """A concrete integer ``>= minimum`` (floats with an integer value are accepted)."""
    v = number(x, name)
    ok = v == v and float(v).is_integer() and v >= minimum
    _validate.check(ok, f"Invalid {name} value: {x} (must be an integer >= {minimum})")
    return int(v)


def in_range(
    x: Any, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> None:
    """Checks a value in a range when it is concrete (traced values are not checked)."""
    _validate.in_range(x, name, lo, hi, lo_open=lo_open, hi_open=hi_open)


def choice(x: Any, name: str, options: Sequence[str]) -> None:
    _validate.check(
        x in options,
        f"Invalid {name} value: {x!r} (must be one of {', '.join(repr(o) for o in options)})",
    )


def schedule_fn(fn: Any, name: str) -> Callable[[jax.Array], Any]:
    if not callable(fn):
        raise TypeError(
            f"{name} must be a schedule (a callable of the step), got {type(fn).__name__}."
        )
    return fn


def sequence(values: Any, name: str) -> list[Any]:
    """``values`` as a list, refusing what is not a sequence (``TypeError``)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be a list or a tuple, got {type(values).__name__} {values!r}."
        )
    return list(values)


def boundaries(values: Sequence[Any], name: str, *, strict: bool) -> list[float]:
    """Concrete, non-negative boundaries, increasing (``strict``) or non-decreasing."""
    out = [non_negative(b, name) for b in sequence(values, name)]
    for a, b in zip(out, out[1:], strict=False):
        ok = a < b if strict else a <= b
        kind = "strictly increasing" if strict else "non-decreasing"
        _validate.check(ok, f"Invalid {name} value: {list(values)} (must be {kind})")
    return out


def cosine_anneal(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    """``end + (start - end) / 2 * (1 + cos(pi * pct))``: from ``start`` at 0 to ``end`` at 1."""
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)


def linear_anneal(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    """``(end - start) * pct + start``."""
    return (end - start) * pct + start


def checked_values(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates a schedule factory: its values must be real and finite, its errors named.

    Every argument annotated ``ArrayLike`` or ``float`` (a value, a rate, a
    factor) that is concrete when the schedule is built must be a real number, or
    an array of them, with no NaN or infinity: the schedule would return NaN at
    every step, and nothing downstream can tell. Traced values (a population
    swept with :func:`jax.vmap`) are not checked. ``None`` passes where the
    annotation allows it.

    A ``TypeError`` or ``ValueError`` raised while the schedule is built (this
    check or the factory's own) starts with the factory's name, as in
    ``"exponential_decay: Invalid transition_steps value: 0 (must be > 0)"``.
    """
    return _validate.named(fn, _validate.by_annotation(fn, _VALUES, _finite))


_VALUES = ("ArrayLike", "ArrayLike | None", "float", "float | None")


def _finite(function: str, name: str, x: Any, annotation: str) -> None:
    if isinstance(x, jax.core.Tracer) or (x is None and annotation.endswith("| None")):
        return
    arr = np.asarray(x) if not isinstance(x, (bool, str, bytes)) else None
    if arr is None or not (arr.dtype.kind in "iuf" or arr.dtype == jnp.bfloat16):
        raise TypeError(
            f"{function}: {name} must be a real number (or an array of them), got "
            f"{type(x).__name__} {x!r}."
        )
    if not np.isfinite(arr.astype(np.float64)).all():
        label = name if name == "value" else f"{name} value"  # not "Invalid value value"
        raise ValueError(f"{function}: Invalid {label}: {x} (must be finite)")
