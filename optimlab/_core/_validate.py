"""Eager hyperparameter validation with torch.optim's wording (private)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from ._types import Deferred

_P = ParamSpec("_P")
_R = TypeVar("_R")


def deferred(value: Any) -> bool:
    """Whether a value is known only when the optimizer runs (a tracer or a reference)."""
    return isinstance(value, (jax.core.Tracer, Deferred))


def host_array(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` for what is not a number or an array.

    Numbers, NumPy and JAX arrays, and any object NumPy reads through ``__array__``
    (a torch tensor, as a torch checkpoint holds ``lr``) are read; strings, lists
    and other objects are not, nor is an object whose ``__array__`` fails (a torch
    tensor that requires grad).
    """
    if isinstance(value, (str, bytes)):
        return None
    if not isinstance(value, (int, float, np.generic, np.ndarray, jax.Array)):
        if not hasattr(value, "__array__"):
            return None
    try:
        return np.asarray(value)
    except Exception:
        return None


def scalar(name: str, value: Any, dtype: Any) -> jax.Array:
    """A hyperparameter's value given at construction, as a scalar array of ``dtype``.

    Refuses a bool, what is not a real number (``TypeError``) and an array
    (``ValueError``); the value's range is the rule table's (:func:`check`).
    """
    if isinstance(value, bool):
        raise TypeError(f"hyperparameter {name!r} must be a number or a schedule, got a bool.")
    if not isinstance(value, jax.core.Tracer):
        try:
            arr = np.asarray(value)
        except Exception:  # an object whose __array__ fails (a torch tensor that needs grad)
            arr = np.asarray(None)
        if arr.dtype.kind not in "biuf" and arr.dtype != jnp.bfloat16:
            raise TypeError(
                f"hyperparameter {name!r} must be a real number or a schedule (a callable of "
                f"the step), got {type(value).__name__} with dtype {arr.dtype}."
            )
        if not isinstance(value, jax.Array):
            value = arr  # read once: JAX takes NumPy arrays, not every __array__ object
    if jnp.ndim(value) != 0:
        raise ValueError(
            f"hyperparameter {name!r} must be a scalar, got an array of shape "
            f"{jnp.shape(value)}. To sweep several values, jax.vmap over "
            "set_hyperparams instead."
        )
    return jnp.asarray(value).astype(dtype)


def concrete(value: Any) -> float | None:
    """The value as a Python float, or ``None`` for schedules and traced values."""
    if callable(value) or deferred(value):
        return None
    arr = host_array(value)
    if arr is None or arr.ndim != 0:
        return None  # type and shape errors are reported by the rule table, naming it
    try:
        return float(arr)
    except (TypeError, ValueError):
        return None


def present(value: Any) -> bool:
    """Whether an optional term (weight decay, momentum) is part of the state.

    ``None`` leaves the term out (optax's convention); any other value, zero
    included, keeps it, so the state's structure depends only on the algorithm
    and a term built with ``0.0`` can be switched on later by ``set_hyperparams``.
    """
    return value is not None


def _fmt(value: Any) -> Any:
    v = concrete(value)
    return value if v is None else v


def check(ok: bool | np.bool_, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _require(value: Any, ok: Callable[[float], bool], message: str) -> None:
    """Raises ``ValueError(message)`` (``{}`` filled with the value) unless ``ok(value)``.

    Schedules and traced values are not checked here (:func:`concrete` gives ``None``).
    """
    v = concrete(value)
    if v is not None:
        check(ok(v), message.format(_fmt(value)))


def _non_negative(v: float) -> bool:
    return 0.0 <= v


def require_params(name: str, params: Any) -> None:
    """Raises ``ValueError`` naming ``name`` when an update that needs ``params`` gets ``None``."""
    if params is None:
        raise ValueError(f"{name}: params is None; pass the current params to update().")


def lr(value: Any) -> None:
    _require(value, _non_negative, "Invalid learning rate: {}")


def eps(value: Any, name: str = "epsilon") -> None:
    at_least_zero(value, name)


def weight_decay(value: Any) -> None:
    at_least_zero(value, "weight_decay")


def momentum(value: Any) -> None:
    at_least_zero(value, "momentum")


def beta(value: Any, index: int) -> None:
    _require(value, lambda v: 0.0 <= v < 1.0, f"Invalid beta parameter at index {index}: {{}}")


def in_range(
    value: Any,
    name: str,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    label: str | None = None,
) -> None:
    """Checks ``lo <= value <= hi`` (or open ends), naming the argument."""

    def ok(v: float) -> bool:
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    if label is not None:
        label = label.replace("{", "{{").replace("}", "}}")
    _require(value, ok, label or f"Invalid {name} value: {{}} (must be in {lb}{lo}, {hi}{rb})")


def positive(value: Any, name: str) -> None:
    _require(value, lambda v: v > 0, f"Invalid {name} value: {{}} (must be > 0)")


def non_negative(value: Any, name: str) -> None:
    _require(value, _non_negative, f"Invalid {name} value: {{}} (must be >= 0)")


def at_least_zero(value: Any, name: str) -> None:
    """Checks ``0 <= value`` with torch's wording ``Invalid <name> value: <value>``."""
    _require(value, _non_negative, f"Invalid {name} value: {{}}")


def unit_interval(value: Any, name: str) -> None:
    """Checks ``0 <= value <= 1`` with torch's wording ``Invalid <name> value: <value>``."""
    _require(value, lambda v: 0.0 <= v <= 1.0, f"Invalid {name} value: {{}}")


def check_bounds(*checks: tuple[str, Any, str, float]) -> None:
    """torch's ``"<name> should be >= <bound> but is: <value>"`` checks, in the order given.

    Each check is ``(name, value, op, bound)`` with ``op`` ``">="`` or ``"<="``;
    ``None``, schedules and traced values pass unchecked.
    """
    for name, value, op, bound in checks:
        ok = (lambda v, b=bound: v >= b) if op == ">=" else (lambda v, b=bound: v <= b)
        _require(value, ok, f"{name} should be {op} {bound:g} but is: {{}}")


def state_type(name: str, state: Any, cls: type) -> None:
    """Raises ``ValueError`` when ``state`` is not a ``cls`` (another transformation's state)."""
    if not isinstance(state, cls):
        raise ValueError(
            f"{name}: expected a {cls.__name__}, got {type(state).__name__}; pass the state "
            f"returned by this {name}'s init."
        )


def positive_int(value: Any, name: str) -> None:
    """Checks that ``value`` is a Python int (not a bool) greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"Invalid {name} value: {value!r} (must be a positive int)")
    check(value > 0, f"Invalid {name} value: {value} (must be a positive int)")


def non_negative_int(value: Any, name: str) -> None:
    """Checks that ``value`` is a Python int (not a bool) that is zero or more."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"Invalid {name} value: {value!r} (must be an int >= 0)")
    check(value >= 0, f"Invalid {name} value: {value} (must be an int >= 0)")


def integer(function: str, name: str, value: Any, minimum: int, *, none_ok: bool = False) -> Any:
    """``value`` as a Python int (or ``None`` when ``none_ok``), refused when not a count.

    Python and NumPy integers pass; a bool, a float (``2.0``) or a string raises
    ``TypeError``, an integer below ``minimum`` ``ValueError``, both naming
    ``function`` and ``name``.
    """
    if value is None and none_ok:
        return None
    bound = f"an integer >= {minimum}" + (" or None" if none_ok else "")
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{function}: {name} must be {bound}, got {value!r}.")
    check(value >= minimum, f"{function}: {name} must be {bound}, got {int(value)}.")
    return int(value)


def finite(value: Any, name: str) -> None:
    """Checks that ``value`` (unless a schedule or traced) is a real number, not NaN or inf."""
    if callable(value) or deferred(value):
        return
    if (
        isinstance(value, bool)
        or np.asarray(value).dtype.kind not in "iuf"
        and not (str(np.asarray(value).dtype) == "bfloat16")
    ):
        raise TypeError(f"Invalid {name} value: {value!r} (must be a real number)")
    v = concrete(value)
    if v is not None:
        check(math.isfinite(v), f"Invalid {name} value: {_fmt(value)} (must be finite)")


class _Unset:
    """The default of a required argument that also has a deprecated name."""

    def __repr__(self) -> str:
        return "<required>"


UNSET: Any = _Unset()


def renamed(function: str, old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """The value of an argument renamed from ``old`` to ``new`` (``old`` kept one release).

    ``old_value`` is what the deprecated keyword was given (``None`` when it was
    not): using it warns with a ``DeprecationWarning``; giving both is a
    ``TypeError``. ``new_value`` is :data:`UNSET` when it was not given.
    """
    if old_value is None:
        return new_value
    if new_value is not UNSET:
        raise TypeError(f"{function}: got both {new!r} and its deprecated name {old!r}.")
    warnings.warn(
        f"{function}: the argument {old!r} is renamed {new!r} (optax's name); {old!r} will "
        "be removed in the next release.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def by_annotation(
    fn: Callable[_P, _R],
    annotations: tuple[Any, ...],
    check: Callable[[str, str, Any, Any], None],
) -> Callable[_P, _R]:
    """``fn``, calling ``check(function, name, value, annotation)`` before it runs.

    For each argument the call gives (by position or by keyword) whose annotation
    is one of ``annotations``. The decorators of the public factories are built on
    it (:func:`checked_arguments`, the schedules' value check); ``fn`` comes back as it is
    when none of its arguments has such an annotation.
    """
    sig = inspect.signature(fn)
    checked_args = {
        n: p.annotation for n, p in sig.parameters.items() if p.annotation in annotations
    }
    if not checked_args:
        return fn
    positional = [
        n
        for n, p in sig.parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]

    @functools.wraps(fn)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        given = dict(zip(positional, args, strict=False)) | kwargs
        for name, annotation in checked_args.items():
            if name in given:
                check(fn.__name__, name, given[name], annotation)
        return fn(*args, **kwargs)

    return checked


def checked_arguments(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates a public factory: checks its ``bool`` and dtype arguments before it runs.

    Each argument annotated ``bool`` must be a bool: a flag is read with
    ``if flag:``, so a string (``amsgrad="False"``) or a number would switch it on
    without a word. ``bool`` and NumPy's ``bool_`` pass. Arguments that also take
    other types (``bool | None``, a mask) are the factory's own to check.

    Each argument annotated ``DType`` (a storage dtype) must be something
    ``jnp.dtype`` accepts that is floating (bfloat16 and float16 included) or
    complex; ``RealDType``: floating only; ``... | None`` also takes ``None``. An
    integer or bool accumulator would round every update away without a word.

    Anything else raises ``TypeError`` naming the factory and the argument.

    Every ``TypeError`` or ``ValueError`` raised while the factory runs names it
    (:func:`named`).
    """
    return named(fn, by_annotation(fn, (*_FLAGS, *_DTYPES), _argument))


#: A message that already starts with a name: ``"scale_by_adam: ..."``, ``"adam() got ..."``.
_NAMED = re.compile(r"^[A-Za-z_][\w.]*(: |\(\))")

#: Whether a public function is running in this thread: the outermost names the errors.
_naming = threading.local()


def named(
    fn: Callable[..., Any], call: Callable[_P, _R] | None = None, *, name: str | None = None
) -> Callable[_P, _R]:
    """``fn`` (or ``call`` in its place), whose errors start with its name (or ``name``).

    A ``TypeError`` or ``ValueError`` raised while it runs, by its checks or by
    a function it calls, is raised again with the message prefixed by
    ``fn.__name__`` (``"clip_by_global_norm: Invalid max_norm value: -1.0 (must be
    > 0)"``), torch's wording kept after the name. A message that starts with a
    name already is left as it is, and so are errors raised while another named
    function is running (an alias building its primitives): the outermost call
    names them, the one the user made. :func:`caller_names` turns this off where
    a caller names errors itself (``optimlab.optim``, in torch's exact wording);
    ``name`` names them after something else than ``fn`` (a scheduler class
    building its schedule: ``"StepLR: ..."``).
    """
    target: Callable[..., Any] = fn if call is None else call
    prefix = f"{fn.__name__ if name is None else name}: "

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_naming, "active", False):
            return target(*args, **kwargs)
        _naming.active = True
        try:
            return target(*args, **kwargs)
        except (TypeError, ValueError) as e:
            message = str(e)
            if type(e) not in (TypeError, ValueError) or _NAMED.match(message):
                raise
            raise type(e)(prefix + message) from None
        finally:
            _naming.active = False

    return wrapper  # pyright: ignore[reportReturnType]


@contextlib.contextmanager
def caller_names() -> Iterator[None]:
    """Within it, :func:`named` functions leave their errors' messages as they are."""
    active = getattr(_naming, "active", False)
    _naming.active = True
    try:
        yield
    finally:
        _naming.active = active


_FLAGS = ("bool", bool)
#: annotation -> (complex allowed, None allowed)
_DTYPES = {
    "DType": (True, False),
    "DType | None": (True, True),
    "RealDType": (False, False),
    "RealDType | None": (False, True),
}


def _argument(function: str, name: str, value: Any, annotation: Any) -> None:
    if annotation in _FLAGS:
        _flag(function, name, value)
    else:
        storage_dtype(function, name, value, *_DTYPES[annotation])


def _flag(function: str, name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{function}: {name} must be a bool (True or False), got "
            f"{type(value).__name__} {value!r}."
        )


def storage_dtype(
    function: str, name: str, value: Any, complex_ok: bool = True, none_ok: bool = True
) -> None:
    """Raises ``TypeError`` unless ``value`` is a floating (or complex) dtype, or ``None``."""
    if value is None and none_ok:
        return
    kinds = "a floating dtype" + (" (or a complex one)" if complex_ok else "")
    kinds += ", or None" if none_ok else ""
    try:
        dtype = None if value is None or isinstance(value, bool) else jnp.dtype(value)
    except (TypeError, ValueError):
        dtype = None
    ok = dtype is not None and (
        jnp.issubdtype(dtype, jnp.floating)
        or complex_ok
        and jnp.issubdtype(dtype, jnp.complexfloating)
    )
    if not ok:
        shown = dtype if dtype is not None else f"{type(value).__name__} {value!r}"
        raise TypeError(f"{function}: {name} must be {kinds}, got {shown}.")
