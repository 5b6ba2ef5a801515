"""Packed hyperparameters: one array for all the hyperparameters of one optimizer."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Hyperparams",
    "Names",
    "Bindings",
    "HyperparamRef",
    "UnboundHyperparam",
    "deferred",
    "hyperparam_dtype",
]

_Tracer = jax.core.Tracer


class Names(tuple):  # pyright: ignore[reportMissingTypeArgument]
    """The hyperparameter names of one optimizer, tagged with its factory (private).

    ``owner`` names the factory whose rules apply to the values (``"sm3"``: its
    ``momentum`` is in ``[0, 1)``, where the name's own rule is ``>= 0``); ``""``
    when unknown, and the rules by name apply. ``scheduled`` holds the names whose
    values follow a schedule given when the optimizer was built (recomputed at
    every step, so ``set_hyperparams`` refuses them). It compares, hashes and
    prints as the plain tuple, so the tags leave a tree's structure (and a
    checkpoint's manifest) as it was.
    """

    owner: str
    scheduled: frozenset[str]

    def __new__(cls, names: Any = (), owner: str = "", scheduled: Iterable[str] = ()) -> Names:
        out = super().__new__(cls, names)
        out.owner = owner
        out.scheduled = frozenset(scheduled)
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return Names, (tuple(self), self.owner, tuple(sorted(self.scheduled)))


def hyperparam_dtype() -> jnp.dtype:
    """The dtype hyperparameters are stored in: float64 under ``jax_enable_x64``, else float32."""
    return jnp.dtype(jnp.result_type(float))


class Hyperparams(Mapping[str, jax.Array]):
    """The hyperparameters of one optimizer, packed into one array.

    A read-only mapping from name to value, held in
    :attr:`~optimlab.HyperparamsState.hyperparams`. It is a pytree whose only leaf is
    ``packed``, every hyperparameter stacked along the last axis (shape ``(k,)``
    for ``k`` names, ``(P, k)`` for a population batched outside :func:`jax.vmap`),
    and whose static part is the tuple of names. One array instead of one scalar
    per hyperparameter keeps a jitted step to one input and one output buffer for
    all of them. ``h[name]`` is ``h.packed[..., i]``. Read values with
    :func:`~optimlab.hyperparams` and change them with
    :func:`~optimlab.set_hyperparams`.

    Args:
        names: the hyperparameter names, in the order of the last axis of ``packed``.
        packed: the packed values, shape ``(..., len(names))``.
        owner: the factory whose validation rules apply to the values (``""``: the
            rules by name).
        scheduled: the names whose values follow a schedule (default: those
            ``names`` is tagged with, else none).

    Examples:
        >>> h = optimlab.Hyperparams.from_mapping({"learning_rate": 0.5, "b1": 0.9})
        >>> h
        Hyperparams(learning_rate=0.5, b1=0.9)
        >>> h.packed
        Array([0.5, 0.9], dtype=float32)
        >>> list(h), h["learning_rate"]
        (['learning_rate', 'b1'], Array(0.5, dtype=float32))
    """

    __slots__ = ("names", "packed", "_children")
    names: tuple[str, ...]
    packed: jax.Array

    def __init__(
        self,
        names: tuple[str, ...],
        packed: jax.Array,
        owner: str | None = None,
        scheduled: Iterable[str] | None = None,
    ):
        names = Names(
            names,
            getattr(names, "owner", "") if owner is None else owner,
            getattr(names, "scheduled", ()) if scheduled is None else scheduled,
        )
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"Hyperparams: names must be distinct strings, got {names!r}.")
        shape = getattr(packed, "shape", None)
        if shape is not None and (len(shape) == 0 or shape[-1] != len(names)):
            raise ValueError(
                f"Hyperparams: packed must have shape (..., {len(names)}) for names "
                f"{names!r}, got {tuple(shape)}."
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "packed", packed)
        object.__setattr__(self, "_children", (packed,))

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        dtype: Any = None,
        owner: str = "",
        scheduled: Iterable[str] = (),
    ) -> Hyperparams:
        """Packs ``{name: value}`` (scalars, or arrays of one batch shape) into one array.

        Args:
            values: the values by name; their order is the packed order.
            dtype: the dtype of the packed array (default :func:`hyperparam_dtype`).
            owner: the factory whose validation rules apply (``""``: the rules by name).
            scheduled: the names whose values follow a schedule.

        Returns:
            A :class:`Hyperparams` with these names.
        """
        dtype = hyperparam_dtype() if dtype is None else jnp.dtype(dtype)
        arrays = [jnp.asarray(values[n]).astype(dtype) for n in values]
        if not arrays:
            return cls((), jnp.zeros((0,), dtype), owner, scheduled)
        if len({a.shape for a in arrays}) > 1:
            arrays = jnp.broadcast_arrays(*arrays)
        return cls(tuple(values), jnp.stack(arrays, axis=-1), owner, scheduled)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Hyperparams is read-only: use optimlab.set_hyperparams.")

    def __reduce__(self) -> tuple[Any, ...]:
        return Hyperparams, (self.names, self.packed)

    @property
    def owner(self) -> str:
        """The factory whose validation rules apply to the values (``""``: by name)."""
        return getattr(self.names, "owner", "")

    def _array(self) -> Any:
        # A framework may keep the leaf in a box of its own (an NNX Variable): read
        # the one array inside it.
        packed = self.packed
        if isinstance(packed, (jax.Array, np.ndarray, _Tracer)):
            return packed
        leaves = jax.tree_util.tree_leaves(packed)
        return leaves[0] if len(leaves) == 1 else packed

    def __getitem__(self, name: str) -> jax.Array:
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(name) from None
        return self._array()[..., i]

    def unpacked(self) -> dict[str, jax.Array]:
        """Every value by name, sliced from the packed array once each."""
        packed = self._array()
        out = {}
        for i, name in enumerate(self.names):  # a loop: no Python frame at trace time
            out[name] = packed[..., i]
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if isinstance(other, Hyperparams) and other.packed is self.packed:
            return other.names == self.names
        if set(self) != set(other):
            return False
        return all(bool(np.array_equal(self[n], other[n])) for n in self.names)

    def __repr__(self) -> str:
        v = self._array()
        if isinstance(v, (jax.Array, np.ndarray)) and not isinstance(v, _Tracer):
            arr = np.asarray(v)
            pairs = ", ".join(f"{n}={arr[..., i]!s}" for i, n in enumerate(self.names))
            return f"Hyperparams({pairs})"
        return f"Hyperparams(names={self.names!r}, packed={v!r})"

    def tree_flatten(self) -> tuple[tuple[jax.Array], tuple[str, ...]]:
        """The pytree protocol: the packed array is the only child, the names are static."""
        return (self.packed,), self.names

    def tree_flatten_with_keys(self) -> tuple[tuple[tuple[Any, jax.Array]], tuple[str, ...]]:
        """The pytree protocol, with the key path ``.packed`` for the packed array."""
        return ((jax.tree_util.GetAttrKey("packed"), self.packed),), self.names

    @classmethod
    def tree_unflatten(cls, names: tuple[str, ...], children: Any) -> Hyperparams:
        """The pytree protocol (no check: transformations put any object in the leaf)."""
        out = object.__new__(cls)
        object.__setattr__(out, "names", names)
        object.__setattr__(out, "packed", children[0])
        object.__setattr__(out, "_children", tuple(children))
        return out


# Flattening runs on every call of a jitted step (inputs) and unflattening on every
# return (outputs). ``operator.attrgetter`` flattens without a Python frame, which
# measured 0.4 us less per one-leaf step than the method.
jax.tree_util.register_pytree_with_keys(
    Hyperparams,
    Hyperparams.tree_flatten_with_keys,
    Hyperparams.tree_unflatten,
    operator.attrgetter("_children", "names"),
)


class UnboundHyperparam(LookupError):
    """A :class:`HyperparamRef` was read outside its optimizer's ``init`` or ``update``."""


class Bindings(dict):  # pyright: ignore[reportMissingTypeArgument]
    """The values an optimizer's :class:`HyperparamRef` read during one call (private).

    Filled by :func:`~optimlab.with_hyperparams` for the duration of ``init`` or
    ``update`` and emptied after; a name read while it is empty raises
    :class:`UnboundHyperparam`.
    """

    def __missing__(self, name: str) -> Any:
        raise UnboundHyperparam(f"hyperparameter {name!r} was read outside its optimizer's update")


class HyperparamRef:
    """A hyperparameter read from its optimizer's state when the optimizer runs (private).

    :func:`~optimlab.with_hyperparams` builds its transformation once, giving it
    these references instead of values; ``init`` and ``update`` bind them to the
    state's values for the duration of the call, so a jitted step traces the
    transformation without rebuilding it. A reference converts like a scalar array
    (``jnp.asarray(ref)``, arithmetic, ``.astype``) while bound; read unbound (a
    primitive that computes with a value while it is being built), it raises
    :class:`UnboundHyperparam`, and ``with_hyperparams`` rebuilds that
    transformation at each call instead.
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
        return f"HyperparamRef({self.name!r})"


def _binary(op: Callable[[Any, Any], Any], reflected: bool) -> Callable[..., Any]:
    if reflected:
        return lambda self, other: op(other, self.value())
    return lambda self, other: op(self.value(), other)


for _name, _op in (
    ("add", operator.add),
    ("sub", operator.sub),
    ("mul", operator.mul),
    ("truediv", operator.truediv),
    ("pow", operator.pow),
    ("mod", operator.mod),
    ("floordiv", operator.floordiv),
):
    setattr(HyperparamRef, f"__{_name}__", _binary(_op, False))
    setattr(HyperparamRef, f"__r{_name}__", _binary(_op, True))
for _name, _op in (
    ("lt", operator.lt),
    ("le", operator.le),
    ("gt", operator.gt),
    ("ge", operator.ge),
    ("eq", operator.eq),
    ("ne", operator.ne),
):
    setattr(HyperparamRef, f"__{_name}__", _binary(_op, False))
HyperparamRef.__hash__ = object.__hash__  # pyright: ignore[reportAttributeAccessIssue]
HyperparamRef.__neg__ = lambda self: -self.value()  # pyright: ignore[reportAttributeAccessIssue]
HyperparamRef.__abs__ = lambda self: abs(self.value())  # pyright: ignore[reportAttributeAccessIssue]


def deferred(value: Any) -> bool:
    """Whether a value is known only when the optimizer runs (a tracer or a reference)."""
    return isinstance(value, (_Tracer, HyperparamRef))
