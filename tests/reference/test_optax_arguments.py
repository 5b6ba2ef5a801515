"""optax's arguments, side by side with optax where the two can run the same step.

Each test here gives one argument optimlab accepts under optax's name and meaning
(see ``SIGNATURE_DIFFERS`` in ``test_optax_defaults.py``) a non-default value, and
compares the result with optax's at float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol

TOL = dict(rtol=1e-10, atol=1e-12)


def _tree():
    rng = np.random.default_rng(1)
    return {"w": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal(size=(4,)))}


def _steps(tx, apply, params, grads_list, **extra):
    state, out = tx.init(params), []
    for g in grads_list:
        u, state = tx.update(g, state, params, **extra)
        params = apply(params, u)
        out.append((u, params))
    return out


def _compare(ours, theirs, tol=TOL):
    for (u, p), (ru, rp) in zip(ours, theirs, strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol), u, ru)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol), p, rp)


def _grads(params, n=4, seed=2):
    rng = np.random.default_rng(seed)
    return [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params) for _ in range(n)]


@pytest.mark.parametrize("flip_sign", [True, False])
def test_scale_by_learning_rate_none_is_no_scaling(flip_sign):
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)
        ours = ol.scale_by_learning_rate(flip_sign=flip_sign)
        theirs = optax.scale_by_learning_rate(None, flip_sign=flip_sign)
        _compare(
            _steps(ours, ol.apply_updates, params, grads),
            _steps(theirs, optax.apply_updates, params, grads),
        )
        u, _ = ours.update(grads[0], ours.init(params))
        _compare([(u, u)], [(grads[0], grads[0])], tol=dict(rtol=0, atol=0))
