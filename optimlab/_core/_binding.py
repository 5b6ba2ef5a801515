"""Late binding: build an object once from references, bound to values at each call (private).

An optimizer alias is a chain of transformations built from its hyperparameters.
Building it again at every trace costs Python calls; building it once, from
references that each call binds to the state's values, does not.
:func:`built_once` does that for any ``build(step, values)``: a reference
converts like a scalar array (``jnp.asarray(ref)``, arithmetic, ``.astype``)
while bound, and raises :class:`Unbound` when read outside a call, in which
case the object is built from the values at each call instead.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from ._types import Deferred

__all__ = ["Bindings", "Ref", "Unbound", "built_once"]


class Unbound(LookupError):
    """A :class:`Ref` was read outside the call that binds it."""


class Bindings(dict):  # pyright: ignore[reportMissingTypeArgument]
    """The values the references of one built object read during one call.

    Filled for the duration of a call and emptied after; a name read while it is
    empty raises :class:`Unbound`.
    """

    def __missing__(self, name: str) -> Any:
        raise Unbound(f"hyperparameter {name!r} was read outside its optimizer's update")


class Ref(Deferred):
    """A value read from its :class:`Bindings` when the built object runs.

    Converts like a scalar array while bound (``jnp.asarray(ref)``, arithmetic,
    comparisons, ``.astype``); read unbound, raises :class:`Unbound`.
    """

    __slots__ = ("name", "value", "__jax_array__")

    def __init__(self, name: str, bindings: Bindings):
        self.name = name
        # A bound method of the dict: reading a value runs no Python frame, which
        # matters as a traced step reads every hyperparameter once per leaf.
        self.value = self.__jax_array__ = functools.partial(bindings.__getitem__, name)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value(), dtype=dtype)

    def __bool__(self) -> bool:
        return bool(self.value())

    def __float__(self) -> float:
        return float(self.value())

    def astype(self, dtype: Any) -> Any:
        return jnp.asarray(self.value()).astype(dtype)

    def __repr__(self) -> str:
        return f"Ref({self.name!r})"

    __hash__ = object.__hash__


def _operator(name: str, reflected: bool) -> Callable[..., Any]:
    op = getattr(operator, name)
    if reflected:
        return lambda self, other: op(other, self.value())
    return lambda self, other: op(self.value(), other)


for _name in ("add", "sub", "mul", "truediv", "pow", "mod", "floordiv"):
    setattr(Ref, f"__{_name}__", _operator(_name, False))
    setattr(Ref, f"__r{_name}__", _operator(_name, True))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(Ref, f"__{_name}__", _operator(_name, False))
Ref.__neg__ = lambda self: -self.value()  # pyright: ignore[reportAttributeAccessIssue]
Ref.__abs__ = lambda self: abs(self.value())  # pyright: ignore[reportAttributeAccessIssue]


def built_once(
    build: Callable[[Any, Mapping[str, Any]], Any],
    names: Iterable[str],
    *,
    once: bool,
    step_key: str = "<step>",
) -> Callable[..., Any]:
    """``run(step, values, method, *args)``: calls ``method`` of what ``build`` returns.

    With ``once``, ``build`` is called here, given references for the step (bound
    under ``step_key``, not a valid name) and for each name, and each call binds them to ``step``
    and ``values`` for its duration (under a lock: an object traced from two
    threads at once takes turns). Otherwise, or when ``build`` read a reference
    while building, each call builds it from ``values``.
    """
    bound = Bindings()
    lock = threading.RLock()
    fixed = None
    if once:
        try:
            fixed = build(Ref(step_key, bound), {n: Ref(n, bound) for n in names})
        except Unbound:
            pass

    def run(step, values, method, *args, **kwargs):
        if fixed is None:
            return getattr(build(step, values), method)(*args, **kwargs)
        with lock:
            bound.update(values)
            bound[step_key] = step
            try:
                return getattr(fixed, method)(*args, **kwargs)
            finally:
                bound.clear()

    return run
