"""optax's aliases that torch lacks, against real optax, step by step.

Each optimizer runs 20 steps on a small tree (a matrix, a vector, a scalar and a
longer vector); at every step each side gets the gradient ``c * p + noise_k`` of
its *own* current params (so any drift feeds back), and params and updates are
compared at every step.

Tolerances, each with its reason:
- float32 (x64 on, so hyperparameters are float64 scalars, as optax's Python
  floats are when it forms ``1 - b`` or a bias correction), 1e-5 relative with a
  1e-7 absolute floor for entries near zero: both sides run the same float32
  operations, associated slightly differently; adaptive denominators that get
  small (AdaBelief's prediction error, Yogi's) amplify that rounding over 20 steps;
  NovoGrad sums the squared gradient norm directly where optax squares
  ``jnp.linalg.norm`` (up to 2e-7 absolute on entries below 1e-2).
- float64 (x64 on), 1e-10 relative with a 1e-13 floor: the same operations in
  double precision.

Deliberate differences from optax, each demonstrated by a test below: ``sm3``
accepts scalar leaves (optax's raises); ``optimistic_adam`` does not warn that
it is deprecated (optax's does); ``noisy_sgd`` defaults to ``key=0`` without a
warning; ``polyak_sgd`` refuses an unknown ``variant`` when built.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests.reference.harness import SHAPES, init_params

STEPS = 20
TOL = {"float32": dict(rtol=1e-5, atol=1e-7), "float64": dict(rtol=1e-10, atol=1e-13)}
NO_SCALAR = {k: v for k, v in SHAPES.items() if k != "s"}


def _problem(dtype, shapes, seed=0):
    rng = np.random.default_rng(seed + 1)
    curv = {k: rng.uniform(0.5, 2.0, size=s) for k, s in shapes.items()}
    noise = {k: rng.normal(scale=0.3, size=(STEPS, *s)) for k, s in shapes.items()}
    cast = lambda t: {k: jnp.asarray(np.asarray(v, dtype)) for k, v in t.items()}
    return cast(init_params(seed, shapes)), cast(curv), cast(noise)


def _trajectory(tx, apply, params, curv, noise, with_value):
    """Params and updates after each of STEPS steps (eager: cheaper than compiling here)."""
    p, s = params, tx.init(params)
    ps, us = [], []
    for k in range(STEPS):
        g = {n: curv[n] * p[n] + noise[n][k] for n in p}
        extra = {}
        if with_value:
            extra["value"] = sum(
                jnp.sum(0.5 * curv[n] * p[n] * p[n] + noise[n][k] * p[n]) for n in p
            )
        u, s = tx.update(g, s, p, **extra)
        p = apply(p, u)
        ps.append(p)
        us.append(u)
    stack = lambda trees: {n: np.stack([np.asarray(t[n]) for t in trees]) for n in p}
    return stack(ps), stack(us)


def compare(ours, theirs, dtype, *, shapes=SHAPES, with_value=False):
    """Runs both optimizers; asserts closeness; returns the worst relative deviation."""
    tol = TOL[dtype]
    with jax.enable_x64(True):
        params, curv, noise = _problem(dtype, shapes)
        mine = _trajectory(ours(), ol.apply_updates, params, curv, noise, with_value)
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            ref = _trajectory(theirs(), optax.apply_updates, params, curv, noise, with_value)
        worst = 0.0
        for what, a_tree, b_tree in (("params", mine[0], ref[0]), ("updates", mine[1], ref[1])):
            for n in shapes:
                a = np.asarray(a_tree[n], np.float64)
                b = np.asarray(b_tree[n], np.float64)
                assert np.all(np.isfinite(b)), f"optax gave non-finite {what}[{n}]"
                np.testing.assert_allclose(a, b, err_msg=f"{what}[{n}]", **tol)
                scale = np.maximum(np.abs(b), tol["atol"] / tol["rtol"])
                worst = max(worst, float(np.max(np.abs(a - b) / scale)))
    return worst


# (id, optimlab factory, optax factory, compare kwargs). Arguments are the same on both
# sides unless a comment says otherwise.
CONFIGS = [
    ("lion", lambda: ol.lion(0.01), lambda: optax.lion(0.01), {}),
    (
        "lion_betas_no_wd",
        lambda: ol.lion(0.01, b1=0.8, b2=0.95, weight_decay=0.0),
        lambda: optax.lion(0.01, b1=0.8, b2=0.95, weight_decay=0.0),
        {},
    ),
    (
        "lamb_wd_eps_root",
        lambda: ol.lamb(0.05, weight_decay=0.01, eps_root=1e-8),
        lambda: optax.lamb(0.05, weight_decay=0.01, eps_root=1e-8),
        {},
    ),
    ("lars", lambda: ol.lars(0.5), lambda: optax.lars(0.5), {}),
    (
        "lars_wd_nesterov",
        lambda: ol.lars(0.5, weight_decay=0.01, trust_coefficient=0.01, eps=1e-6, nesterov=True),
        lambda: optax.lars(0.5, weight_decay=0.01, trust_coefficient=0.01, eps=1e-6, nesterov=True),
        {},
    ),
    ("adabelief", lambda: ol.adabelief(0.05), lambda: optax.adabelief(0.05), {}),
    (
        "adabelief_nesterov",
        lambda: ol.adabelief(0.05, nesterov=True),
        lambda: optax.adabelief(0.05, nesterov=True),
        {},
    ),
    ("yogi", lambda: ol.yogi(0.05), lambda: optax.yogi(0.05), {}),
    (
        "adan_wd",
        lambda: ol.adan(0.05, weight_decay=0.01),
        lambda: optax.adan(0.05, weight_decay=0.01),
        {},
    ),
    (
        "novograd_wd",
        lambda: ol.novograd(0.05, weight_decay=0.01),
        lambda: optax.novograd(0.05, weight_decay=0.01),
        {},
    ),
    ("sign_sgd", lambda: ol.sign_sgd(0.01), lambda: optax.sign_sgd(0.01), {}),
    ("signum", lambda: ol.signum(0.01, beta=0.5), lambda: optax.signum(0.01, beta=0.5), {}),
    # optax.sm3 fails on scalar leaves (see test_sm3_scalar_leaves below): no scalar here.
    (
        "sm3",
        lambda: ol.sm3(0.1, momentum=0.5),
        lambda: optax.sm3(0.1, momentum=0.5),
        {"shapes": NO_SCALAR},
    ),
    ("fromage", lambda: ol.fromage(0.05), lambda: optax.fromage(0.05), {}),
    (
        "noisy_sgd",
        lambda: ol.noisy_sgd(0.05, eta=0.1, gamma=0.3, key=3),
        lambda: optax.noisy_sgd(0.05, eta=0.1, gamma=0.3, key=3),
        {},
    ),
    ("polyak_sgd", lambda: ol.polyak_sgd(), lambda: optax.polyak_sgd(), {"with_value": True}),
    (
        "polyak_sgd_plus",
        lambda: ol.polyak_sgd(0.5, scaling=0.5, f_min=-1.0, variant="sps+"),
        lambda: optax.polyak_sgd(0.5, scaling=0.5, f_min=-1.0, variant="sps+"),
        {"with_value": True},
    ),
    (
        "optimistic_gradient_descent",
        lambda: ol.optimistic_gradient_descent(0.05, alpha=0.5, beta=2.0),
        lambda: optax.optimistic_gradient_descent(0.05, alpha=0.5, beta=2.0),
        {},
    ),
    # optimistic_adam_v2 (see the test below for optimistic_adam, deprecated in optax).
    (
        "optimistic_adam_v2",
        lambda: ol.optimistic_adam_v2(0.05, alpha=0.5, beta=0.5),
        lambda: optax.optimistic_adam_v2(0.05, alpha=0.5, beta=0.5),
        {},
    ),
]


# Variants of an alias already compared in both dtypes run in float64 only (time budget).
VARIANTS = {"lion_betas_no_wd", "lars", "adabelief_nesterov", "polyak_sgd_plus"}
GRID = [
    pytest.param(c, d, id=f"{c[0]}-{d}")
    for c in CONFIGS
    for d in ("float32", "float64")
    if d == "float64" or c[0] not in VARIANTS
]


@pytest.mark.parametrize("cfg,dtype", GRID)
def test_matches_optax(cfg, dtype):
    _, ours, theirs, kwargs = cfg
    compare(ours, theirs, dtype, **kwargs)


def test_sm3_scalar_leaves():
    # optax's sm3 indexes the (empty) list of per-axis accumulators of a 0-d leaf and
    # fails; optimlab keeps one scalar accumulator, i.e. treats it as a 1-element vector.
    params = {"s": jnp.asarray(0.7)}
    grads = {"s": jnp.asarray(-1.5)}
    with jax.numpy_dtype_promotion("standard"), pytest.raises(IndexError):
        tx = optax.sm3(0.1)
        tx.update(grads, tx.init(params), params)
    tx = ol.sm3(0.1)
    ours, _ = tx.update(grads, tx.init(params), params)
    vec, _ = tx.update({"s": grads["s"][None]}, tx.init({"s": params["s"][None]}))
    assert float(ours["s"]) == float(vec["s"][0])
    # First step: m = (1 - 0.9) * g / sqrt(g^2 + 1e-8), u = -0.1 * m.
    assert float(ours["s"]) == pytest.approx(0.1 * 0.1 * 1.5 / np.sqrt(1.5**2 + 1e-8))


def test_optimistic_adam_has_the_deprecated_optax_interface():
    # optax.optimistic_adam(lr, optimism) (deprecated in optax) is optimistic_adam here,
    # and optimistic_adam_v2 with alpha=lr, beta=optimism and a unit learning rate.
    lr, optimism = 0.05, 0.2

    def deprecated():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return optax.optimistic_adam(lr, optimism)

    compare(lambda: ol.optimistic_adam(lr, optimism), deprecated, "float32")
    compare(lambda: ol.optimistic_adam_v2(1.0, alpha=lr, beta=optimism), deprecated, "float32")


def test_noisy_sgd_default_key_is_zero_without_warning():
    # optax warns when no key is given and then uses 0; optimlab's default key is 0 (and
    # noisy_sgd(key=k) is compared with optax's above).
    with jax.numpy_dtype_promotion("standard"), pytest.warns(UserWarning, match="key"):
        optax.noisy_sgd(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = ol.noisy_sgd(0.05).init({"w": jnp.zeros(2)})
    key = state.inner_state[0].rng_key
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(0)))


def test_polyak_variant_refused_at_construction():
    # optax builds polyak_sgd(variant="bad") and only fails at the first update.
    optax.polyak_sgd(variant="bad")
    with pytest.raises(ValueError, match="Invalid variant value"):
        ol.polyak_sgd(variant="bad")


def test_noise_changes_with_the_key():
    # The key lives in the state: a different key gives different noise, the same key
    # the same noise.
    params = {"w": jnp.zeros(4)}
    grads = {"w": jnp.zeros(4)}

    def first(key):
        tx = ol.noisy_sgd(1.0, key=key)
        return np.asarray(tx.update(grads, tx.init(params), params)[0]["w"])

    np.testing.assert_array_equal(first(1), first(jax.random.key(1)))
    assert not np.allclose(first(1), first(2))
