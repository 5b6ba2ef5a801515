"""reduce_on_plateau(rule="torch"): torch ReduceLROnPlateau's learning rates on the same metrics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests.schedules import torch_ref as T
from tests.schedules.torch_ref import BASE_LR

NAN = math.nan
rng = np.random.default_rng(0)
PLATEAUS = [1.0] * 5 + [0.9] * 15 + [0.8999] * 10 + list(np.linspace(0.8, 0.5, 20)) + [0.5] * 30
NOISY = list(1.0 / (1 + np.arange(150) / 20) + 0.05 * rng.standard_normal(150))
RISING = list(np.minimum(np.arange(120) / 40, 2.0))
WITH_NAN = [1.0, 0.9, NAN, 0.9, 0.9, NAN, NAN, 0.9, 0.9, 0.5, NAN] + [0.5] * 30 + [NAN] * 5

CASES = [
    ("min-rel", PLATEAUS, dict(patience=3)),
    (
        "min-abs-cooldown",
        PLATEAUS,
        dict(patience=2, threshold=0.05, threshold_mode="abs", cooldown=4, factor=0.5),
    ),
    ("min-rel-min_lr", NOISY, dict(patience=5, factor=0.5, min_lr=0.004, cooldown=2)),
    ("max-rel", RISING, dict(mode="max", patience=4, threshold=0.01, factor=0.3)),
    (
        "max-abs-cooldown",
        [-m for m in PLATEAUS],
        dict(mode="max", threshold_mode="abs", threshold=0.02, patience=1, cooldown=3),
    ),
    ("nan-min", WITH_NAN, dict(patience=2, factor=0.5)),
    (
        "nan-max-abs",
        [-m for m in WITH_NAN],
        dict(mode="max", threshold_mode="abs", patience=1, cooldown=2, factor=0.5),
    ),
    ("eps-stops-reductions", PLATEAUS, dict(patience=0, factor=0.5, eps=1e-3)),
]


def run_ours(metrics, **kwargs):
    tx = ol.reduce_on_plateau(base_lr=BASE_LR, rule="torch", **kwargs)
    step = jax.jit(lambda s, m: tx.update(jnp.ones(()), s, value=m))
    state = tx.init(jnp.zeros(()))
    lrs, states = [], []
    for m in metrics:
        updates, state = step(state, jnp.asarray(m, jnp.result_type(float)))
        lrs.append(BASE_LR * float(updates))
        states.append(state)
    assert step._cache_size() == 1
    return np.asarray(lrs), states


@pytest.mark.parametrize("metrics,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch(metrics, kwargs):
    with jax.enable_x64(True):
        got, states = run_ours(metrics, **kwargs)
    want, sched = T.plateau(metrics, **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-12)  # same rule, products of the same factor
    assert len(set(want.tolist())) > 1  # every case reduces at least once
    last = states[-1]
    assert int(last.num_bad_epochs) == sched.num_bad_epochs
    assert int(last.cooldown_counter) == sched.cooldown_counter
    assert float(last.best) == sched.best


def test_nan_metric_leaves_the_state_unchanged():
    tx = ol.reduce_on_plateau(patience=0, cooldown=1, factor=0.5, rule="torch")
    state = tx.init({"w": jnp.ones(2)})
    _, state = tx.update({"w": jnp.ones(2)}, state, value=1.0)
    _, state = tx.update({"w": jnp.ones(2)}, state, value=2.0)  # reduced, cooldown starts
    before = state
    updates, state = tx.update({"w": jnp.ones(2)}, state, value=jnp.nan)
    for a, b in zip(before, state, strict=True):
        assert a == b
    np.testing.assert_allclose(updates["w"], [0.5, 0.5])
    assert state.cooldown_counter == 1 and state.scale == 0.5


def test_state_is_arrays_and_updates_keep_dtype():
    tx = ol.reduce_on_plateau(rule="torch")
    state = tx.init({"a": jnp.ones(3, jnp.bfloat16), "b": None})
    assert all(isinstance(x, jax.Array) for x in state)
    assert state.num_bad_epochs.dtype == jnp.int32 and state.best == jnp.inf
    updates, _ = tx.update({"a": jnp.ones(3, jnp.bfloat16), "b": None}, state, value=1.0)
    assert updates["a"].dtype == jnp.bfloat16 and updates["b"] is None


def test_in_a_chain_trains_and_reduces():
    tx = ol.chain(ol.sgd(0.1), ol.reduce_on_plateau(patience=2, factor=0.5))
    params = jnp.array([3.0])
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(2 * p, s, p, value=jnp.round(p[0] ** 2)))
    for _ in range(30):
        updates, state = step(params, state)
        params = ol.apply_updates(params, updates)
    assert abs(float(params[0])) < 0.5
    assert float(state[1].scale) < 1.0


def test_min_scale_equals_min_lr_over_base_lr():
    metrics = [1.0] * 40
    a, _ = run_ours(metrics, patience=0, factor=0.5, min_scale=0.1)
    b, _ = run_ours(metrics, patience=0, factor=0.5, min_lr=0.1 * BASE_LR)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a[-1], 0.1 * BASE_LR, rtol=1e-6)


def test_update_without_metric_is_refused():
    tx = ol.reduce_on_plateau()
    with pytest.raises(ValueError, match="value=metric"):
        tx.update(jnp.ones(1), tx.init(jnp.ones(1)))
