"""The recent optimizers step by step against optax 0.2.8's ``contrib`` implementations.

Both sides start from the same parameters and get, at every step, the same
gradient function evaluated at their own parameters (so drift would feed back).
Parameters and updates are compared at all 20 steps. Tolerances: float64 1e-10
and float32 1e-5, both relative to the largest magnitude in the compared tree
(an element-wise relative error is meaningless for entries that cross zero).
float32 runs in JAX's default mode, where optax's scalars are float32 too.
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
TOL = {"float32": 1e-5, "float64": 1e-10}
# Adam-type denominators amplify float32 rounding where sqrt(v) is small: optax
# evaluates beta**t with an integer exponent and orders the bias corrections
# differently, which moves the results by ~1e-7; after division by a small
# sqrt(v) (or through the distance estimates of prodigy/dadapt) this reaches
# up to ~4.4e-5 of the tree's scale. float64 agrees to 1e-10, so the algorithms match.
# dadapt_adamw's update -m/(sqrt(v)+eps) carries no learning-rate factor and
# its m grows with the estimate d, the most sensitive case (5e-5).
F32_ADAPTIVE = {"prodigy": 3e-5, "dadapt_adamw": 5e-5, "momo_adam": 3e-5, "ademamix": 3e-5}


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    p0 = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    curv = {k: rng.uniform(0.5, 2.0, size=s) for k, s in SHAPES.items()}
    noise = [{k: rng.normal(scale=0.3, size=s) for k, s in SHAPES.items()} for _ in range(20)]
    return p0, curv, noise


def _loss(curv, noise_k, params):
    return sum(jnp.sum(0.5 * c * params[k] ** 2 + noise_k[k] * params[k]) for k, c in curv.items())


def _hessian(curv, k, params):
    # A deterministic, positive "estimate" fed identically to both sides.
    return {n: jnp.asarray(c + 0.05 * k, params[n].dtype) for n, c in curv.items()}


def _optax_hessian_fn():
    """An optax Hessian-diagonal 'estimator' returning the ``hessian_diag`` extra arg."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, hessian_diag=None, **extra):
        del updates, params, extra
        return hessian_diag, state

    return optax.GradientTransformationExtraArgs(init, update)


def _run(tx, dtype, extra, standard, steps=20):
    p0, curv, noise = _problem()
    params = {k: jnp.asarray(v, dtype) for k, v in p0.items()}
    state = tx.init(params)
    step = jax.jit(lambda g, s, p, e: tx.update(g, s, p, **e))
    ps, us = [], []
    for k in range(steps):

        def f(p, k=k):
            return _loss(curv, {n: jnp.asarray(v, dtype) for n, v in noise[k].items()}, p)

        with jax.numpy_dtype_promotion("standard" if standard else "strict"):
            value, grads = jax.value_and_grad(f)(params)
            e = {"value": value} if "value" in extra else {}
            if "hessian" in extra:
                e["hessian_diag"] = _hessian(curv, k, params)
            updates, state = step(grads, state, params, e)
            params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
        ps.append(params)
        us.append(updates)
    return ps, us, state


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


def _close(ours, theirs, tol, what, like=None):
    like = theirs if like is None else like
    scale = max(max(float(np.max(np.abs(np.asarray(v, np.float64)))) for v in like.values()), 1e-30)
    for k in theirs:
        a, b = np.asarray(ours[k], np.float64), np.asarray(theirs[k], np.float64)
        dev = float(np.max(np.abs(a - b))) / scale
        assert dev <= tol, f"{what}[{k}]: deviation {dev:.3g} > {tol}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_optax(name, dtype):
    make_ours, make_theirs, extra = CASES[name]
    with jax.enable_x64(dtype == "float64"):
        ours = _run(make_ours(), jnp.dtype(dtype), extra, standard=False)
        theirs = _run(make_theirs(), jnp.dtype(dtype), extra, standard=True)
        tol = F32_ADAPTIVE.get(name, TOL[dtype]) if dtype == "float32" else TOL[dtype]
        for k in range(20):
            _close(ours[0][k], theirs[0][k], tol, f"params step {k}")
            like = theirs[0][k] if name in PARAM_SCALED_UPDATES else None
            _close(ours[1][k], theirs[1][k], tol, f"updates step {k}", like)


def test_schedule_free_eval_params_match_optax():
    with jax.enable_x64(True):
        ours = _run(ol.schedule_free_adamw(0.05), jnp.dtype("float64"), (), False)
        theirs = _run(oc.schedule_free_adamw(0.05), jnp.dtype("float64"), (), True)
        x_ours = ol.schedule_free_eval_params(ours[2], ours[0][-1])
        with jax.numpy_dtype_promotion("standard"):
            x_theirs = oc.schedule_free_eval_params(theirs[2], theirs[0][-1])
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
    u_ours, _ = ours.update(g, ours.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        u_theirs, _ = theirs.update(g, theirs.init(params), params)
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
    u_ours, s_ours = ours.update(zeros, ours.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        _, s_theirs = theirs.update(zeros, theirs.init(params), params)
    assert bool(jnp.all(u_ours["w"] == 0))
    assert bool(jnp.isnan(s_theirs.estim_lr))
    # The estimate keeps its initial value d_0 and then grows as optax's does.
    state = s_ours.inner_state
    np.testing.assert_allclose(float(state.estim_lr), 1e-6, rtol=1e-6)


def test_normalize_zero_gradients_differs_from_optax_as_documented():
    # Deliberate difference: optax's normalize divides by a zero norm (NaN).
    zeros = jnp.zeros(3)
    ours = ol.normalize().update(zeros, ol.EmptyState())[0]
    with jax.numpy_dtype_promotion("standard"):
        theirs = oc.normalize().update(zeros, optax.EmptyState())[0]
    np.testing.assert_array_equal(ours, 0.0)
    assert bool(jnp.all(jnp.isnan(theirs)))


def test_hutchinson_estimator_matches_optax_given_the_same_key():
    # optax's estimator splits its state key and uses the second half as the sample key.
    def f(p):
        return jnp.sum(jnp.arange(1.0, 4.0) * p["a"] ** 2) + jnp.sum(p["b"] ** 3)

    params = {"a": jnp.ones(3), "b": jnp.full((2, 2), 0.5)}
    est = oc.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    with jax.numpy_dtype_promotion("standard"):
        theirs, _ = est.update(params, est.init(params), params, obj_fn=f)
    _, sub = jax.random.split(jax.random.PRNGKey(3))
    ours = ol.hutchinson_estimator(f, params, sub)
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
        ol.chain(ol.normalize(), ol.sgd(0.05)),  # noqa: E731
        opaque_mode=opaque,
    )
    p = {"w": jnp.array([1.0, -2.0])}
    tx = make(False)
    s = tx.init(p)
    q = p
    for _ in range(2):
        u, s = tx.update(grad_fn(q), s, q)
        q = ol.apply_updates(q, u)
    tx = make(True)
    u, _ = tx.update(grad_fn(p), tx.init(p), p, grad_fn=grad_fn)
    np.testing.assert_allclose(ol.apply_updates(p, u)["w"], q["w"], rtol=1e-6)


def test_galore_update_matches_the_paper_rule_in_numpy():
    # GaLore with a plain SGD inner optimizer: u = -lr * scale * P P^T G (m >= n),
    # with P the top-r left singular vectors of the gradient at the refresh step.
    rng = np.random.default_rng(0)
    g1, g2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    tx = ol.galore(0.1, rank=2, update_proj_gap=2, scale=0.5, base_optimizer=ol.identity())
    with jax.enable_x64(True):
        p = jnp.zeros((5, 3))
        s = tx.init(p)
        u1, s = tx.update(jnp.asarray(g1), s, p)
        u2, s = tx.update(jnp.asarray(g2), s, p)
    P = np.linalg.svd(g1, full_matrices=False)[0][:, :2]
    # The SVD runs in float32 (as optax's), hence float32-level agreement.
    np.testing.assert_allclose(u1, -0.1 * 0.5 * P @ P.T @ g1, atol=1e-6)
    # The projector is not refreshed at the second step: g2 is projected on g1's basis.
    np.testing.assert_allclose(u2, -0.1 * 0.5 * P @ P.T @ g2, atol=1e-6)
