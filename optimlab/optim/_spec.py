"""The declarative table behind each torch-compatible class (private).

A :class:`Spec` says how a torch parameter group maps onto an optimlab alias
(which group options are hyperparameters held in the state, which are flags that
shape the compiled step) and how torch's per-parameter state keys map onto leaves
of the alias's state. Adding an optimizer class is one ``Spec`` and a signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._core import _validate
from .._core._base import GradientTransformation, never_negative_fields
from .._core._hyperparams import HyperparamsState, initial_hyperparams

__all__ = [
    "ADAM_HYPERPARAMS",
    "LR",
    "STEP",
    "Spec",
    "StateKey",
    "is_array",
    "moments",
    "required",
    "same_names",
    "with_torch_values",
]


class _Required:
    """Sentinel for a default every parameter group must set (torch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


#: Marks an option with no default: each parameter group must give it.
required = _Required()


def with_torch_values(
    alias: Callable[..., GradientTransformation], **torch_values: Any
) -> Callable[..., GradientTransformation]:
    """``alias`` with the arguments that select torch's variant fixed.

    The core aliases follow optax's defaults and numerics; a class passes torch's
    (``eps_in_sqrt=False``, an initial accumulator of zero...) through this, so the
    class stays torch's whatever the core's defaults. Keeps ``alias``'s name for
    error messages.
    """

    def build(**kwargs: Any) -> GradientTransformation:
        return alias(**{**torch_values, **kwargs})

    build.__name__ = getattr(alias, "__name__", "alias")
    build.__qualname__ = build.__name__
    return build


@dataclass(frozen=True)
class StateKey:
    """Where a torch per-parameter state entry lives in the alias's state.

    Attributes:
        cls: the state class holding it (the first node of that class is used).
        field: the attribute of that node.
        optional: torch treats the entry as "not created yet" when it is absent
            (SGD's ``momentum_buffer``), rather than as a broken checkpoint.
        dtype: a fixed dtype for the exported value (torch's ``step`` is float32);
            ``None`` exports the leaf as stored.
    """

    cls: type
    field: str
    optional: bool = False
    dtype: Any = None

    @property
    def non_negative(self) -> bool:
        """Whether the state class declares the field never negative.

        A sum or average of squares, a step size: a loaded entry with a negative
        value is refused as damaged, where it would make the step's square root NaN.
        """
        return self.field in never_negative_fields(self.cls)


#: torch's ``step``: the alias's single step counter, exported as a float32 scalar.
STEP = StateKey(HyperparamsState, "count", dtype=np.float32)


def moments(cls: type) -> dict[str, StateKey]:
    """torch's ``exp_avg`` and ``exp_avg_sq``: the ``mu`` and ``nu`` of the state class ``cls``."""
    return {"exp_avg": StateKey(cls, "mu"), "exp_avg_sq": StateKey(cls, "nu")}


def same_names(*names: str) -> dict[str, str]:
    """``{name: name}``, for the torch options an alias names alike (``eps``...)."""
    return {name: name for name in names}


#: torch's ``lr``, the aliases' ``learning_rate``.
LR: Mapping[str, str] = {"lr": "learning_rate"}
#: The hyperparameters of Adam, AdamW, Adamax and RAdam (and NAdam's first four).
ADAM_HYPERPARAMS: Mapping[str, str | tuple[str, ...]] = {
    **LR,
    "betas": ("b1", "b2"),
    **same_names("eps", "weight_decay"),
}


def is_array(value: Any) -> bool:
    """Whether an option is an array (torch's tensor-valued options), not a number."""
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _one_element(key: str, value: Any) -> Any:
    """A one-element array option as a scalar array (torch takes ``tensor([[0.9]])``)."""
    if not is_array(value) or np.ndim(value) == 0:
        return value
    if np.asarray(value).size != 1:  # not np.size: a torch tensor's size is a method
        raise ValueError(f"Tensor {key} must be 1-element")
    return jnp.reshape(jnp.asarray(value), ())


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Spec:
    """How a torch optimizer class maps onto an optimlab alias.

    Attributes:
        alias: the optimlab alias; called with keyword arguments only.
        hyperparams: torch group option -> alias hyperparameter name (a tuple of
            names for a tuple option such as ``betas``). Their values are fed as
            arrays at every step, so changing them never recompiles.
        flags: torch group option -> alias keyword for options that shape the
            compiled step (``nesterov``, ``amsgrad``, ``maximize``...).
        zero_terms: options torch skips when exactly zero (``momentum``,
            ``weight_decay``), passed to the alias as ``None`` so they stay out of
            the state, each with the options left out along with it (``dampening``
            goes with ``momentum``): crossing zero rebuilds.
        static: numeric options the alias does not keep in its state; they are
            part of the compiled step (changing one rebuilds).
        state: torch per-parameter state key -> :class:`StateKey`, in torch's order.
        fixed: group options forced to a value (``AdamW``'s ``decoupled_weight_decay``).
        single_group: the optimizer accepts one parameter group only (``LBFGS``).
        real_only: the optimizer refuses complex parameters (``Adafactor``, ``Muon``).
        order: every group option, separated by spaces, in the order of torch's
            ``defaults`` (that of the groups and the state dict) where it is not the
            signature's.
    """

    alias: Callable[..., GradientTransformation]
    hyperparams: Mapping[str, str | tuple[str, ...]]
    state: Mapping[str, StateKey]
    flags: Mapping[str, str] = field(default_factory=dict)
    zero_terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    static: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    single_group: bool = False
    real_only: bool = False
    order: str = ""
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: The name of the optimizer class that holds this spec (set by the class statement).
    owner: str = field(default="", init=False, compare=False)

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.owner:  # the first class that holds it (a subclass may reuse it)
            object.__setattr__(self, "owner", owner.__name__)

    def defaults(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A class's ``defaults`` from the ``locals()`` of its ``__init__``.

        Every argument but ``params`` (and ``self``), in :attr:`order` or else the
        signature's, with the :attr:`fixed` options forced and the tuple options
        (``betas``) made tuples. Any other local of ``__init__`` would be taken for an
        option: call it before assigning one.
        """
        given = {k: v for k, v in args.items() if k not in ("self", "params", "__class__")}
        given.update(self.fixed)
        names = tuple(self.order.split()) or tuple(given)
        if sorted(names) != sorted(given):
            raise TypeError(f"the spec's order {names} does not name the options {tuple(given)}")
        return {
            k: tuple(given[k]) if isinstance(self.hyperparams.get(k), tuple) else given[k]
            for k in names
        }

    def kwargs(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """The alias's keyword arguments for a group's current options."""
        out: dict[str, Any] = {}
        for key, names in self.hyperparams.items():
            value = group[key]
            if isinstance(names, tuple):
                values = tuple(value)
                if len(values) != len(names):
                    raise ValueError(f"{key} must have {len(names)} values, got {value!r}")
                arrays = [is_array(v) for v in values]
                if any(arrays) and not all(arrays):
                    raise ValueError(f"{key} must be either both floats or both Tensors")
                out.update(zip(names, (_one_element(key, v) for v in values), strict=True))
            else:
                out[names] = _one_element(key, value)
        for key, name in self.flags.items():
            out[name] = group[key]
        for key in self.zero_terms:  # torch skips a zero term: leave it out of the state
            if _is_zero(group[key]):
                names = self.hyperparams[key]
                out.update(dict.fromkeys(names if isinstance(names, tuple) else (names,)))
        return out

    def key(self, group: Mapping[str, Any]) -> tuple[Any, ...]:
        """What the compiled step depends on.

        That is: flags, zero terms, static options and the hyperparameters set to
        ``None`` (left out of the alias's state, as Adafactor's ``eps1``).
        """
        return (
            tuple(group[k] for k in self.flags),
            tuple(_is_zero(group[k]) for k in self.zero_terms),
            tuple(_hashable(group[k]) for k in self.static),
            tuple(n for n, v in self.kwargs(group).items() if v is None),
        )

    def build(
        self, group: Mapping[str, Any]
    ) -> tuple[Any, tuple[GradientTransformation, dict[str, Any]]]:
        """Validates a group's options (by building the alias) and returns the compiled form.

        Returns ``(key, (tx, names))``: :meth:`key`, the transformation shared by every
        group with that key (so optimizers alike share their compiled step), and
        ``{name: value}`` for each hyperparameter its state holds: ``None`` for those
        fed from the group at every step, the construction value for the others.
        """
        with _validate.caller_names():  # torch's messages, as torch words them
            tx = self.alias(**self.kwargs(group))
        key = self.key(group)
        hit = self._cache.get(key)
        if hit is not None:
            return key, hit
        declared = initial_hyperparams(tx)  # what the alias declared: nothing is initialised
        if declared is None:
            raise TypeError(
                f"{getattr(self.alias, '__name__', self.alias)} does not keep its "
                "hyperparameters in a HyperparamsState; it cannot back a class."
            )
        mapped_values = self.kwargs(group)
        mapped = set(mapped_values)
        names = {n: (None if n in mapped else np.asarray(v)) for n, v in declared.items()}
        absent = {
            k for z, deps in self.zero_terms.items() if _is_zero(group[z]) for k in (z, *deps)
        }
        for key_, ol in self.hyperparams.items():
            if key_ in self.static or key_ in absent:
                continue
            for name in ol if isinstance(ol, tuple) else (ol,):
                if name not in names and mapped_values[name] is not None:
                    raise TypeError(
                        f"the state of {getattr(self.alias, '__name__', '')} holds no "
                        f"{name!r}: list {key_!r} in the spec's static options."
                    )
        self._cache[key] = (tx, names)
        return key, (tx, names)

    def rules_of(self, tx: GradientTransformation) -> str:
        """The alias whose own entries in the rule table validate ``tx``'s values ("": none).

        Read once per transformation (a scheduler may change a value every step).
        """
        key = ("rules", tx.update)
        if key not in self._cache:
            declared = initial_hyperparams(tx)
            self._cache[key] = "" if declared is None else declared.owner
        return self._cache[key]

    def feed(
        self, group: Mapping[str, Any], names: Mapping[str, Any], dtype: Any
    ) -> dict[str, Any]:
        """The values of the hyperparameters a state holds, as arrays of ``dtype``."""
        kw = self.kwargs(group)
        return {
            n: np.asarray(float(kw[n]) if const is None else const, dtype)
            for n, const in names.items()
        }


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)
