"""One table of hyperparameter rules, by the name an optimizer's state gives it (private).

A hyperparameter enters an optimizer through construction, :func:`set_hyperparams`,
an ``optimlab.optim`` param-group edit or ``load_state_dict``, and a checkpoint
restore. The constructors keep their own (torch-worded, sometimes stricter) checks;
every other entry point checks the value against :data:`RULES` by name, and
:func:`~optimlab.with_hyperparams` checks the values it is built with against it
too, so a value a state can hold after any of them is one the API accepts.

Where one name means different ranges in different optimizers (``beta`` is a
momentum in ``signum`` but an extrapolation weight in ``optimistic_gradient_descent``),
its rule is the loosest common range, plus the checks every name gets: a real
number, not NaN, and finite unless the rule says ``inf`` is meaningful (no cap).
A name the table does not know (a user's own :func:`with_hyperparams` argument)
gets the NaN check only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _validate

__all__ = [
    "FACTORY_ORDER",
    "FACTORY_RULES",
    "RULES",
    "Rule",
    "check",
    "check_args",
    "check_number",
    "check_order",
    "check_step",
    "check_group",
    "normalise",
    "refuse_scheduled",
]


def _fmt(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(float(v))


@dataclasses.dataclass(frozen=True)
class Rule:
    """``lo <= value <= hi`` (open ends as flagged), finite unless ``allow_inf``."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    allow_inf: bool = False
    integer: bool = False
    # torch's wording for the common names, as the constructors use it.
    torch_message: Callable[[str], str] | None = None

    def accepts(self, v: float) -> bool:
        if math.isnan(v) or (math.isinf(v) and not self.allow_inf):
            return False
        if self.integer and math.isfinite(v) and v != int(v):
            return False
        above = self.lo < v if self.lo_open else self.lo <= v
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below

    def describe(self) -> str:
        parts = []
        lo, hi = self.lo != -math.inf, self.hi != math.inf
        if lo and hi:
            lb = "(" if self.lo_open else "["
            rb = ")" if self.hi_open else "]"
            parts.append(f"in {lb}{_fmt(self.lo)}, {_fmt(self.hi)}{rb}")
        elif lo:
            parts.append(f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}")
        elif hi:
            parts.append(f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}")
        if self.integer:
            parts.append("a whole number")
        if not self.allow_inf:
            parts.append("finite")
        return "must be " + " and ".join(parts)


_NON_NEG = Rule(lo=0.0)
_POSITIVE = Rule(lo=0.0, lo_open=True)
_REAL = Rule()
_BETA = Rule(lo=0.0, hi=1.0, hi_open=True)


def _torch(label: str) -> Callable[[str], str]:
    return lambda v: f"Invalid {label}: {v}"


#: The rule for every hyperparameter name the aliases keep in their state.
RULES: dict[str, Rule] = {
    # Rates, step sizes and scales: non-negative.
    "learning_rate": Rule(lo=0.0, torch_message=_torch("learning rate")),
    "max_learning_rate": Rule(lo=0.0, allow_inf=True),  # polyak: inf means no cap
    "scaling": _NON_NEG,
    "trust_coefficient": _POSITIVE,
    "init_step_value": _NON_NEG,
    "init_estim_sq_dist": _NON_NEG,
    "estim_lr0": _POSITIVE,
    "estim_lr_coef": _NON_NEG,
    "s_init": _POSITIVE,
    "min_step_size": _NON_NEG,
    "max_step_size": Rule(lo=0.0, allow_inf=True),
    "eta_minus": Rule(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
    "eta_plus": Rule(lo=1.0, lo_open=True),
    "min_norm": _NON_NEG,
    "lr_decay": _NON_NEG,
    "initial_accumulator_value": _NON_NEG,
    "scale": _REAL,  # galore: a multiplier of either sign
    # Small constants: non-negative.
    "eps": Rule(lo=0.0, torch_message=_torch("epsilon value")),
    "eps_root": _NON_NEG,
    "adam_eps_root": _NON_NEG,
    "initial_scale": _NON_NEG,  # rmsprop's starting second moment
    "eps1": _NON_NEG,
    "eps2": _NON_NEG,
    "adam_eps": _NON_NEG,
    # Decay terms: non-negative.
    "weight_decay": Rule(lo=0.0, torch_message=_torch("weight_decay value")),
    "adam_weight_decay": _NON_NEG,
    "weight_decay_rate": _NON_NEG,
    "decay_rate": _NON_NEG,
    # nadam: inf is the limit of the schedule (constant momentum b1); torch accepts it.
    "momentum_decay": Rule(lo=0.0, allow_inf=True),
    "weight_lr_power": _NON_NEG,
    "eta": _NON_NEG,
    "gamma": _NON_NEG,  # noisy_sgd >= 0, sophia > 0
    # Momenta and averaging coefficients. momentum is >= 0 in sgd/lars (torch) and in
    # [0, 1] or [0, 1) elsewhere: the loosest common range is >= 0.
    "momentum": Rule(lo=0.0, torch_message=_torch("momentum value")),
    "dampening": _REAL,  # torch does not bound it; finite only
    "decay": _NON_NEG,  # rmsprop's alpha
    "rho": Rule(lo=0.0, hi=1.0),
    "b1": Rule(lo=0.0, hi=1.0, hi_open=True, torch_message=_torch("beta parameter at index 0")),
    "b2": Rule(lo=0.0, hi=1.0, hi_open=True, torch_message=_torch("beta parameter at index 1")),
    "b3": _BETA,
    "beta1": _BETA,
    "beta2": _BETA,
    "beta3": _BETA,
    "adam_b1": _BETA,
    "adam_b2": _BETA,
    "beta": _NON_NEG,  # [0, 1) in signum and momo, >= 0 in optimistic_gradient_descent
    "optimism": _NON_NEG,  # optimistic_adam (optax's first interface)
    "alpha": _NON_NEG,  # ademamix, cocob (> 0), optimistic (>= 0); asgd's is finite only
    "beta2_decay": Rule(hi=0.0),
    # asgd: torch does not bound these; finite only.
    "lambd": _REAL,
    "t0": _REAL,
    # Thresholds.
    "clipping_threshold": Rule(lo=1.0, allow_inf=True),
    "clip_threshold": Rule(lo=0.0, lo_open=True, allow_inf=True),
    "d": Rule(lo=1.0, allow_inf=True),
    "decay_offset": _REAL,
    "lower_bound": _REAL,
    "f_min": _REAL,
    "ns_a": _REAL,
    "ns_b": _REAL,
    "ns_c": _REAL,
    # Counts stored as numbers.
    "update_interval": Rule(lo=1.0, integer=True),
    # torch_lbfgs: loop counts, whole numbers (its constructor takes ints only).
    "max_iter": Rule(lo=1.0, integer=True),
    "max_eval": Rule(lo=1.0, integer=True),
    "tolerance_grad": _NON_NEG,
    "tolerance_change": _NON_NEG,
    # Further names the public factories take (checked by check_args at construction).
    "max_delta": _NON_NEG,
    "max_norm": _POSITIVE,
    "threshold": _NON_NEG,  # clip_by_block_rms; reduce_on_plateau's relative threshold
    "clipping": _NON_NEG,
    "step_size": _REAL,  # scale: a multiplier of either sign
    "slow_step_size": Rule(lo=0.0, hi=1.0),
    "epsilon": _NON_NEG,
    "step_offset": _REAL,
    "factor": Rule(lo=0.0, hi=1.0, hi_open=True),
    "min_scale": _NON_NEG,
    "base_lr": _NON_NEG,
    "min_lr": _NON_NEG,
    "adam_learning_rate": _NON_NEG,
    "smooth_beta": _REAL,  # lion's tanh slope; its sign flips the smoothed sign
    "rtol": _NON_NEG,  # reduce_on_plateau (optax's rule)
    "atol": _NON_NEG,
    # Counts, fixed at construction: integers, never floats or bools (see _COUNTS).
    "every": Rule(lo=1.0, integer=True),
    "sync_period": Rule(lo=1.0, integer=True),
    "rank": Rule(lo=1.0, integer=True),
    "update_proj_gap": Rule(lo=1.0, integer=True),
    "history_size": Rule(lo=1.0, integer=True),
    "memory_size": Rule(lo=1.0, integer=True),
    "num_betas": Rule(lo=1.0, integer=True),
    "ns_steps": Rule(lo=0.0, integer=True),
    "min_dim_size_to_factor": Rule(lo=0.0, integer=True),
    "min_leaf_size": Rule(integer=True),  # bucketed checks >= 1 in its own words
    "patience": Rule(lo=0.0, integer=True),
    "cooldown": Rule(lo=0.0, integer=True),
    "max_consecutive": Rule(lo=0.0, integer=True),
    "warmup_steps": Rule(lo=0.0, integer=True),  # schedule-free checks >= 1 in its own words
    "accumulation_size": Rule(lo=1.0, integer=True),
    "seed": Rule(integer=True),  # add_noise's deprecated int key: any integer
    "print_win_rate_every_n_steps": Rule(lo=0.0, integer=True),  # sophia; 0 never prints
}

# The counts above, which check_args takes as integers only (update_interval, kept in
# a state as a number, takes any whole number).
_COUNTS = frozenset(
    {
        "every",
        "sync_period",
        "rank",
        "update_proj_gap",
        "history_size",
        "memory_size",
        "num_betas",
        "ns_steps",
        "min_dim_size_to_factor",
        "min_leaf_size",
        "patience",
        "cooldown",
        "max_consecutive",
        "warmup_steps",
        "accumulation_size",
        "seed",
        "print_win_rate_every_n_steps",
    }
)

#: Where one factory's range for a name differs from the name's rule in :data:`RULES`,
#: by ``(function, name)``. An alias's entry applies wherever its values enter:
#: construction, :func:`set_hyperparams` and checkpoint restore (its state's
#: :class:`Hyperparams` names the alias, as ``owner``), so none of them accepts a
#: value another refuses.
FACTORY_RULES: dict[tuple[str, str], Rule] = {
    ("scale_by_sm3", "b2"): Rule(lo=0.0, hi=1.0),  # b2 = 1 keeps the running maximum
    ("scale_by_asgd", "alpha"): _REAL,  # torch does not bound ASGD's alpha
    ("cocob", "alpha"): _POSITIVE,
    ("momo", "beta"): _BETA,
    ("signum", "beta"): _BETA,
    ("sm3", "momentum"): _BETA,
    ("schedule_free_sgd", "b1"): Rule(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
    ("schedule_free_adamw", "b1"): Rule(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
    ("sophia", "gamma"): _POSITIVE,
    # torch's SparseAdam: lr and eps strictly positive, in its words.
    ("sparse_adam", "learning_rate"): Rule(
        lo=0.0, lo_open=True, torch_message=_torch("learning rate")
    ),
    ("sparse_adam", "eps"): Rule(lo=0.0, lo_open=True, torch_message=_torch("epsilon value")),
}


#: Pairs of one alias's hyperparameters that must stay in order (``low <= high``),
#: by alias: its constructor refuses an inverted pair, and so do
#: :func:`set_hyperparams` and checkpoint restore.
FACTORY_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "rprop": (("min_step_size", "max_step_size"),),
}


def check_order(owner: str, values: Any, where: str) -> None:
    """Raises ``ValueError`` when ``values`` (name -> numbers) invert a pair of ``owner``'s.

    ``values`` maps names to arrays of one shape (a population holds several
    values each); names it lacks are not checked.
    """
    for low, high in FACTORY_ORDER.get(owner, ()):
        if low in values and high in values:
            lo, hi = np.asarray(values[low], np.float64), np.asarray(values[high], np.float64)
            if np.any(lo > hi):
                raise ValueError(
                    f"{where}: {low} must be <= {high}, got {_fmt(float(np.max(lo)))} > "
                    f"{_fmt(float(np.min(hi)))}."
                )


def check(name: str, value: float, where: str = "", owner: str = "") -> None:
    """Raises ``ValueError`` when the number ``value`` breaks the rule for ``name``.

    ``where`` prefixes the message (the function, key path or param-group entry).
    ``owner`` is the factory the value belongs to: its entry in
    :data:`FACTORY_RULES`, if any, replaces the name's rule.
    """
    v = float(value)
    prefix = f"{where}: " if where else ""
    if math.isnan(v):
        raise ValueError(f"{prefix}Invalid {name} value: nan (a hyperparameter cannot be NaN)")
    rule = FACTORY_RULES.get((owner, name)) or RULES.get(name)
    if rule is None or rule.accepts(v):
        return
    if rule.torch_message is not None and math.isfinite(v):
        raise ValueError(prefix + rule.torch_message(_fmt(v)))
    raise ValueError(f"{prefix}Invalid {name} value: {_fmt(v)} ({rule.describe()})")


def check_number(name: str, value: Any, where: str, owner: str = "") -> float:
    """``value`` as a float, after refusing what is not one real number (``TypeError``).

    ``owner``: the alias whose own entries in the rule table apply (see :func:`check`).
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"{where} must be a real number, got {type(value).__name__} {value!r}.")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" and str(arr.dtype) != "bfloat16":
        raise TypeError(
            f"{where} must be a real number, got {type(value).__name__} with dtype {arr.dtype}."
        )
    if arr.size != 1:
        raise ValueError(f"{where} must be a scalar, got shape {arr.shape}.")
    v = float(arr.reshape(()))
    check(name, v, where, owner)
    return v


def check_step(value: Any, where: str, *, maximum: int = 2**31 - 1) -> int:
    """A step count as an int: a real, whole, non-negative number no larger than ``maximum``."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{where} must be a step count, got {type(value).__name__} {value!r}.")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        raise TypeError(
            f"{where} must be a step count (one real number), got dtype {arr.dtype} "
            f"and shape {arr.shape}."
        )
    v = float(arr.reshape(()))
    if not (math.isfinite(v) and v == int(v) and 0 <= v <= maximum):
        raise ValueError(
            f"{where} must be a whole number in [0, {maximum}] (a step count), got {_fmt(v)}."
        )
    return int(v)


def check_args(function: str, **values: Any) -> None:
    """Checks a factory's numeric arguments against :data:`RULES`, naming each one.

    Schedules (callables), JAX tracers and ``None`` pass: a schedule's values are
    checked as it is evaluated, and a factory that takes ``None`` gives it a meaning.
    Every other value must be one real number (``TypeError`` for a bool, a string,
    a complex number or a list; ``ValueError`` for an array that is not a scalar),
    not NaN, finite unless its rule allows ``inf``, and inside its rule's range
    (``ValueError``). A count (``_COUNTS``) takes an integer only (``TypeError`` for
    a float). :data:`FACTORY_RULES` overrides a name's rule for one factory.
    Each message starts with ``function``; a name with torch's wording keeps it.
    """
    for name, value in values.items():
        if value is None or callable(value) or _validate.deferred(value):
            continue
        integer = name in _COUNTS
        where = f"{function}: hyperparameter {name!r}"
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} must be a number or a schedule, got a bool ({value!r}).")
        kind = "an integer" if integer else "a real number or a schedule"
        arr = _validate.host_array(value)
        if arr is None:
            raise TypeError(f"{where} must be {kind}, got {type(value).__name__} {value!r}.")
        kinds = "iu" if integer else "iuf"
        if arr.dtype.kind not in kinds and not (not integer and str(arr.dtype) == "bfloat16"):
            raise TypeError(
                f"{where} must be {kind}, got {type(value).__name__} {value!r} (dtype {arr.dtype})."
            )
        if arr.ndim != 0:
            raise ValueError(f"{where} must be a scalar, got an array of shape {arr.shape}.")
        check(name, float(arr), function, owner=function)


# --------------------------------------------------------------- set_hyperparams
# What set_hyperparams checks before it writes a value into the packed array.

_Tracer = jax.core.Tracer


def check_group(group: Any) -> None:
    """Raises ``TypeError`` unless ``group`` is ``None`` or a str (a prefix of the names)."""
    if group is not None and not isinstance(group, str):
        raise TypeError(
            "set_hyperparams: group must be a str (a prefix as hyperparams() shows it, "
            f"such as 'encoder') or None, got {type(group).__name__} {group!r}."
        )


def refuse_scheduled(names: Any, given: Iterable[str]) -> None:
    """Raises ``ValueError`` for a name in ``given`` that follows a schedule.

    ``names`` is the stored :class:`~optimlab.Hyperparams`' ``names``, tagged with
    the names whose values the optimizer computes from a schedule at every step: a
    value written there would be overwritten by the next step without a word.
    """
    scheduled = getattr(names, "scheduled", ())
    for name in given:
        if name in scheduled:
            raise ValueError(
                f"set_hyperparams: {name!r} follows a schedule given when the optimizer was "
                "built; its value is recomputed at every step. Build the optimizer with a "
                "number to set it."
            )


def check_specs(specs: Mapping[str, Any], owner: str, dtype: Any) -> dict[str, Any]:
    """A copy of ``specs``, each value checked; schedules are checked when they run."""
    specs = dict(specs)
    for name, value in specs.items():
        if not callable(value):
            _validate.scalar(name, value, dtype)
            v = _validate.concrete(value)
            if v is not None:
                check(name, v, owner=owner)
    return specs


def normalise(name: str, value: Any, old: jax.ShapeDtypeStruct, owner: str) -> jax.Array:
    """``value`` checked and cast to the stored dtype, for the packed array."""
    if callable(value):
        raise TypeError(
            f"set_hyperparams: {name!r} must be a value, not a schedule; schedules are "
            "given when the optimizer is built."
        )
    if isinstance(value, bool):
        raise TypeError(f"set_hyperparams: {name!r} must be a number, got a bool.")
    if (
        not isinstance(value, _Tracer)
        and np.asarray(value).dtype.kind not in "biuf"
        and np.asarray(value).dtype != jnp.bfloat16
    ):
        raise TypeError(
            f"set_hyperparams: {name!r} must be a real number, got "
            f"{type(value).__name__} with dtype {np.asarray(value).dtype}."
        )
    arr = jnp.asarray(value)
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"set_hyperparams: {name!r} must be a real number, got dtype {arr.dtype}.")
    if arr.shape != old.shape:
        raise ValueError(
            f"set_hyperparams: {name!r} must have shape {old.shape} (the shape stored in the "
            f"state), got {arr.shape}."
        )
    _check_value(name, value, owner)
    # Same dtype and never weak-typed, so a jitted step sees an identical signature.
    return jnp.asarray(arr, dtype=old.dtype)


def write(names: Any, owner: str, packed: jax.Array, values: Mapping[str, Any]) -> jax.Array:
    """``packed`` (one value of each of ``names`` along its last axis) with ``values`` written in.

    Each value is checked (:func:`normalise`, :func:`refuse_scheduled`) and, for an
    ``owner`` with ordered values (``lr_min <= lr``), the values together
    (:func:`check_order`). One scatter.
    """
    given = [n for n in values if n in names]
    refuse_scheduled(names, given)
    like = jax.ShapeDtypeStruct(packed.shape[:-1], packed.dtype)
    new = [normalise(n, values[n], like, owner) for n in given]
    index = np.array([names.index(n) for n in given])
    packed = packed.at[..., index].set(jnp.stack(new, axis=-1))
    if owner in FACTORY_ORDER and not isinstance(packed, _Tracer):
        check_order(owner, {n: packed[..., i] for i, n in enumerate(names)}, "set_hyperparams")
    return packed


def _check_value(name: str, value: Any, owner: str) -> None:
    """Refuses NaN for any hyperparameter, and what the shared rule table refuses."""
    if isinstance(value, _Tracer):
        return  # traced values (vmap sweeps, jit) cannot be checked eagerly
    arr = np.asarray(value, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"set_hyperparams: {name!r} {'contains' if arr.ndim else 'is'} NaN.")
    for v in arr.ravel():
        check(name, float(v), owner=owner)
