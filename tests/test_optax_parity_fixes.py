"""Behaviours optax's own tests expect of the shared names: counters, keys, clipping, Lion."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids

# --- safe_increment ---------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [jnp.int8, jnp.uint8, jnp.int16, jnp.uint16, jnp.int32, jnp.uint32]
)
def test_safe_increment_saturates_at_its_dtype_maximum(dtype):
    top = jnp.iinfo(dtype).max
    step = jax.jit(ol.safe_increment)
    for fn in (ol.safe_increment, step):
        out = fn(jnp.asarray(top, dtype))
        assert out.dtype == jnp.dtype(dtype) and int(out) == top
        out = fn(jnp.asarray(top - 1, dtype))
        assert out.dtype == jnp.dtype(dtype) and int(out) == top
        assert int(fn(jnp.asarray(0, dtype))) == 1


@pytest.mark.parametrize(
    "count",
    [jnp.asarray(3e9, jnp.float32), jnp.asarray(True), jnp.asarray(1 + 0j, jnp.complex64)],
    ids=["float32", "bool", "complex64"],
)
def test_safe_increment_refuses_non_integer_counters(count):
    with pytest.raises(TypeError, match=r"^safe_increment: count must have an integer dtype"):
        ol.safe_increment(count)


# --- noisy_sgd keys ---------------------------------------------------------------

KEYS = {
    "int": 3,
    "numpy_int": np.int32(3),
    "jax_int_array": jnp.array(3),
    "typed_key": jax.random.key(3),
    "raw_key": jax.random.PRNGKey(3),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_noisy_sgd_accepts_what_optax_accepts(name):
    key = KEYS[name]
    params = problems.quadratic_params()
    # optax takes raw uint32 key data only wrapped; optimlab wraps it itself.
    typed = jax.random.wrap_key_data(key) if name == "raw_key" else key
    ours, theirs = ol.noisy_sgd(0.1, key=key), optax.noisy_sgd(0.1, key=typed)
    u, _ = ours.update(params, ours.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        v, _ = theirs.update(params, theirs.init(params), params)
    # The same key splits and draws as optax's add_noise: identical noise.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u, v)


# --- per_example_global_norm_clip -----------------------------------------------


def test_per_example_clip_keeps_integer_gradients():
    grads = [jnp.array([[3, 4], [0, 1]], jnp.int32), jnp.array([[0.0], [0.5]], jnp.float32)]
    got, n = ol.per_example_global_norm_clip(grads, 1.0)
    with jax.numpy_dtype_promotion("standard"):
        want, m = optax.per_example_global_norm_clip(grads, 1.0)
    assert int(n) == int(m) == 2
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(jnp.abs(got[0]).sum()) > 0


# --- init on abstract leaves -------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_init_accepts_shape_dtype_structs(case):
    tx = case.make()
    params = problems.quadratic_params()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    got = tx.init(abstract)  # directly, not under jax.eval_shape
    want = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert [(a.shape, a.dtype) for a in jax.tree.leaves(got)] == [
        (a.shape, a.dtype) for a in jax.tree.leaves(want)
    ]


# --- scale_by_lion modes --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "hard"},
        {"mode": "smooth"},
        {"mode": "smooth", "smooth_beta": 3.0},
        {"mode": "refined"},
    ],
    ids=["default", "hard", "smooth", "smooth_beta", "refined"],
)
def test_scale_by_lion_modes_match_optax(kwargs):
    ours, theirs = ol.scale_by_lion(0.8, 0.95, **kwargs), optax.scale_by_lion(0.8, 0.95, **kwargs)
    params = {"a": jnp.array([0.05, -3.0, 0.4, 0.0]), "b": jnp.array([[1.5, -0.2]])}
    s, t = ours.init(params), theirs.init(params)
    for k in range(4):
        grads = jax.tree.map(lambda p, k=k: p * (k + 1) - 0.3 * k, params)
        u, s = jax.jit(ours.update)(grads, s)
        with jax.numpy_dtype_promotion("standard"):
            v, t = theirs.update(grads, t)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), u, v)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), s.mu, t.mu)


def test_scale_by_lion_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match=r"^scale_by_lion: mode must be one of 'hard', 'smooth'"):
        ol.scale_by_lion(mode="soft")  # pyright: ignore[reportArgumentType]
