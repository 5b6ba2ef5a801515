"""Momentum schedules plug into any hyperparameter, and the state reports the scheduled value."""

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol
from optimlab import schedules as S
from tests import problems


def train(tx, steps):
    params = problems.quadratic_params()
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.grad(problems.quadratic_loss)(p), s, p))
    seen = []
    for _ in range(steps):
        updates, state = step(params, state)
        params = ol.apply_updates(params, updates)
        seen.append(ol.hyperparams(state))
    assert step._cache_size() == 1
    return params, seen


def test_sgd_with_cyclic_momentum():
    mom = S.cyclic_momentum(0.8, 0.95, step_size_up=10)
    lr = S.cyclic(0.01, 0.1, step_size_up=10)
    params, seen = train(ol.sgd(lr, momentum=mom), 200)
    assert float(problems.quadratic_loss(params)) < 1e-3
    got = np.asarray([h["momentum"] for h in seen])
    np.testing.assert_allclose(got, [mom(t) for t in range(200)], rtol=1e-6)
    np.testing.assert_allclose(got[[0, 10, 20]], [0.95, 0.8, 0.95], rtol=1e-6)
    np.testing.assert_allclose(seen[10]["learning_rate"], 0.1, rtol=1e-6)


def test_adam_with_one_cycle_momentum():
    b1 = S.one_cycle_momentum(300, pct_start=0.3)
    params, seen = train(ol.adam(S.one_cycle(0.05, 300), b1=b1), 300)
    assert float(problems.quadratic_loss(params)) < 1e-3
    got = np.asarray([h["b1"] for h in seen])
    np.testing.assert_allclose(got, [b1(t) for t in range(300)], rtol=1e-6)
    np.testing.assert_allclose(got[[0, 89, 299]], [0.95, 0.85, 0.95], rtol=1e-6)
    assert ol.hyperparams(ol.adam(b1=b1).init(jnp.zeros(1)))["b1"] == jnp.float32(0.95)
