"""Hyperparameters as explicit state: read, set, schedule and vmap them without recompiling."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _elementwise, _grads, _rules, _tree, _validate
from ._base import GradientTransformation, safe_increment
from ._grads import as_param_dtypes
from ._hyperparams_packed import (
    Bindings,
    HyperparamRef,
    Hyperparams,
    UnboundHyperparam,
    hyperparam_dtype,
)
from ._paths import path_keys
from ._types import ScalarOrSchedule

_Tracer = jax.core.Tracer

__all__ = [
    "HyperparamsState",
    "alias_hyperparams",
    "build_hyperparams",
    "initial_hyperparams",
    "with_hyperparams",
    "hyperparams",
    "set_hyperparams",
    "hyperparam_dtype",
]

#: Whether aliases that ask for it are built once (tests turn it off to compare).
BUILD_ONCE = True

#: The key the step count is bound under (not a valid hyperparameter name).
_STEP = "<step>"

Builder = Callable[[Any, Mapping[str, Any]], GradientTransformation]


class HyperparamsState(NamedTuple):
    """State of an optimizer built by :func:`with_hyperparams`.

    Attributes:
        count: the optimizer's single int32 step counter (saturating). It is the
            number of updates applied so far and the step fed to schedules.
        hyperparams: every numeric hyperparameter, packed into one array (a
            :class:`Hyperparams`), holding the values used at the last step (the
            initial values before any step).
        inner_state: the state of the transformations built from them.
    """

    count: jax.Array
    hyperparams: Hyperparams
    inner_state: Any


def _as_hparam(name: str, value: Any, dtype: jnp.dtype) -> jax.Array:
    if isinstance(value, bool):
        raise TypeError(f"hyperparameter {name!r} must be a number or a schedule, got a bool.")
    if not isinstance(value, _Tracer):
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


@_validate.checked_arguments
def with_hyperparams(
    build: Builder, /, **hyperparameters: ScalarOrSchedule
) -> GradientTransformation:
    """Builds an optimizer whose numeric hyperparameters live in its state.

    ``build(step, h)`` returns the transformation to apply, given the step count
    and a mapping ``h`` of hyperparameter values (a :class:`~optimlab.Hyperparams`
    of scalar arrays, possibly traced). Each hyperparameter is a number or a
    schedule (a pure function of the step). The state is a :class:`HyperparamsState`
    holding one step counter and the current values of all hyperparameters packed
    into one array (one buffer of a jitted step for all of them). Its structure is
    the same whether a value is a constant or a schedule, values can be read with
    :func:`hyperparams` and changed with :func:`set_hyperparams` without
    recompiling, and :func:`jax.vmap` over states trains a population with
    different values.

    ``build`` is called once when the step is traced (not on every jitted call);
    no signature is inspected. When a hyperparameter is a schedule, its value is
    recomputed from the step at each update and overrides whatever was set.

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


def alias_hyperparams(
    build: Builder, owner: str = "", /, **hyperparameters: ScalarOrSchedule
) -> GradientTransformation:
    """:func:`with_hyperparams` for optimlab's own aliases: ``build`` is called once (private).

    See :func:`build_hyperparams`: the alias's transformations read the
    hyperparameters through references bound at each call, and a ``build`` that
    reads one while building is called at each trace instead. ``owner`` names the
    alias whose rules in the rule table validate its values.
    """
    return build_hyperparams(build, hyperparameters, once=True, owner=owner)


def build_hyperparams(
    build: Builder, specs: Mapping[str, ScalarOrSchedule], *, once: bool, owner: str = ""
) -> GradientTransformation:
    """:func:`with_hyperparams`, optionally calling ``build`` once (private).

    With ``once``, ``build`` is called once, given :class:`HyperparamRef`
    references for the step and the values, which ``init`` and ``update`` bind to
    the state's values for the duration of each call: tracing a step runs the
    transformation without building it again. Only a ``build`` whose
    transformations read every hyperparameter when they run (through
    ``jnp.asarray``, arithmetic or ``.astype``), not while they are built, may ask
    for it; tests/core/test_hyperparams_refs.py runs every registry case both ways and
    requires bitwise equal results. A ``build`` that reads a reference while it
    builds (``float(h["lr"])``) is called at each trace instead.

    ``owner`` is the factory whose entries in the rule table (``FACTORY_RULES``)
    apply to these values, here and wherever the state's values are set or restored.
    """
    specs = _checked(build, specs, owner)
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
            if callable(spec):
                out[name] = _as_hparam(name, spec(step), dtype)
            elif stored is None:
                out[name] = _as_hparam(name, spec, dtype)
            else:
                out[name] = stored[name]
        return Hyperparams.from_mapping(out, dtype, owner, scheduled)

    run = _runner(build, names, once=once and BUILD_ONCE)

    def init_fn(params):
        _grads.reject_non_float("init", params)
        count = jnp.zeros([], jnp.int32)
        values = values_at(count, None)
        return HyperparamsState(count, values, run(count, values, "init", params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, HyperparamsState):
            raise ValueError(
                f"expected a HyperparamsState, got {type(state).__name__}: pass the state "
                "returned by this optimizer's init."
            )
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
            state.count, values, "update", updates, state.inner_state, params, **extra_args
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


def _checked(
    build: Any, specs: Mapping[str, ScalarOrSchedule], owner: str
) -> dict[str, ScalarOrSchedule]:
    """The specs, each value checked by the rule table (schedules are checked when they run)."""
    if not callable(build):
        raise TypeError(
            "with_hyperparams: build must be a function (step, h) -> GradientTransformation, "
            f"got {type(build).__name__}."
        )
    specs = dict(specs)
    for name, value in specs.items():
        if not callable(value):
            _as_hparam(name, value, hyperparam_dtype())
            v = _validate.concrete(value)
            if v is not None:
                _rules.check(name, v, owner=owner)
    return specs


#: update function -> thunk of the initial values, for the transformations built here.
_INITIAL: weakref.WeakKeyDictionary[Callable[..., Any], Callable[[], Hyperparams]] = (
    weakref.WeakKeyDictionary()
)


def initial_hyperparams(tx: GradientTransformation) -> Hyperparams | None:
    """The hyperparameters ``tx.init`` would put in its state (names and values), or ``None``.

    ``None`` when ``tx`` was not built by :func:`with_hyperparams` (or an alias on
    it). Read from what the builder declared: nothing is initialised or traced.
    """
    thunk = _INITIAL.get(tx.update)
    return None if thunk is None else thunk()


def _runner(build: Builder, names: tuple[str, ...], *, once: bool) -> Callable[..., Any]:
    """``run(count, values, method, *args)``: calls ``method`` of the built transformation.

    With ``once``, the transformation is built here, from references, and each call
    binds them to ``values`` for its duration (under a lock: a transformation traced
    from two threads at once takes turns). Otherwise, or when ``build`` read a
    reference while building, each call builds it from ``values``.
    """
    bound = Bindings()
    lock = threading.RLock()
    fixed = None
    if once:
        try:
            fixed = build(HyperparamRef(_STEP, bound), {n: HyperparamRef(n, bound) for n in names})
        except UnboundHyperparam:
            pass

    def run(count, values, method, *args, **kwargs):
        if fixed is None:
            return getattr(build(count, values.unpacked()), method)(*args, **kwargs)
        with lock:
            bound.update(values.unpacked())
            bound[_STEP] = count
            try:
                return getattr(fixed, method)(*args, **kwargs)
            finally:
                bound.clear()

    return run


def _is_hstate(x: Any) -> bool:
    return isinstance(x, HyperparamsState)


def hyperparam_states(state: Any, caller: str | None = None) -> list[tuple[str, HyperparamsState]]:
    """Each hyperparameter state in ``state`` with its group name.

    With ``caller``, finding none raises a ``ValueError`` naming it.
    """
    found = []
    leaves = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_hstate)[0]
    for path, leaf in leaves:
        if isinstance(leaf, HyperparamsState):
            found.append((_path_name(path), leaf))
    if not found and caller is not None:
        raise ValueError(
            f"{caller}: this state holds no hyperparameters; it was not built by an "
            "optimlab optimizer alias (or with_hyperparams)."
        )
    return found


_WRAPPER_FIELDS = frozenset({"inner_state", "inner_states"})


def _path_name(path: tuple[Any, ...]) -> str:
    return "/".join(path_keys(path, _WRAPPER_FIELDS))


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
    out = {}
    for prefix, s in found:
        for name, value in s.hyperparams.items():
            out[f"{prefix}/{name}" if prefix else name] = value
    return out


def _with_values(stored: Mapping[str, jax.Array], values: Mapping[str, Any]) -> Hyperparams:
    """``stored`` with the given values written into its packed array (one scatter)."""
    if not isinstance(stored, Hyperparams):
        stored = Hyperparams.from_mapping(stored)
    names = [n for n in values if n in stored]
    if not names:
        return stored
    _rules.refuse_scheduled(stored.names, names)
    # The packed array is rebuilt through the pytree protocol, not the constructor,
    # so whatever a framework keeps around the leaf (an NNX Variable, an Orbax or
    # Equinox wrapper) is rebuilt too and the framework can write the value back.
    leaves, treedef = jax.tree_util.tree_flatten(stored)
    if len(leaves) != 1:
        raise ValueError(
            f"set_hyperparams: the packed hyperparameters hold {len(leaves)} leaves, "
            "expected one array; pass a state built by an optimlab optimizer."
        )
    old = jnp.asarray(leaves[0])
    like = jax.ShapeDtypeStruct(old.shape[:-1], old.dtype)
    new = [_rules.normalise(n, values[n], like, stored.owner) for n in names]
    index = np.array([stored.names.index(n) for n in names])
    packed = old.at[..., index].set(jnp.stack(new, axis=-1))
    if stored.owner in _rules.FACTORY_ORDER and not isinstance(packed, _Tracer):
        values = {n: packed[..., i] for i, n in enumerate(stored.names)}
        _rules.check_order(stored.owner, values, "set_hyperparams")
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
    found = hyperparam_states(state, "set_hyperparams")
    # A full name as hyperparams() reports it ("head/learning_rate") targets one optimizer.
    full = (
        {}
        if len(found) == 1
        else {(f"{p}/{n}" if p else n): (p, n) for p, s in found for n in s.hyperparams}
    )
    routed: dict[str, dict[str, Any]] = {}
    for key in [k for k in values if k in full and full[k][1] != k]:
        prefix, name = full[key]
        if group is not None and not (prefix == group or prefix.startswith(group + "/")):
            raise ValueError(
                f"set_hyperparams: {key!r} is not in group {group!r}; drop the prefix or "
                "the group argument."
            )
        routed.setdefault(prefix, {})[name] = values.pop(key)
    if group is not None:
        targets = [p for p, _ in found if p == group or p.startswith(group + "/")]
        if not targets:
            raise ValueError(
                f"set_hyperparams: unknown group {group!r}; the state has "
                f"{sorted(p for p, _ in found)}."
            )
    else:
        targets = [p for p, _ in found]
    if routed and not values:
        targets = []
    available = set().union(*(set(s.hyperparams) for p, s in found if p in targets))
    unknown = sorted(set(values) - available)
    if unknown:
        raise ValueError(
            f"set_hyperparams: unknown hyperparameter(s) {unknown}; this state has "
            f"{sorted(available)}."
        )

    paths = dict(found)
    new_nodes = {}
    for p in dict.fromkeys([*targets, *routed]):
        s = paths[p]
        hp = s.hyperparams
        if p in targets:
            hp = _with_values(hp, values)
        if p in routed:
            hp = _with_values(hp, routed[p])
        new_nodes[p] = s._replace(hyperparams=hp)

    leaves, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_hstate)
    out = []
    for path, leaf in leaves:
        if isinstance(leaf, HyperparamsState) and _path_name(path) in new_nodes:
            out.append(new_nodes[_path_name(path)])
        else:
            out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)
