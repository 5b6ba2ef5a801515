"""The recent optimizers step by step against optax 0.2.8's ``contrib`` implementations.

Both sides start from the same parameters and get, at every step, the same
gradient function evaluated at their own parameters (so drift would feed back).
Parameters and updates are compared at all 20 steps. Tolerances: float64 1e-10
and float32 1e-5, both relative to the largest magnitude in the compared tree
(an element-wise relative error is meaningless for entries that cross zero).
The "float32" tier runs with x64 on, so hyperparameters are float64 on both
sides (optax's Python floats, optimlab's state leaves); "float32_x32" runs in
JAX's default mode, where optimlab stores them in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib as oc

import optimlab as ol

SHAPES = {"w": (4, 3), "b": (3,), "s": ()}
# tier -> (dtype, x64, tolerance)
TIERS = {
    "float64": ("float64", True, 1e-10),
    "float32": ("float32", True, 1e-5),
    "float32_x32": ("float32", False, 1e-5),
}
# Under x32 optimlab's hyperparameters are float32 state leaves, so 1 - b2 is
# 1 - float32(0.999) = 9.99987e-4, while optax forms 1 - 0.999 from the Python
# float (1e-3 after rounding) but takes 0.999**t in float32: its second moment
# and its bias correction disagree by 1.3e-5 relative, which shows up to 6e-6 in
# sqrt(v) and grows through the estimates d of prodigy/dadapt_adamw and the
# Polyak step of momo_adam. Given float32-representable hyperparameters, or
# with x64 on (the "float32" tier), these agree to 1e-5.
X32_TOL = {"prodigy": 3e-5, "dadapt_adamw": 5e-5, "momo_adam": 3e-5, "ademamix": 3e-5}


# Each run is one small program compiled once: XLA's compile time dominates, and
# these options (the older element-wise emitters, no LLVM optimisation) cut it by
# about 5x. Both sides are compiled alike. Without LLVM optimisation a*b + c is not
# contracted into a fused multiply-add (by default that depends on how XLA fuses
# each program), so roundings follow the operations as each library writes them.
_FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0}


def _problem(dtype, steps=20, seed=0):
    """Initial params, curvatures, and per-step noise and Hessian estimates (stacked)."""
    rng = np.random.default_rng(seed)
    p0 = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    curv = {k: rng.uniform(0.5, 2.0, size=s) for k, s in SHAPES.items()}
    noise = [{k: rng.normal(scale=0.3, size=s) for k, s in SHAPES.items()} for _ in range(steps)]
    # A deterministic, positive Hessian "estimate" fed identically to both sides.
    hess = [{k: c + 0.05 * i for k, c in curv.items()} for i in range(steps)]
    cast = lambda t: jax.tree.map(lambda v: jnp.asarray(v, dtype), t)
    stack = lambda ts: cast(jax.tree.map(lambda *v: np.stack(v), *ts))
    return cast(p0), cast(curv), stack(noise), stack(hess)


def _loss(curv, noise_k, params):
    return sum(jnp.sum(0.5 * c * params[k] ** 2 + noise_k[k] * params[k]) for k, c in curv.items())


def _optax_hessian_fn():
    """An optax Hessian-diagonal 'estimator' returning the ``hessian_diag`` extra arg."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, hessian_diag=None, **extra):
        del updates, params, extra
        return hessian_diag, state

    return optax.GradientTransformationExtraArgs(init, update)


def _compiled(fn, *args):
    """``fn(*args)`` as one program compiled with :data:`_FAST_COMPILE`."""
    return jax.jit(fn).lower(*args).compile(_FAST_COMPILE)(*args)


def _run(ours, theirs, dtype, extra=(), steps=20):
    """``steps`` steps of optimlab's ``ours`` and optax's ``theirs``, each in a
    ``lax.scan`` (both in one compiled program). Returns, per side, the params and
    updates of every step (stacked along a leading axis) and the final state."""
    params, curv, noise, hess = _problem(dtype, steps)

    def scan(tx):
        def step(carry, xs):
            params, state = carry
            noise_k, hess_k = xs
            value, grads = jax.value_and_grad(lambda p: _loss(curv, noise_k, p))(params)
            e = {"value": value} if "value" in extra else {}
            if "hessian" in extra:
                e["hessian_diag"] = hess_k
            updates, state = tx.update(grads, state, params, **e)
            params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
            return (params, state), (params, updates)

        (_, state), (ps, us) = jax.lax.scan(step, (params, tx.init(params)), (noise, hess))
        return ps, us, state

    def both(params):
        del params  # closed over; the argument only keys the compilation
        out_ours = scan(ours)
        # optax needs standard promotion; optimlab runs under the suite's strict mode.
        with jax.numpy_dtype_promotion("standard"):
            return out_ours, scan(theirs)

    return _compiled(both, params)


# name -> (optimlab factory, optax factory, extra args). Arguments away from the
# defaults are chosen so that every branch (decay, flags) is exercised.
CASES = {
    "schedule_free_sgd": (
        lambda: ol.schedule_free_sgd(0.1, weight_decay=0.01),
        lambda: oc.schedule_free_sgd(0.1, weight_decay=0.01),
        (),
    ),
    "schedule_free_adamw": (
        lambda: ol.schedule_free_adamw(0.05, weight_decay=0.01, b1=0.8),
        lambda: oc.schedule_free_adamw(0.05, weight_decay=0.01, b1=0.8),
        (),
    ),
    "prodigy": (lambda: ol.prodigy(weight_decay=0.1), lambda: oc.prodigy(weight_decay=0.1), ()),
    "prodigy_safeguard": (
        lambda: ol.prodigy(0.5, beta3=0.9, safeguard_warmup=True),
        lambda: oc.prodigy(0.5, beta3=0.9, safeguard_warmup=True),
        (),
    ),
    "dadapt_adamw": (
        lambda: ol.dadapt_adamw(weight_decay=0.1),
        lambda: oc.dadapt_adamw(weight_decay=0.1),
        (),
    ),
    "mechanize": (
        lambda: ol.mechanize(ol.adam(0.1), weight_decay=0.1),
        lambda: oc.mechanize(optax.adam(0.1), weight_decay=0.1),
        (),
    ),
    "cocob": (lambda: ol.cocob(0.5, weight_decay=0.1), lambda: oc.cocob(0.5, weight_decay=0.1), ()),
    "dog": (lambda: ol.dog(weight_decay=0.01), lambda: oc.dog(weight_decay=0.01), ()),
    "dog_learning_rate": (
        lambda: ol.dog(init_step=("learning_rate", 0.1)),
        lambda: oc.dog(init_step=("learning_rate", 0.1)),
        (),
    ),
    "dog_distance": (
        lambda: ol.dog(init_step=("distance", 0.1)),
        lambda: oc.dog(init_step=("distance", 0.1)),
        (),
    ),
    "dowg": (
        lambda: ol.dowg(init_estim_sq_dist=0.01),
        lambda: oc.dowg(init_estim_sq_dist=0.01),
        (),
    ),
    "momo": (
        lambda: ol.momo(0.5, weight_decay=0.1, adapt_lower_bound=True),
        lambda: oc.momo(0.5, weight_decay=0.1, adapt_lower_bound=True),
        ("value",),
    ),
    "momo_adam": (
        lambda: ol.momo_adam(0.1, weight_decay=0.1, adapt_lower_bound=True),
        lambda: oc.momo_adam(0.1, weight_decay=0.1, adapt_lower_bound=True),
        ("value",),
    ),
    "ademamix": (
        lambda: ol.ademamix(0.05, b3=0.99, weight_decay=0.1),
        lambda: oc.ademamix(0.05, b3=0.99, weight_decay=0.1),
        (),
    ),
    "adopt": (lambda: ol.adopt(0.05), lambda: oc.adopt(0.05), ()),
    "adopt_nesterov": (
        lambda: ol.adopt(0.05, nesterov=True, use_clipping=False),
        lambda: oc.adopt(0.05, nesterov=True, use_clipping=False),
        (),
    ),
    "sophia": (
        lambda: ol.sophia(0.05, update_interval=3),
        lambda: oc.sophia(0.05, update_interval=3, hessian_diagonal_fn=_optax_hessian_fn()),
        ("hessian",),
    ),
    "sam": (
        lambda: ol.sam(
            ol.adam(0.05), ol.chain(ol.normalize(), ol.sgd(0.05)), sync_period=3, reset_state=False
        ),
        lambda: oc.sam(
            optax.adam(0.05),
            optax.chain(oc.normalize(), optax.sgd(0.05)),
            sync_period=3,
            reset_state=False,
        ),
        (),
    ),
    "galore": (
        lambda: ol.galore(0.05, rank=2, update_proj_gap=7, scale=0.5, weight_decay=0.1),
        lambda: oc.galore(0.05, rank=2, update_proj_gap=7, scale=0.5, weight_decay=0.1),
        (),
    ),
}


# optax forms these wrappers' updates as a difference of parameter vectors
# (new_params - params), so its own rounding error is relative to the parameters,
# not to the (smaller) update: their updates are compared on the params' scale.
PARAM_SCALED_UPDATES = {"schedule_free_sgd", "schedule_free_adamw", "mechanize", "sam"}


def _deviation(ours, theirs, like=None):
    """max |ours - theirs| over the tree, relative to the largest magnitude in ``like``."""
    like = theirs if like is None else like
    scale = max(max(float(np.max(np.abs(np.asarray(v, np.float64)))) for v in like.values()), 1e-30)
    return {
        k: float(
            np.max(np.abs(np.asarray(ours[k], np.float64) - np.asarray(theirs[k], np.float64)))
        )
        / scale
        for k in theirs
    }


def _close(ours, theirs, tol, what, like=None):
    for k, dev in _deviation(ours, theirs, like).items():
        assert dev <= tol, f"{what}[{k}]: deviation {dev:.3g} > {tol}"


def _at(tree, k):
    return {n: v[k] for n, v in tree.items()}


@pytest.mark.parametrize("tier", list(TIERS))
@pytest.mark.parametrize("name", list(CASES))
def test_matches_optax(name, tier):
    make_ours, make_theirs, extra = CASES[name]
    dtype, x64, tol = TIERS[tier]
    with jax.enable_x64(x64):
        ours, theirs = _run(make_ours(), make_theirs(), jnp.dtype(dtype), extra)
    (ps, us), (tps, tus) = jax.tree.map(np.asarray, (ours[:2], theirs[:2]))
    tol = X32_TOL.get(name, tol) if tier == "float32_x32" else tol
    for k in range(20):
        _close(_at(ps, k), _at(tps, k), tol, f"params step {k}")
        like = _at(tps, k) if name in PARAM_SCALED_UPDATES else None
        _close(_at(us, k), _at(tus, k), tol, f"updates step {k}", like)


def test_schedule_free_eval_params_match_optax():
    with jax.enable_x64(True):
        ours, theirs = _run(
            ol.schedule_free_adamw(0.05), oc.schedule_free_adamw(0.05), jnp.dtype("float64")
        )

        def both(ours, theirs):
            x_ours = ol.schedule_free_eval_params(ours[2], _at(ours[0], -1))
            with jax.numpy_dtype_promotion("standard"):
                return x_ours, oc.schedule_free_eval_params(theirs[2], _at(theirs[0], -1))

        x_ours, x_theirs = _compiled(both, ours, theirs)
    _close(x_ours, x_theirs, 1e-10, "eval params")


def test_schedule_free_warmup_differs_from_optax_as_documented():
    # Deliberate difference: with warmup, step t (1-based) uses lr * t / T for both
    # the z step and the averaging weight (the reference implementation); optax's
    # base optimizer sees lr * (t - 1) / T, so its first step does not move.
    params = {"w": jnp.ones(2)}
    g = {"w": jnp.ones(2)}
    ours, theirs = (
        ol.schedule_free_sgd(1.0, warmup_steps=4),
        oc.schedule_free_sgd(1.0, warmup_steps=4),
    )

    def both(g, params):
        u_ours, _ = ours.update(g, ours.init(params), params)
        with jax.numpy_dtype_promotion("standard"):
            return u_ours, theirs.update(g, theirs.init(params), params)[0]

    u_ours, u_theirs = _compiled(both, g, params)
    # First step: c_1 = 1 and z_1 = y_0 - 0.25 * g, so y_1 = z_1.
    np.testing.assert_allclose(u_ours["w"], -0.25, rtol=1e-6)
    np.testing.assert_array_equal(u_theirs["w"], 0.0)


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw"])
def test_zero_gradients_stay_finite_where_optax_gives_nan(name):
    # Deliberate difference: optax divides by the l1 norm of the gradient sum,
    # which is 0 until a non-zero gradient arrives; optimlab keeps the estimate.
    params = {"w": jnp.ones(3)}
    zeros = {"w": jnp.zeros(3)}
    ours, theirs = getattr(ol, name)(), getattr(oc, name)()

    def both(zeros, params):
        u_ours, s_ours = ours.update(zeros, ours.init(params), params)
        with jax.numpy_dtype_promotion("standard"):
            return u_ours, s_ours, theirs.update(zeros, theirs.init(params), params)[1]

    u_ours, s_ours, s_theirs = _compiled(both, zeros, params)
    assert bool(jnp.all(u_ours["w"] == 0))
    assert bool(jnp.isnan(s_theirs.estim_lr))
    # The estimate keeps its initial value d_0 and then grows as optax's does.
    state = s_ours.inner_state
    np.testing.assert_allclose(float(state.estim_lr), 1e-6, rtol=1e-6)


def test_normalize_zero_gradients_differs_from_optax_as_documented():
    # Deliberate difference: optax's normalize divides by a zero norm (NaN).
    def both(zeros):
        ours = ol.normalize().update(zeros, ol.EmptyState())[0]
        with jax.numpy_dtype_promotion("standard"):
            return ours, oc.normalize().update(zeros, optax.EmptyState())[0]

    ours, theirs = _compiled(both, jnp.zeros(3))
    np.testing.assert_array_equal(ours, 0.0)
    assert bool(jnp.all(jnp.isnan(theirs)))


def test_hutchinson_estimator_matches_optax_given_the_same_key():
    # optax's estimator splits its state key and uses the second half as the sample key.
    def f(p):
        return jnp.sum(jnp.arange(1.0, 4.0) * p["a"] ** 2) + jnp.sum(p["b"] ** 3)

    params = {"a": jnp.ones(3), "b": jnp.full((2, 2), 0.5)}
    est = oc.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))

    def both(params):
        _, sub = jax.random.split(jax.random.PRNGKey(3))
        ours = ol.hutchinson_estimator(f, params, sub)
        with jax.numpy_dtype_promotion("standard"):
            return ours, est.update(params, est.init(params), params, obj_fn=f)[0]

    ours, theirs = _compiled(both, params)
    jax.tree.map(np.testing.assert_array_equal, ours, theirs)
    # The estimate is exact for a diagonal Hessian: z * (H z) = diag(H) when z = +-1.
    np.testing.assert_allclose(ours["a"], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(ours["b"], 3.0)


def test_sam_opaque_mode_equals_transparent_mode():
    # One opaque call runs a whole cycle; it must land where two transparent calls do.
    def grad_fn(p, i=0):
        del i
        return {"w": 2 * p["w"] + 1.0}

    make = lambda opaque: ol.sam(
        ol.sgd(0.1),
        ol.chain(ol.normalize(), ol.sgd(0.05)),
        opaque_mode=opaque,
    )

    def both(p):
        tx = make(False)
        s = tx.init(p)
        q = p
        for _ in range(2):
            u, s = tx.update(grad_fn(q), s, q)
            q = ol.apply_updates(q, u)
        tx = make(True)
        u, _ = tx.update(grad_fn(p), tx.init(p), p, grad_fn=grad_fn)
        return ol.apply_updates(p, u), q

    opaque, transparent = _compiled(both, {"w": jnp.array([1.0, -2.0])})
    np.testing.assert_allclose(opaque["w"], transparent["w"], rtol=1e-6)


def test_galore_update_matches_the_paper_rule_in_numpy():
    # GaLore with a plain SGD inner optimizer: u = -lr * scale * P P^T G (m >= n),
    # with P the top-r left singular vectors of the gradient at the refresh step.
    rng = np.random.default_rng(0)
    g1, g2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    tx = ol.galore(0.1, rank=2, update_proj_gap=2, scale=0.5, base_optimizer=ol.identity())

    def two_steps(g1, g2):
        p = jnp.zeros((5, 3))
        u1, s = tx.update(g1, tx.init(p), p)
        return u1, tx.update(g2, s, p)[0]

    with jax.enable_x64(True):
        u1, u2 = _compiled(two_steps, jnp.asarray(g1), jnp.asarray(g2))
    P = np.linalg.svd(g1, full_matrices=False)[0][:, :2]
    # The SVD runs in float32 (as optax's), hence float32-level agreement.
    np.testing.assert_allclose(u1, -0.1 * 0.5 * P @ P.T @ g1, atol=1e-6)
    # The projector is not refreshed at the second step: g2 is projected on g1's basis.
    np.testing.assert_allclose(u2, -0.1 * 0.5 * P @ P.T @ g2, atol=1e-6)
