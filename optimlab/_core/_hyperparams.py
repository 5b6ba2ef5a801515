"""Hyperparameters as explicit state: read, set, schedule and vmap them without recompiling.

One mechanism for every optimizer: its numeric hyperparameters packed into one
array (:class:`Hyperparams`) beside one step counter (:class:`HyperparamsState`),
validated by the rule table (``_rules``) wherever they are given, set or
restored. Aliases are built once, from references (``_binding``).
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _elementwise, _grads, _paths, _rules, _tree, _validate
from ._base import GradientTransformation, safe_increment
from ._binding import built_once
from ._grads import as_param_dtypes
from ._types import ScalarOrSchedule

__all__ = [
    "Hyperparams",
    "HyperparamsState",
    "build_hyperparams",
    "initial_hyperparams",
    "with_hyperparams",
    "hyperparams",
    "set_hyperparams",
    "hyperparam_dtype",
]

#: Whether aliases that ask for it are built once (tests turn it off to compare).
BUILD_ONCE = True

Builder = Callable[[Any, Mapping[str, Any]], GradientTransformation]


class Names(tuple):  # pyright: ignore[reportMissingTypeArgument]
    """The hyperparameter names of one optimizer, tagged (private).

    ``owner`` is the factory whose rules apply to the values (``"sm3"``: its
    ``momentum`` is in ``[0, 1)``; ``""``: the rules by name); ``scheduled``, the
    names that follow a schedule (``set_hyperparams`` refuses them). It compares,
    hashes and prints as the plain tuple, so a tree's structure (and a
    checkpoint's manifest) does not see the tags.
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
        """Packs ``{name: value}`` (scalars or arrays of one batch shape) as ``dtype``."""
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
        # A framework may keep the leaf in a box of its own (an NNX Variable).
        packed = self.packed
        if isinstance(packed, (jax.Array, np.ndarray, jax.core.Tracer)):
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
        if isinstance(v, (jax.Array, np.ndarray)) and not isinstance(v, jax.core.Tracer):
            arr = np.asarray(v)
            pairs = ", ".join(f"{n}={arr[..., i]!s}" for i, n in enumerate(self.names))
            return f"Hyperparams({pairs})"
        return f"Hyperparams(names={self.names!r}, packed={v!r})"

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


# Flattening runs on every call of a jitted step: ``operator.attrgetter`` flattens
# without a Python frame (0.4 us less per one-leaf step than the method).
_flatten = operator.attrgetter("_children", "names")
jax.tree_util.register_pytree_with_keys(
    Hyperparams, Hyperparams.tree_flatten_with_keys, Hyperparams.tree_unflatten, _flatten
)


class HyperparamsState(NamedTuple):
    """State of an optimizer built by :func:`with_hyperparams`.

    Attributes:
        count: the optimizer's single int32 step counter (saturating): the number
            of updates applied so far, and the step fed to schedules.
        hyperparams: every numeric hyperparameter packed into one array (a
            :class:`Hyperparams`): the values of the last step (initially, the given ones).
        inner_state: the state of the transformations built from them.
    """

    count: jax.Array
    hyperparams: Hyperparams
    inner_state: Any


@_validate.checked_arguments
def with_hyperparams(
    build: Builder, /, **hyperparameters: ScalarOrSchedule
) -> GradientTransformation:
    """Builds an optimizer whose numeric hyperparameters live in its state.

    ``build(step, h)`` returns the transformation to apply, given the step count
    and a mapping ``h`` of hyperparameter values (a :class:`~optimlab.Hyperparams`
    of scalar arrays, possibly traced), each a number or a schedule (a pure
    function of the step). The state is a :class:`HyperparamsState`: one step
    counter and the current values packed into one array (one buffer of a jitted
    step for all of them), the same structure whether a value is a constant or a
    schedule. Values are read with :func:`hyperparams` and changed with
    :func:`set_hyperparams` without recompiling; :func:`jax.vmap` over states
    trains a population with different values. ``build`` is called when the step
    is traced, not on every jitted call; a schedule's value is recomputed from
    the step at each update and overrides whatever was set.

    Args:
        build: ``(step, h) -> GradientTransformation``.
        **hyperparameters: the numeric hyperparameters, each a scalar or a schedule.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`HyperparamsState`.

    Examples:
        >>> tx = optimlab.with_hyperparams(
        ...     lambda step, h: optimlab.scale(-h["learning_rate"]), learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(3))
        >>> state = optimlab.set_hyperparams(state, learning_rate=0.5)
        >>> tx.update(jnp.ones(3), state)[0]
        Array([-0.5, -0.5, -0.5], dtype=float32)
    """
    return build_hyperparams(build, hyperparameters, once=False)


def build_hyperparams(
    build: Builder, specs: Mapping[str, ScalarOrSchedule], *, once: bool, owner: str = ""
) -> GradientTransformation:
    """:func:`with_hyperparams`, optionally calling ``build`` once (private).

    With ``once``, ``build`` is called once, from references that ``init`` and
    ``update`` bind to the state's values (``_binding.built_once``); only a
    ``build`` whose transformations read the values when they run, not while they
    are built, may ask for it (tests/core/test_hyperparams_refs.py compares every
    registry case both ways).

    ``owner`` is the factory whose entries in the rule table (``FACTORY_RULES``)
    apply to these values, here and wherever the state's values are set or restored.
    """
    if not callable(build):
        raise TypeError(
            "with_hyperparams: build must be a function (step, h) -> GradientTransformation, "
            f"got {type(build).__name__}."
        )
    specs = _rules.check_specs(specs, owner, hyperparam_dtype())
    names = tuple(specs)
    scheduled = tuple(name for name, spec in specs.items() if callable(spec))

    def values_at(step, stored):
        # The values for this step, packed in this optimizer's order. A packed state
        # without schedules is returned as is, so a jitted step adds no operation.
        if isinstance(stored, Hyperparams):
            if not scheduled and stored.names == names:
                return stored
            dtype = stored.packed.dtype
        else:
            dtype = hyperparam_dtype()
        out = {}
        for name, spec in specs.items():
            if stored is None or callable(spec):
                out[name] = _validate.scalar(name, spec(step) if callable(spec) else spec, dtype)
            else:
                out[name] = stored[name]
        return Hyperparams.from_mapping(out, dtype, owner, scheduled)

    run = built_once(build, names, once=once and BUILD_ONCE)

    def init_fn(params):
        _grads.reject_non_float("init", params)
        count = jnp.zeros([], jnp.int32)
        values = values_at(count, None)
        return HyperparamsState(count, values, run(count, values.unpacked(), "init", params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, HyperparamsState):  # no call (no Python frame) when it is
            _validate.state_type(owner or "with_hyperparams", state, HyperparamsState)
        if getattr(state.hyperparams, "names", None) != names and set(state.hyperparams) != set(
            specs
        ):
            raise ValueError(
                "state from another optimizer: its hyperparameters are "
                f"{sorted(state.hyperparams)}, this optimizer's are {sorted(specs)}."
            )
        updates = as_param_dtypes(owner or "update", updates, params)
        values = values_at(state.count, state.hyperparams)
        updates, inner_state = run(
            state.count,
            values.unpacked(),
            "update",
            updates,
            state.inner_state,
            params,
            **extra_args,
        )
        # After the transformations, whose own checks name them: what none of them
        # compared with the params (a stateless alias given a tree with a missing or
        # extra entry) is refused here, naming the key path.
        _tree.check_fits(owner or "update", updates, params)
        return updates, HyperparamsState(safe_increment(state.count), values, inner_state)

    def parts():
        # Built once, from the initial values, only when asked (by bucketed).
        count = jnp.zeros([], jnp.int32)
        return (build(count, values_at(count, None).unpacked()),)

    tx = GradientTransformation(init_fn, update_fn)
    _INITIAL[tx.update] = lambda: values_at(jnp.zeros([], jnp.int32), None)
    return _elementwise.declare_parts(tx, parts)


#: update function -> thunk of the initial values, for the transformations built here.
_INITIAL: weakref.WeakKeyDictionary[Callable[..., Any], Any] = weakref.WeakKeyDictionary()


def initial_hyperparams(tx: GradientTransformation) -> Hyperparams | None:
    """The hyperparameters ``tx.init`` would put in its state, read without tracing anything.

    ``None`` when ``tx`` was not built by :func:`with_hyperparams` (or an alias on it).
    """
    thunk = _INITIAL.get(tx.update)
    return None if thunk is None else thunk()


def hyperparam_states(state: Any, caller: str | None = None) -> list[tuple[str, HyperparamsState]]:
    """Each hyperparameter state in ``state`` with its group name (none: ``caller``'s error)."""
    found = _paths.find_nodes(state, HyperparamsState)
    if not found and caller is not None:
        raise ValueError(
            f"{caller}: this state holds no hyperparameters; it was not built by an "
            "optimlab optimizer alias (or with_hyperparams)."
        )
    return found


def hyperparams(state: Any) -> dict[str, jax.Array]:
    """Returns every hyperparameter held in an optimizer state, as a flat dict.

    With a single optimizer the keys are the hyperparameter names
    (``"learning_rate"``, ``"b1"``...). When the state holds several optimizers
    (a chain of two aliases, or param groups), each key is prefixed by where the
    optimizer sits, as in ``"encoder/learning_rate"``.

    Args:
        state: an optimizer state.

    Returns:
        ``{name: scalar array}``, the values used at the last step.

    Examples:
        >>> state = optimlab.adam(1e-3).init(jnp.zeros(2))
        >>> round(float(optimlab.hyperparams(state)["learning_rate"]), 6)
        0.001
    """
    found = hyperparam_states(state, "hyperparams")
    if len(found) == 1:
        return dict(found[0][1].hyperparams)
    return {f"{p}/{n}" if p else n: v for p, s in found for n, v in s.hyperparams.items()}


def _with_values(stored: Mapping[str, jax.Array], values: Mapping[str, Any]) -> Hyperparams:
    """``stored`` with the given values written into its packed array (one scatter)."""
    if not isinstance(stored, Hyperparams):
        stored = Hyperparams.from_mapping(stored)
    if not any(n in stored for n in values):
        return stored
    # Rebuilt through the pytree protocol, not the constructor, so whatever a framework
    # keeps around the leaf (an NNX Variable, an Equinox wrapper) is rebuilt too.
    leaves, treedef = jax.tree_util.tree_flatten(stored)
    if len(leaves) != 1:
        raise ValueError(
            f"set_hyperparams: the packed hyperparameters hold {len(leaves)} leaves, "
            "expected one array; pass a state built by an optimlab optimizer."
        )
    packed = _rules.write(stored.names, stored.owner, jnp.asarray(leaves[0]), values)
    return jax.tree_util.tree_unflatten(treedef, [packed])


def set_hyperparams(state: Any, *, group: str | None = None, **values: Any) -> Any:
    """Returns a new state with some hyperparameters replaced.

    Values may be Python numbers, NumPy scalars or arrays; they are cast to the
    stored dtype (and are never weak-typed) so a jitted step does not recompile.

    Args:
        state: an optimizer state.
        group: when the state holds several optimizers (param groups, chains), the
            prefix of the one to change, as shown by :func:`hyperparams`; ``None``
            changes the name everywhere it appears.
        **values: new values by hyperparameter name, or by the full name
            :func:`hyperparams` reports (``"head/learning_rate"``, passed as
            ``**{"head/learning_rate": v}``), which changes that optimizer only.

    Returns:
        The updated state (the input is not modified).

    Raises:
        TypeError: ``group`` is not a str, or a value is not a real number.
        ValueError: an unknown name or group, a value of the wrong shape, or a
            hyperparameter that follows a schedule given when the optimizer was
            built (its value is recomputed at every step).

    Examples:
        >>> state = optimlab.sgd(0.1).init(jnp.zeros(2))
        >>> state = optimlab.set_hyperparams(state, learning_rate=0.01)
        >>> round(float(optimlab.hyperparams(state)["learning_rate"]), 6)
        0.01
    """
    _rules.check_group(group)
    found = dict(hyperparam_states(state, "set_hyperparams"))
    inside = lambda p: group is None or p == group or p.startswith(group + "/")
    routed: dict[str, dict[str, Any]] = {}
    # A full name as hyperparams() reports it ("head/learning_rate") targets one optimizer.
    for key in [k for k in values if len(found) > 1 and "/" in k]:
        prefix, _, name = key.rpartition("/")
        if prefix in found and name in found[prefix].hyperparams:
            if not inside(prefix):
                raise ValueError(
                    f"set_hyperparams: {key!r} is not in group {group!r}; drop the prefix or "
                    "the group argument."
                )
            routed.setdefault(prefix, {})[name] = values.pop(key)
    targets = [p for p in found if inside(p)]
    if not targets:
        raise ValueError(
            f"set_hyperparams: unknown group {group!r}; the state has {sorted(found)}."
        )
    if routed and not values:
        targets = []
    available = set().union(*(found[p].hyperparams for p in targets))
    unknown = sorted(set(values) - available)
    if unknown:
        raise ValueError(
            f"set_hyperparams: unknown hyperparameter(s) {unknown}; this state has "
            f"{sorted(available)}."
        )
    new = {}
    for p in dict.fromkeys([*targets, *routed]):
        hp = found[p].hyperparams
        if p in targets:
            hp = _with_values(hp, values)
        if p in routed:
            hp = _with_values(hp, routed[p])
        new[p] = found[p]._replace(hyperparams=hp)
    return _paths.replace_nodes(state, HyperparamsState, new)
