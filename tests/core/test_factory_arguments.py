"""Every public factory refuses a bad numeric argument when it is built, naming it.

Generated from the public namespace: for every function of ``optimlab`` that returns
a ``GradientTransformation``, every argument with a numeric default (and the
required numeric ones, given a valid value) is set to each bad kind of value in
turn, and construction must raise ``TypeError`` or ``ValueError`` with a message
that names the argument and the function. Messages in torch's wording
(``Invalid learning rate: nan``) are kept as torch writes them: they name the
argument by torch's label, and no function. Construction only: no update runs.
"""

from __future__ import annotations

import inspect
import math
import pickle
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab
from optimlab._core._rules import RULES
from optimlab._core._validate import UNSET

_ol: Any = optimlab  # untyped: the bad values below break the signatures on purpose

# Valid values for required arguments, so that only the argument under test is bad.
_REQUIRED = {
    "learning_rate": 0.1,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "threshold": 1.0,
    "clipping": 0.1,
    "step_size": 0.1,
    "decay": 0.9,
    "every": 2,
    "sync_period": 2,
    "slow_step_size": 0.5,
}
_INNER = ("opt", "fast", "fast_optimizer", "inner", "base_optimizer", "optimizer", "adv_optimizer")

# Other names an argument goes by in messages worded as torch words them (torch
# names no function), or as the existing error tests pin them.
_LABELS = {
    "learning_rate": ("learning rate",),
    "b1": ("beta parameter at index 0",),
    "b2": ("beta parameter at index 1",),
    "b3": ("beta parameter at index 2",),
    "beta3": ("beta parameter at index 2",),  # prodigy's third beta
    "adam_b1": ("beta parameter at index 0",),
    "adam_b2": ("beta parameter at index 1",),
    "beta": ("beta parameter at index 0",),  # momo's beta is torch's first beta
    "eps": ("epsilon",),
    "eps1": ("epsilon1",),
    "eps2": ("epsilon2",),
    "d": ("Clipping threshold d",),
    "decay": ("alpha",),  # rmsprop's decay is torch's alpha
    "weight_decay": ("weight decay",),
    "adam_weight_decay": ("weight_decay",),
    "eta_minus": ("eta values",),  # rprop: torch checks the pair together
    "eta_plus": ("eta values",),
    "min_step_size": ("step_sizes values",),
    "max_step_size": ("step_sizes values",),
}

_BAD = {
    "str": "x",
    "complex": 1 + 1j,
    "list": [1.0],
    "nan": math.nan,
    "bool": True,
    "inf": math.inf,
}

# (factory, argument, kind) that is legitimately accepted, with the reason.
ACCEPTED: dict[tuple[str, str, str], str] = {}


def _factories():
    out = []
    for name in sorted(n for n in dir(optimlab) if not n.startswith("_")):
        f = getattr(optimlab, name)
        if not inspect.isfunction(f):
            continue
        sig = inspect.signature(f)
        if sig.return_annotation not in ("GradientTransformation", optimlab.GradientTransformation):
            continue
        out.append((name, f, sig))
    return out


def _required(p: inspect.Parameter) -> bool:
    # UNSET: required, with a default only so that a deprecated name can stand in.
    return p.default is inspect.Parameter.empty or p.default is UNSET


# Numeric arguments that default to None (optional, with a meaning of their own),
# besides those the rule table names (weight_decay, momentum, eps_root...).
_OPTIONAL = ("seed",)


def _numeric(p: inspect.Parameter) -> bool:
    if p.default is None and (p.name in _OPTIONAL or p.name in RULES):
        return True
    if _required(p) or p.default is None:
        return p.name in _REQUIRED  # None: optional, with a meaning of its own
    return isinstance(p.default, int | float) and not isinstance(p.default, bool)


def _base_kwargs(sig: inspect.Signature) -> dict | None:
    kw = {}
    for p in sig.parameters.values():
        if not _required(p) or p.kind is p.VAR_KEYWORD:
            continue
        if p.name in _REQUIRED:
            kw[p.name] = _REQUIRED[p.name]
        elif p.name in _INNER:
            kw[p.name] = optimlab.sgd(0.1)
        else:
            return None  # a structural argument (a mask, labels): no numeric one to probe
    return kw


def _probes():
    for name, f, sig in _factories():
        base = _base_kwargs(sig)
        if base is None:
            continue
        for p in sig.parameters.values():
            if not _numeric(p):
                continue
            rule = RULES.get(p.name)
            for kind, bad in _BAD.items():
                if kind == "inf" and (rule is None or rule.allow_inf):
                    continue
                yield name, f, base, p.name, kind, bad


_PROBES = list(_probes())


def _names(msg: str, function: str, arg: str) -> bool:
    """The message names ``function`` and ``arg`` (or torch's label for it, torch's wording)."""
    if not re.search(rf"\b{re.escape(function)}\b", msg):
        return False
    return any(
        re.search(rf"\b{re.escape(label)}\b", msg, re.IGNORECASE)
        for label in (arg, *_LABELS.get(arg, ()))
    )


def test_every_factory_is_probed():
    probed = {name for name, *_ in _PROBES}
    for expected in ("adam", "clip", "scale_by_adam", "accumulate", "lookahead", "ema_params"):
        assert expected in probed
    assert len(_PROBES) > 1500


def test_bad_arguments_are_refused_at_construction():
    failures = []
    for name, f, base, arg, kind, bad in _PROBES:
        if (name, arg, kind) in ACCEPTED:
            f(**{**base, arg: bad})  # documented as accepted: must build
            continue
        try:
            f(**{**base, arg: bad})
        except (TypeError, ValueError) as e:
            if not _names(str(e), name, arg):
                failures.append(f"{name}({arg}={kind}): message does not name it: {e}")
        except Exception as e:
            failures.append(f"{name}({arg}={kind}): {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}({arg}={kind}): accepted")
    assert not failures, f"{len(failures)} of {len(_PROBES)}:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: optimlab.clip(1 + 1j),
            r"^clip: hyperparameter 'max_delta' must be a real number or a schedule, got complex",
        ),
        (
            lambda: _ol.add_decayed_weights([1.0]),
            r"^add_decayed_weights: hyperparameter 'weight_decay' must",
        ),
        (
            lambda: _ol.scale_by_adam(b1="x"),
            r"^scale_by_adam: hyperparameter 'b1' must be a real number",
        ),
        (
            lambda: _ol.reduce_on_plateau(patience=2.0),
            r"^reduce_on_plateau: hyperparameter 'patience' must be an integer",
        ),
    ],
)
def test_type_errors_name_the_function(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_an_array_that_is_not_a_scalar_is_refused():
    with pytest.raises(ValueError, match=r"^ema_params: hyperparameter 'decay' must be a scalar"):
        optimlab.ema_params(jnp.full(2, 0.9))


class _Scalar:
    """A number exposed only through NumPy's ``__array__`` protocol (as a torch tensor is)."""

    def __init__(self, value, fail=False):
        self.value, self.fail = value, fail

    def __array__(self, dtype=None, copy=None):
        if self.fail:  # as a torch tensor that requires grad
            raise RuntimeError("cannot be read as an array")
        return np.asarray(self.value, dtype)


def test_a_number_behind_the_array_protocol_is_read_and_checked():
    tx = optimlab.adam(_Scalar(0.5))
    state = tx.init(jnp.zeros(2))
    assert float(optimlab.hyperparams(state)["learning_rate"]) == 0.5
    state = optimlab.set_hyperparams(state, learning_rate=_Scalar(0.25))
    assert float(optimlab.hyperparams(state)["learning_rate"]) == 0.25
    with pytest.raises(ValueError, match=r"^adam: Invalid beta parameter at index 0: 1.5"):
        optimlab.adam(0.1, b1=_Scalar(1.5))
    with pytest.raises(TypeError, match=r"^adam: hyperparameter 'learning_rate' must be a real"):
        optimlab.adam(_Scalar(0.5, fail=True))
    with pytest.raises(TypeError, match=r"^adam: hyperparameter 'learning_rate' must be a real"):
        optimlab.adam(_Scalar(1j))


# ------------------------------------------- construction and set_hyperparams agree

_FLOATS = (-1.0, -1e-3, 0.0, 0.5, 0.999, 1.0, 1.5, 100.0, math.inf, -math.inf)
_INTS = (-1, 0, 1, 2, 100)  # counts: construction takes ints, the state holds numbers


def _accepts(fn, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def test_construction_and_set_hyperparams_accept_the_same_values():
    """For every hyperparameter an alias keeps in its state, building the alias with a
    value and setting that value in its state give the same verdict (the alias's
    own ranges, such as sm3's ``momentum < 1``, apply to both)."""
    params = {"w": jnp.ones((3, 4))}
    checked, disagree = 0, []
    for name, f, sig in _factories():
        base = _base_kwargs(sig)
        if base is None:
            continue
        try:
            state = f(**base).init(params)
            names = optimlab.hyperparams(state)
        except (TypeError, ValueError):
            continue  # a wrapper without its inner optimizer, or no hyperparameters
        for hp in (n for n in names if n in sig.parameters):
            rule = RULES.get(hp)
            for v in _INTS if rule is not None and rule.integer else _FLOATS:
                built = _accepts(f, **{**base, hp: v})
                set_ = _accepts(optimlab.set_hyperparams, state, **{hp: v})
                checked += 1
                if built != set_:
                    disagree.append(f"{name}({hp}={v}): built {built}, set {set_}")
    assert checked > 1000
    assert not disagree, "\n".join(disagree)


@pytest.mark.parametrize(
    ("make", "name", "value", "message"),
    [
        (lambda: optimlab.sm3(1.0), "momentum", 1.0, r"Invalid momentum value: 1\.0"),
        (lambda: optimlab.signum(0.1), "beta", 1.5, r"Invalid beta value: 1\.5"),
        (lambda: optimlab.cocob(), "alpha", 0.0, r"Invalid alpha value: 0\.0"),
        (lambda: optimlab.sparse_adam(), "learning_rate", 0.0, r"Invalid learning rate: 0\.0"),
        (lambda: optimlab.torch_lbfgs(), "max_iter", 2.5, r"Invalid max_iter value: 2\.5"),
        (
            lambda: optimlab.rprop(0.1),
            "max_step_size",
            1e-9,
            r"min_step_size must be <= max_step_size",
        ),
    ],
)
def test_an_aliases_own_range_holds_in_its_state(make, name, value, message):
    state = make().init({"w": jnp.ones(3)})
    with pytest.raises(ValueError, match=message):
        optimlab.set_hyperparams(state, **{name: value})
    # The range travels with the state: out of a jitted function and through a pickle.
    state = pickle.loads(pickle.dumps(jax.jit(lambda s: s)(state)))
    with pytest.raises(ValueError, match=message):
        optimlab.set_hyperparams(state, **{name: value})


def _flag_probes():
    for namespace in (optimlab, optimlab.schedules):
        for name in sorted(n for n in dir(namespace) if not n.startswith("_")):
            f = getattr(namespace, name)
            if not inspect.isfunction(f):
                continue
            for p in inspect.signature(f).parameters.values():
                if p.annotation in ("bool", bool):
                    yield name, f, p.name


_FLAG_PROBES = list(_flag_probes())


def test_every_flag_is_probed():
    probed = {(name, arg) for name, _, arg in _FLAG_PROBES}
    expected = {("adam", "amsgrad"), ("trace", "nesterov"), ("exponential_decay", "staircase")}
    assert expected <= probed
    assert len(_FLAG_PROBES) > 80


@pytest.mark.parametrize("bad", ["False", 0, 1.0, None, jnp.array(True)], ids=type)
def test_a_flag_that_is_not_a_bool_is_refused(bad):
    """``if flag:`` would read ``"False"`` as on: a flag takes a bool, or NumPy's bool_."""
    for name, f, arg in _FLAG_PROBES:
        message = rf"^{re.escape(name)}: {arg} must be a bool \(True or False\), got "
        with pytest.raises(TypeError, match=message):
            f(**{arg: bad})


def test_a_flag_given_as_a_bool_is_accepted():
    import numpy as np

    for name, f, arg in _FLAG_PROBES:
        if f.__module__.startswith("optimlab.schedules"):
            continue
        base = _base_kwargs(inspect.signature(f))
        if base is None:
            continue
        for good in (False, np.bool_(False)):
            assert isinstance(f(**base, **{arg: good}), optimlab.GradientTransformation), name


# ------------------------------------------------------------------- storage dtypes


def _dtype_probes():
    from optimlab._core._validate import _DTYPES

    for name in sorted(n for n in dir(optimlab) if not n.startswith("_")):
        f = getattr(optimlab, name)
        if not inspect.isfunction(f):
            continue
        for p in inspect.signature(f).parameters.values():
            if p.annotation in _DTYPES:
                complex_ok, none_ok = _DTYPES[p.annotation]
                yield name, f, p.name, complex_ok, none_ok


_DTYPE_PROBES = list(_dtype_probes())


def test_every_dtype_argument_is_probed():
    """Every public argument named like a dtype is annotated as one, so it is checked."""
    probed = {(name, arg) for name, _, arg, *_ in _DTYPE_PROBES}
    expected = {
        ("accumulate", "accumulator_dtype"),
        ("sgd", "accumulator_dtype"),
        ("adam", "mu_dtype"),
        ("adam", "nu_dtype"),
        ("nadam", "product_dtype"),
        ("adafactor", "dtype_momentum"),
        ("newton_schulz", "ns_dtype"),
        ("torch_muon", "ns_dtype"),
        ("schedule_free", "state_dtype"),
    }
    assert expected <= probed
    unannotated = [
        f"{name}({p.name}: {p.annotation})"
        for name, f, sig in (
            (n, getattr(optimlab, n), inspect.signature(getattr(optimlab, n)))
            for n in dir(optimlab)
            if not n.startswith("_") and inspect.isfunction(getattr(optimlab, n))
        )
        for p in sig.parameters.values()
        if "dtype" in p.name and (name, p.name) not in probed
    ]
    assert not unannotated, unannotated
    assert len(_DTYPE_PROBES) > 55


@pytest.mark.parametrize(
    "bad",
    [jnp.int32, np.int8, jnp.uint8, jnp.bool_, "int32", "blah", 3, 1.5, True, [jnp.float32]],
    ids=repr,
)
def test_a_storage_dtype_that_is_not_floating_is_refused(bad):
    """An integer or bool accumulator rounds every update away; a bad name fails late."""
    for name, f, arg, _, _ in _DTYPE_PROBES:
        message = rf"^{re.escape(name)}: {arg} must be a floating dtype"
        with pytest.raises(TypeError, match=message):
            f(**{arg: bad})


def test_complex_and_none_storage_dtypes_follow_the_annotation():
    for name, f, arg, complex_ok, none_ok in _DTYPE_PROBES:
        for bad, ok in ((jnp.complex64, complex_ok), (None, none_ok)):
            if not ok:
                with pytest.raises(TypeError, match=rf"^{re.escape(name)}: {arg} must be"):
                    f(**{arg: bad})


def test_a_floating_storage_dtype_is_accepted():
    for name, f, arg, complex_ok, none_ok in _DTYPE_PROBES:
        base = _base_kwargs(inspect.signature(f))
        if base is None:
            continue
        good = [jnp.float32, jnp.bfloat16, np.float16, "float32", np.dtype("float32")]
        good += [jnp.complex64] * complex_ok + [None] * none_ok
        for dtype in good:
            assert isinstance(f(**base, **{arg: dtype}), optimlab.GradientTransformation), name


def test_newton_schulz_checks_its_arguments_as_muon_does():
    x = jnp.ones((3, 3))
    assert optimlab.newton_schulz(x, ns_dtype="float32").dtype == jnp.float32
    with pytest.raises(ValueError, match=r"^newton_schulz: Invalid ns_steps value: -1"):
        optimlab.newton_schulz(x, ns_steps=-1)
    with pytest.raises(ValueError, match=r"^torch_muon: Invalid ns_steps value: -1"):
        optimlab.torch_muon(ns_steps=-1)
    with pytest.raises(TypeError, match=r"ns_steps value: 2\.0"):
        optimlab.newton_schulz(x, ns_steps=2.0)
    with pytest.raises(ValueError, match=r"exactly 3 values"):
        optimlab.newton_schulz(x, ns_coeffs=(1.0, 2.0))
