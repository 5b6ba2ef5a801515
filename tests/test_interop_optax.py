"""The protocol is optax's: transforms mix in both directions, and shared algorithms agree."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests import problems


def _run(tx, steps=20, extra=None):
    # optax itself relies on standard dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        return _run_standard(tx, steps, extra)


def _run_standard(tx, steps, extra):
    params = problems.quadratic_params()
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p, **(extra or {})))
    for _ in range(steps):
        grads = jax.grad(problems.quadratic_loss)(params)
        updates, state = step(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_optimlab_inside_optax_chain():
    ours = _run(optax.chain(optax.clip_by_global_norm(1.0), ol.adam(1e-2)))
    ref = _run(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ours, ref)


def test_optax_inside_optimlab_chain():
    ours = _run(
        ol.chain(optax.clip_by_global_norm(1.0), ol.sgd(0.1, momentum=0.0), optax.scale(1.0))
    )
    ref = _run(optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, ref)


def test_extra_args_forwarded_and_ignored():
    seen = {}

    def init(params):
        return ol.EmptyState()

    def update(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    tx = ol.chain(ol.GradientTransformation(init, update), optax.scale(1.0), ol.adam(1e-3))
    _run(tx, steps=1, extra={"value": 3.0})
    assert "value" in seen


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: ol.adam(1e-2), lambda: optax.adam(1e-2)),
        (lambda: ol.adamw(1e-2, weight_decay=1e-2), lambda: optax.adamw(1e-2, weight_decay=1e-2)),
        (lambda: ol.sgd(1e-2), lambda: optax.sgd(1e-2)),
        (lambda: ol.clip_by_global_norm(0.5), lambda: optax.clip_by_global_norm(0.5)),
        (lambda: ol.clip(0.5), lambda: optax.clip(0.5)),
    ],
    ids=["adam", "adamw", "sgd", "clip_by_global_norm", "clip"],
)
def test_matches_optax(ours, theirs):
    # float32, 1e-5 relative: optax places Adam's bias corrections differently
    # (m_hat / (sqrt(v_hat) + eps)) - the same value up to float32 rounding.
    a, b = _run(ours()), _run(theirs())
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7), a, b)


def test_sgd_momentum_differs_from_optax_on_first_step_as_documented():
    # torch (and optimlab) start the momentum buffer at the first gradient;
    # optax starts it at zero and so takes the same first step. With dampening
    # (torch only) the second step differs.
    params = {"w": jnp.ones(1)}
    g = {"w": jnp.ones(1)}
    ours, theirs = ol.sgd(1.0, momentum=0.9, dampening=0.5), optax.sgd(1.0, momentum=0.9)
    so, st = ours.init(params), theirs.init(params)
    (uo, so), (ut, st) = ours.update(g, so, params), theirs.update(g, st, params)
    (uo, so), (ut, st) = ours.update(g, so, params), theirs.update(g, st, params)
    assert float(uo["w"][0]) == pytest.approx(-(0.9 + 0.5))
    assert float(ut["w"][0]) == pytest.approx(-1.9)


def test_optax_is_not_imported_at_runtime():
    code = "import sys, optimlab; optimlab.adam(); assert 'optax' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
