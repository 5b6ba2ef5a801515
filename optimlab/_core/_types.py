"""Type aliases shared across optimlab."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import jax
from jax.typing import ArrayLike

__all__ = [
    "ArrayLike",
    "Params",
    "Updates",
    "OptState",
    "Schedule",
    "ScalarOrSchedule",
    "DType",
    "RealDType",
    "Deferred",
]

#: A pytree of arrays (``None`` leaves allowed) holding model parameters.
Params: TypeAlias = Any
#: A pytree with the structure of :data:`Params` holding gradients or updates.
Updates: TypeAlias = Any
#: A pytree of arrays holding optimizer state (NamedTuples of arrays).
OptState: TypeAlias = Any
#: A pure function of the (int) step count returning a scalar.
Schedule: TypeAlias = Callable[[jax.Array], ArrayLike]
#: A hyperparameter: a scalar or a schedule of the step.
ScalarOrSchedule: TypeAlias = ArrayLike | Schedule
#: A storage dtype: a floating (or complex) dtype, anything ``jnp.dtype`` accepts.
DType: TypeAlias = Any
#: A storage dtype of a factory without complex support: a real floating dtype.
RealDType: TypeAlias = Any


class Deferred:
    """A value known only when its optimizer runs (private base class).

    :class:`~optimlab.Hyperparams`' build-once references derive from it, so the
    checks that read numbers eagerly (the rule table) leave them, like traced
    values, to the moment they are bound.
    """

    __slots__ = ()
