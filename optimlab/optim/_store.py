"""What a torch-style optimizer holds: one record per parameter and per group (private).

:class:`Store` keeps, for each parameter, a :class:`Param` (its array, name,
group, gradient and functional state) and, for each group, a :class:`Group`
(its compiled form's key, its layout, its bucketed state and fed options),
with the compiled transformations they share. ``_apply`` steps a store,
``_state_dict`` reads and loads one; the optimizer classes own one each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from .._core._hyperparams import hyperparam_dtype
from . import _checks, _step
from ._params import GroupLayout
from ._spec import Spec

__all__ = ["Group", "Param", "Store"]


@dataclass(eq=False, slots=True)
class Param:
    """One parameter: its array, name, group index, gradient and state.

    The state is kept flat (its arrays in ``flat``, its tree structure in
    ``treedef``) and without its step count (``count``), which states with equal
    counts share. ``dormant`` holds torch state entries the current options do
    not use (a ``momentum_buffer`` while ``momentum`` is zero), kept as torch
    keeps them. All of it is ``None`` while the parameter has no state, or while
    its group holds one bucketed state (:attr:`Group.bucket`).
    """

    leaf: jax.Array
    name: str
    group: int
    grad: Any = None
    flat: list[Any] | None = None
    treedef: Any = None
    count: Any = None
    dormant: dict[str, Any] = field(default_factory=dict)

    def full_state(self) -> Any:
        """The full functional state (count included), or ``None``."""
        if self.flat is None:
            return None
        return jax.tree.unflatten(self.treedef, self.flat)._replace(count=self.count)

    def set_state(self, state: Any) -> None:
        """Stores a full state (or ``None``): flat, its count apart."""
        if state is None:
            self.flat = self.treedef = self.count = None
            return
        self.flat, self.treedef = jax.tree.flatten(state._replace(count=None))
        self.count = state.count

    def clear_state(self) -> None:
        """Drops the state and the dormant entries."""
        self.set_state(None)
        self.dormant = {}


@dataclass(eq=False, slots=True)
class Group:
    """One parameter group: its compiled form's key, layout, bucketed state, fed options.

    ``bucket`` is ``(state, count)`` while the group steps as one bucketed state;
    ``fed`` caches the group's option values and their device arrays.
    """

    key: Any
    layout: GroupLayout
    bucket: tuple[Any, Any] | None = None
    fed: tuple[Any, Any] | None = None


class Store:
    """The records of an optimizer's parameters and groups, and their compiled forms.

    Args:
        spec: the optimizer's table.
    """

    def __init__(self, spec: Spec):
        self.spec = spec
        self.params: list[Param] = []
        self.groups: list[Group] = []
        #: compiled form by key: ``(transformation, feed layout)`` (see ``Spec.build``).
        self.txs: dict[Any, Any] = {}
        #: whether a compiled form may step bucketed, by key.
        self.bucketable: dict[Any, bool] = {}
        #: whether states with equal step counts share one count array.
        self.counts_shared = True
        self.hdtype = hyperparam_dtype()

    # ------------------------------------------------------------- groups
    def compile(self, options: Mapping[str, Any], where: str = "") -> Any:
        """Validates ``options`` (by building the alias), keeps the compiled form; its key.

        The torch flags' types and the zero terms are checked first, the numeric
        options against the rule table after the alias's own checks (torch's
        messages). ``where`` names the group in messages (``""``: the defaults).
        """
        _checks.check_options(self.spec, options, where)
        key, compiled = self.spec.build(options)
        _checks.check_group(self.spec, options, where, self.spec.rules_of(compiled[0]))
        self.txs[key] = compiled
        return key

    def rekey(self, options: Sequence[Mapping[str, Any]]) -> None:
        """Sets each group's key from its (loaded) options; compiled on its next step."""
        for group, opts in zip(self.groups, options, strict=True):
            group.key = self.spec.key(opts)

    def tx(self, key: Any) -> Any:
        """The compiled transformation of key ``key``."""
        return self.txs[key][0]

    def add(self, key: Any, layout: GroupLayout, leaves: Sequence[Any]) -> None:
        """Adds a group of parameters, compiled as ``key``: their arrays are copied."""
        gi = len(self.groups)
        self.groups.append(Group(key, layout))
        self.params.extend(
            Param(jnp.array(x, copy=True), name, gi)
            for x, name in zip(leaves, layout.names, strict=True)
        )

    def init_state(self, i: int, options: Mapping[str, Any]) -> Any:
        """A fresh full state of parameter ``i`` under ``options``.

        Built from the group's current values: some states start from an option
        (Adagrad's initial_accumulator_value, Rprop's step size = lr).
        """
        return self.init_states([i], options)[0]

    def init_states(self, indices: list[int], options: Mapping[str, Any]) -> list[Any]:
        """Fresh full states of parameters ``indices`` under ``options``, by one ``init``."""
        tx = self.spec.alias(**self.spec.kwargs(options))
        return _step.init_states(tx, [self.params[i].leaf for i in indices])

    def feed(self, gi: int, options: Mapping[str, Any]) -> dict[str, jax.Array]:
        """A group's option values as device arrays, transferred when they change."""
        group = self.groups[gi]
        tx, names = self.txs[group.key]
        try:
            values = self.spec.feed(options, names, self.hdtype)
        except (TypeError, ValueError):
            _checks.check_group(self.spec, options, f"param_groups[{gi}]", self.spec.rules_of(tx))
            raise
        sig = tuple((n, float(v)) for n, v in values.items())
        hit = group.fed
        if hit is None or hit[0] != sig:
            # A changed value is checked once (NaN never equals itself: always checked).
            _checks.check_group(self.spec, options, f"param_groups[{gi}]", self.spec.rules_of(tx))
            hit = group.fed = (sig, jax.device_put(values))
        return hit[1]

    # ------------------------------------------------------------- params
    def leaves(self) -> list[jax.Array]:
        """The parameters' arrays, in index order."""
        return [p.leaf for p in self.params]

    def set_leaves(self, leaves: Sequence[jax.Array]) -> None:
        """Replaces every parameter's array."""
        for p, leaf in zip(self.params, leaves, strict=True):
            p.leaf = leaf

    def grads(self) -> list[Any]:
        """The held gradients, in index order (``None`` where none)."""
        return [p.grad for p in self.params]

    def set_grads(self, grads: Sequence[Any]) -> None:
        """Replaces every held gradient (``None`` drops one)."""
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g

    def names(self) -> list[str]:
        """The parameters' names, in index order."""
        return [p.name for p in self.params]

    def clear_states(self) -> None:
        """Drops every per-parameter state (bucketed ones must be unbucketed first)."""
        for p in self.params:
            p.clear_state()

    def load(self, options: Sequence[Mapping[str, Any]] | None, states: Mapping[int, Any]) -> None:
        """Commits a planned load (``_state_dict.plan_load``; unbucketed first).

        Args:
            options: the loaded groups' options, whose keys the groups take and
                whose loading drops every state first; ``None`` keeps both.
            states: ``{index: (full state or None, dormant entries)}``.
        """
        if options is not None:
            self.clear_states()
            self.rekey(options)
        for i, (state, dormant) in states.items():
            self.params[i].set_state(state)
            self.params[i].dormant = dormant
        self.counts_shared = False

    def share_counts(self) -> None:
        """Makes states with equal step counts share one count array (after a load)."""
        shared: dict[int, jax.Array] = {}
        for p in self.params:
            if p.count is not None:
                p.count = shared.setdefault(int(p.count), p.count)
        self.counts_shared = True
