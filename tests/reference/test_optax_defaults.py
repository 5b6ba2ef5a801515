"""Every name optimlab shares with optax, with default arguments, against optax.

The shared names are computed from both libraries (optax's top level and
``optax.contrib`` against optimlab's exports), so a new export is covered without
editing this file. Each is built with default arguments (plus what optax requires,
from ``REQUIRED``, the same value on both sides) and run side by side with optax
for ``STEPS`` steps; every step's updates and parameters must agree.

Tolerance: float64 (x64 on), 1e-10 relative with a 1e-12 absolute floor. Both sides
run the same algorithm in double precision; they may associate it differently (for
example ``m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` against
``m_hat / (sqrt(v_hat) + eps)``), which moves the last few bits only.

A second test inspects optax's signatures (here, in the test; the library never
inspects signatures): every argument name optax accepts, optimlab accepts; optax's
positional arguments come in the same order; optax's defaults are optimlab's.

Names that cannot match are listed in ``NOT_COMPARED`` / ``SIGNATURE_DIFFERS`` with
the reason; each entry is checked to still be a shared name.
"""

from __future__ import annotations

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import optimlab as ol

STEPS = 8
TOL = dict(rtol=1e-10, atol=1e-12)
SHAPES = {"w": (3, 4), "b": (4,), "s": (), "v": (5,)}


def _optax_public(module):
    return {
        n: getattr(module, n)
        for n in dir(module)
        if not n.startswith("_")
        and callable(getattr(module, n))
        and not inspect.isclass(getattr(module, n))
    }


def _optax_names():
    out = _optax_public(optax.contrib)
    out.update(_optax_public(optax))  # the top level wins over contrib
    return out


OPTAX = _optax_names()
SHARED = sorted(
    n
    for n in OPTAX
    if n in getattr(ol, "__all__", dir(ol)) or (hasattr(ol, n) and not n.startswith("_"))
)

# Shared names that are not optimizer factories; each is compared elsewhere.
NOT_FACTORIES = {
    "apply_updates": "a function of params and updates (tests/test_interop_optax.py)",
    "safe_increment": "a counter function (tests/test_api.py)",
    "schedule_free_eval_params": "a function of a state (tests/reference/test_optax_recent.py)",
    "per_example_global_norm_clip": "a function of per-example gradients",
    "value_and_grad_from_state": "wraps an objective (tests/reference/test_optax_lbfgs.py)",
}

# Values for the arguments optax requires, the same on both sides.
REQUIRED = {
    "learning_rate": 0.05,
    "clipping": 0.5,
    "eta": 0.01,
    "gamma": 0.55,
    "max_delta": 0.1,
    "threshold": 1.0,
    "max_norm": 1.0,
    "step_size": 0.5,
    "decay": 0.9,
    "max_linesearch_steps": 10,
    "max_backtracking_steps": 10,
}


def _inner(lib):
    return lib.sgd(0.1)


def _abs_grad_hessian():
    """A deterministic Hessian-diagonal 'estimate' (|g|), so that sophia runs without obj_fn."""
    return optax.stateless(lambda updates, params: jax.tree.map(jnp.abs, updates))


# Factories whose required arguments are transformations or functions: (lib -> tx).
BUILD = {
    "chain": lambda lib: lib.chain(lib.scale(0.5), lib.scale(-0.1)),
    "named_chain": lambda lib: lib.named_chain(("a", lib.scale(0.5)), ("b", lib.scale(-0.1))),
    "lookahead": lambda lib: lib.lookahead(_inner(lib), sync_period=2, slow_step_size=0.5),
    "masked": lambda lib: lib.masked(_inner(lib), {n: n != "b" for n in SHAPES}),
    "freeze": lambda lib: lib.freeze({n: n == "b" for n in SHAPES}),
    "partition": lambda lib: lib.partition(
        {"x": _inner(lib), "y": lib.sgd(0.3)}, {n: "x" if n != "b" else "y" for n in SHAPES}
    ),
    "conditionally_transform": lambda lib: lib.conditionally_transform(
        _inner(lib), lambda step: step % 2 == 0
    ),
    "mechanize": lambda lib: (lib.contrib if lib is optax else lib).mechanize(lib.sgd(0.1)),
    "scale_by_schedule": lambda lib: lib.scale_by_schedule(
        lambda c: 0.5 / (1.0 + jnp.asarray(c, jnp.float64))
    ),
    "monitor": lambda lib: lib.monitor({"norm": optax.tree.norm}),
    "sophia": lambda lib: (lib.contrib if lib is optax else lib).sophia(
        0.05, hessian_diagonal_fn=_abs_grad_hessian()
    ),
    "schedule_free": lambda lib: (lib.contrib if lib is optax else lib).schedule_free(
        lib.sgd(0.1), 0.1
    ),
}

# Shared names whose default numerics cannot match optax's, with the reason.
NOT_COMPARED: dict[str, str] = {
    "sam": "needs an adversarial optimizer and a gradient function; compared in "
    "tests/reference/test_optax_recent.py",
    "scale_by_muon": "optax's orthogonalises every leaf and fails on this problem's vector "
    "and scalar leaves; its 2-D rule is compared through muon",
    "sm3": "optax's fails on scalar leaves (tests/reference/test_optax_core.py compares "
    "it without them)",
    "scale_by_sm3": "optax's fails on scalar leaves (see sm3)",
    "lookahead": "optax's works on LookaheadParams (fast and slow copies); optimlab keeps "
    "the slow copy in its state. Compared in tests/reference/test_optax_arguments.py",
}

# Where optax itself rounds more than float64, with the reason.
LOOSER = {
    # optax forms the decay rate 1 - t^-0.8 from a float32 step count even under x64:
    # updates of size ~0.5 differ by ~1.5e-8 relative, so params near zero by ~1e-8.
    "adafactor": dict(rtol=1e-7, atol=1e-8),
    "scale_by_factored_rms": dict(rtol=1e-7, atol=1e-12),
}

# Steps that need the loss value.
WITH_VALUE = {"polyak_sgd", "scale_by_polyak", "reduce_on_plateau", "momo", "momo_adam"}
# Steps that need the loss value, its gradient and the loss function (line searches).
WITH_VALUE_FN = {"lbfgs", "scale_by_zoom_linesearch", "scale_by_backtracking_linesearch"}


def _optax_factory(name):
    return OPTAX[name]


def _build(lib, name):
    if name in BUILD:
        return BUILD[name](lib)
    fn = _optax_factory(name) if lib is optax else getattr(ol, name)
    sig = inspect.signature(_optax_factory(name))
    kwargs = {
        p.name: REQUIRED[p.name]
        for p in sig.parameters.values()
        if p.default is p.empty and p.kind is not p.VAR_POSITIONAL
    }
    return fn(**kwargs)


def _problem():
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(rng.normal(size=s)) for k, s in SHAPES.items()}
    curv = {k: jnp.asarray(rng.uniform(0.5, 2.0, size=s)) for k, s in SHAPES.items()}
    noise = [
        {k: jnp.asarray(rng.normal(scale=0.3, size=s)) for k, s in SHAPES.items()}
        for _ in range(STEPS)
    ]
    return params, curv, noise


def _run(tx, apply, name):
    params, curv, noise = _problem()
    p, s = params, tx.init(params)
    out = []
    for k in range(STEPS):
        g = {n: curv[n] * p[n] + noise[k][n] for n in p}
        extra = {}
        if name in WITH_VALUE:
            extra["value"] = sum(
                jnp.sum(0.5 * curv[n] * p[n] * p[n] + noise[k][n] * p[n]) for n in p
            )
        if name in WITH_VALUE_FN:
            noise_k = noise[k]

            def value_fn(q, noise_k=noise_k):
                return sum(jnp.sum(0.5 * curv[n] * q[n] * q[n] + noise_k[n] * q[n]) for n in q)

            extra.update(value=value_fn(p), grad=g, value_fn=value_fn)
        u, s = tx.update(g, s, p, **extra)
        p = apply(p, u)
        out.append((u, p))
    return out


FACTORIES = [n for n in SHARED if n not in NOT_FACTORIES]


def test_tables_name_shared_names():
    for table in (NOT_FACTORIES, NOT_COMPARED, BUILD, SIGNATURE_DIFFERS):
        stale = sorted(set(table) - set(SHARED))
        assert not stale, f"no longer shared with optax: {stale}"


@pytest.mark.parametrize("name", [n for n in FACTORIES if n not in NOT_COMPARED])
def test_defaults_match_optax(name):
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # optax's add_noise and noisy_sgd warn that key=None (seed 0) will be refused.
        warnings.filterwarnings("ignore", "Specifying a key will be required", UserWarning)
        ours = _run(_build(ol, name), ol.apply_updates, name)
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            theirs = _run(_build(optax, name), optax.apply_updates, name)
    tol = LOOSER.get(name, TOL)
    for k, ((u, p), (ru, rp)) in enumerate(zip(ours, theirs, strict=True)):
        for n in SHAPES:
            np.testing.assert_allclose(
                np.asarray(u[n]),
                np.asarray(ru[n]),
                err_msg=f"{name}: updates[{n}] at step {k}",
                rtol=tol["rtol"],
                atol=tol["atol"],
            )
            np.testing.assert_allclose(
                np.asarray(p[n]),
                np.asarray(rp[n]),
                err_msg=f"{name}: params[{n}] at step {k}",
                rtol=tol["rtol"],
                atol=tol["atol"],
            )


# Shared names whose signature cannot be optax's, with the reason.
SIGNATURE_DIFFERS: dict[str, str] = {
    "chain": "variadic transformations; no named arguments to compare",
    "named_chain": "variadic (name, transformation) pairs",
}


def _params(fn):
    return [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


@pytest.mark.parametrize("name", [n for n in SHARED if n not in SIGNATURE_DIFFERS])
def test_signature_accepts_optax_arguments(name):
    theirs = _params(_optax_factory(name))
    ours_all = inspect.signature(getattr(ol, name)).parameters
    ours = _params(getattr(ol, name))
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in ours_all.values())
    problems = []
    by_name = {p.name: p for p in ours}
    for i, p in enumerate(theirs):
        mine = by_name.get(p.name)
        if mine is None:
            if not takes_kwargs:
                problems.append(f"does not accept {p.name!r}")
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if i >= len(ours) or ours[i].name != p.name:
                problems.append(f"{p.name!r} is not positional argument {i}")
        if p.default is not p.empty and not _same_default(p.default, mine.default):
            problems.append(f"{p.name!r} defaults to {mine.default!r}, optax's to {p.default!r}")
    assert not problems, f"{name}: " + "; ".join(problems)


def _same_default(a, b):
    if callable(a) or callable(b):
        return callable(a) and callable(b)  # compared by value in the numeric test
    if isinstance(a, optax.GradientTransformation) or isinstance(b, tuple):
        return True
    try:
        return bool(a == b) and type(a) is type(b) or (a == b and a is not None and b is not None)
    except Exception:
        return a is b


PLATEAU_METRICS = [1.0, 0.99, 0.98, 0.98, 0.97, 0.97, 0.97, 0.97, 0.5] + [0.5] * 20 + [0.49] * 10


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patience=2, factor=0.5),
        dict(patience=1, rtol=0.0, atol=0.005, cooldown=2, factor=0.5, min_scale=0.2),
        dict(patience=2, rtol=0.02, accumulation_size=3, factor=0.3, cooldown=1),
    ],
    ids=["patience", "atol-cooldown-min_scale", "rtol-accumulation"],
)
def test_reduce_on_plateau_arguments_match_optax(kwargs):
    ours, theirs = ol.reduce_on_plateau(**kwargs), optax.contrib.reduce_on_plateau(**kwargs)
    params = {"w": jnp.ones(2)}
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    scales = []
    step_ours = jax.jit(lambda s, m: ours.update(params, s, value=m))
    with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
        step_theirs = jax.jit(lambda s, m: theirs.update(params, s, value=m))
    for m in PLATEAU_METRICS:
        m = jnp.float32(m)
        u, s_ours = step_ours(s_ours, m)
        with jax.numpy_dtype_promotion("standard"):
            ru, s_theirs = step_theirs(s_theirs, m)
        np.testing.assert_allclose(u["w"], ru["w"], rtol=1e-6)  # float32 products of factor
        for field in ol.ReduceLROnPlateauState._fields:
            np.testing.assert_allclose(
                getattr(s_ours, field), getattr(s_theirs, field), rtol=1e-6, err_msg=field
            )
        scales.append(float(s_ours.scale))
    assert len(set(scales)) > 1  # every case reduces at least once


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(threshold=0.1), "rule='torch'"),
        (dict(mode="max"), "rule='torch'"),
        (dict(rule="torch", atol=0.1), "optax's rule"),
        (dict(rtol=0.0, atol=0.0), "rtol > 0 or atol > 0"),
        (dict(accumulation_size=0), "accumulation_size"),
        (dict(rule="pytorch"), "'optax' or 'torch'"),
    ],
)
def test_reduce_on_plateau_refuses_arguments_of_the_other_rule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ol.reduce_on_plateau(**kwargs)
