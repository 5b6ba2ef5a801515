"""Every name optimlab shares with optax, with default arguments, on complex parameters.

The complex counterpart of :mod:`tests.reference.test_optax_defaults`: the same
shared names, built the same way, run side by side with optax for its ``STEPS``
steps on a complex128 quadratic with complex gradients (x64 on). Where optax runs a
name on complex leaves to finite numbers, optimlab must run it too and agree with
it step by step, or refuse complex leaves for a reason listed in
:data:`REFUSED` (a ``TypeError`` at ``init`` naming the leaf). Where optax itself
fails or gives non-finite numbers, the case is skipped with optax's error.

Tolerance: the real test's (float64, 1e-10 relative with a 1e-12 floor), for the
same reason: both sides run the same double-precision complex arithmetic, in
other association orders.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests.reference import test_optax_defaults as real

# optax's own tests skip these on complex parameters ("does not support complex
# parameters", optax/_src/alias_test.py, test_optimization): there is no optax rule
# to match. optimlab's complex rule for each is in tests/reference/test_complex.py
# (against optax where its numbers are a complex method) or the torch tests.
OPTAX_UNSUPPORTED = {
    "fromage",
    "noisy_sgd",
    "sm3",
    "optimistic_gradient_descent",
    "optimistic_adam",
    "lion",
    "rprop",
    "adadelta",
    "adan",
    "polyak_sgd",
    "sign_sgd",
    "signum",
}
# Their primitives, by the same token.
OPTAX_UNSUPPORTED |= {
    "scale_by_adadelta",
    "scale_by_sign",
    "scale_by_lion",
    "scale_by_adan",
    "scale_by_rprop",
    "scale_by_polyak",
    "scale_by_sm3",
    "scale_by_optimistic_gradient",
}

# Shared names optax runs on complex leaves and optimlab refuses, with the reason.
REFUSED = {
    "cocob": "optax's reward takes no conjugate and its clamp orders complex numbers "
    "by real part: it does not optimize a complex Rosenbrock (tests/reference/"
    "test_complex.py, REFUSED)",
    "dadapt_adamw": "optax's second moment is g*g, not |g|^2, and its step-size estimate "
    "turns complex (tests/reference/test_complex.py, REFUSED)",
    "prodigy": "as dadapt_adamw (tests/reference/test_complex.py, REFUSED)",
    "scale_by_cocob": "as cocob",
    "mechanize": "optax's forms h = <g, delta> as a complex number, then squares it "
    "(h**2, not |h|^2) into its variance and orders it (clamp, maximum) by real part: "
    "not a complex method",
}


def _problem():
    rng = np.random.default_rng(1)
    shapes = real.SHAPES

    def cplx(scale=1.0, size=()):
        return jnp.asarray(
            rng.normal(scale=scale, size=size) + 1j * rng.normal(scale=scale, size=size)
        )

    params = {k: cplx(size=s) for k, s in shapes.items()}
    curv = {k: jnp.asarray(rng.uniform(0.5, 2.0, size=s)) for k, s in shapes.items()}
    noise = [{k: cplx(0.3, s) for k, s in shapes.items()} for _ in range(real.STEPS)]
    return params, curv, noise


def _run(tx, apply, name):
    params, curv, noise = _problem()
    p, s = params, tx.init(params)
    out = []
    for k in range(real.STEPS):
        g = {n: curv[n].astype(p[n].dtype) * p[n] + noise[k][n] for n in p}

        def value_fn(q, noise_k=noise[k]):
            return sum(
                jnp.sum(0.5 * curv[n] * jnp.abs(q[n]) ** 2 + jnp.real(jnp.conj(noise_k[n]) * q[n]))
                for n in q
            )

        extra = {}
        if name in real.WITH_VALUE:
            extra["value"] = value_fn(p)
        if name in real.WITH_VALUE_FN:
            extra.update(value=value_fn(p), grad=g, value_fn=value_fn)
        u, s = tx.update(g, s, p, **extra)
        p = apply(p, u)
        out.append((u, p))
    return out


def _theirs(name):
    with jax.numpy_dtype_promotion("standard"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = _run(real._build(optax, name), optax.apply_updates, name)
        except Exception as e:  # optax's own refusal: nothing to match
            pytest.skip(f"optax fails on complex leaves: {type(e).__name__}: {e}"[:300])
    if not all(np.all(np.isfinite(np.asarray(x))) for step in out for x in jax.tree.leaves(step)):
        pytest.skip("optax gives non-finite numbers on complex leaves")
    return out


@pytest.mark.parametrize("name", [n for n in real.FACTORIES if n not in real.NOT_COMPARED])
def test_complex_defaults_match_optax(name):
    if name in OPTAX_UNSUPPORTED:
        pytest.skip("optax's own tests mark it as not supporting complex parameters")
    with jax.enable_x64(True):
        theirs = _theirs(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if name in REFUSED:
                with pytest.raises(TypeError, match="complex"):
                    _run(real._build(ol, name), ol.apply_updates, name)
                return
            ours = _run(real._build(ol, name), ol.apply_updates, name)
    tol = real.LOOSER.get(name, real.TOL)
    for k, ((u, p), (ru, rp)) in enumerate(zip(ours, theirs, strict=True)):
        for n in real.SHAPES:
            for what, a, b in (("updates", u[n], ru[n]), ("params", p[n], rp[n])):
                assert jnp.asarray(a).dtype == jnp.asarray(b).dtype, f"{name}: {what}[{n}]"
                np.testing.assert_allclose(
                    np.asarray(a),
                    np.asarray(b),
                    err_msg=f"{name}: {what}[{n}] at step {k}",
                    rtol=tol["rtol"],
                    atol=tol["atol"],
                )


def test_listed_names_are_shared():
    assert set(REFUSED) <= set(real.FACTORIES)
    assert OPTAX_UNSUPPORTED <= set(real.SHARED)
