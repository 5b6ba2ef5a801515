"""minimize under jit: one compile, traced options, eval_shape, pytrees, and the chain form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol
from optimlab._optimizers._lbfgs import _minimize_jit


def quadratic(p):
    a = p["a"].astype(jnp.float32)
    return 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * a**2) + jnp.sum((p["b"] - 1.0) ** 2)


PARAMS = {"a": jnp.array([1.0, -2.0]), "b": jnp.ones((2, 2)), "frozen": None}


def test_second_call_and_new_options_do_not_recompile():
    before = _minimize_jit._cache_size()
    params, state, info = ol.minimize(quadratic, PARAMS, max_iter=3)
    first = int(state.n_iter)
    params, state, info = ol.minimize(
        quadratic, params, state=state, max_iter=5, learning_rate=0.5, tolerance_grad=1e-6
    )
    assert _minimize_jit._cache_size() == before + 1
    assert int(state.n_iter) == first + int(info.iterations)


def test_tree_dtypes_and_none_leaves_are_kept():
    params = {"a": jnp.array([1.0, -2.0], jnp.bfloat16), "b": jnp.ones((2, 2)), "frozen": None}
    out, state, _ = ol.minimize(quadratic, params, max_iter=4)
    assert out["frozen"] is None
    assert jax.tree.structure(out) == jax.tree.structure(params)
    assert [x.dtype for x in jax.tree.leaves(out)] == [jnp.bfloat16, jnp.float32]
    assert state.d.dtype == jnp.float32 and state.d.shape == (6,)


def test_eval_shape_matches_a_real_call():
    abstract = jax.eval_shape(lambda p: ol.minimize(quadratic, p, history_size=4), PARAMS)
    concrete = ol.minimize(quadratic, PARAMS, history_size=4)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    for a, c in zip(jax.tree.leaves(abstract), jax.tree.leaves(concrete), strict=True):
        assert a.shape == c.shape and a.dtype == c.dtype
    assert concrete[1].old_dirs.shape == (4, 6)


def test_minimize_inside_jit_and_vmap_over_learning_rates():
    def run(lr):
        params, _, info = ol.minimize(quadratic, PARAMS, learning_rate=lr, max_iter=3, max_eval=10)
        return params["a"], info.iterations

    a, iterations = jax.jit(jax.vmap(run))(jnp.array([0.1, 0.5]))
    single = [run(lr)[0] for lr in (0.1, 0.5)]
    np.testing.assert_allclose(a, np.stack(single), rtol=1e-6)
    assert iterations.tolist() == [3, 3]


def test_converges_and_stops_on_the_gradient_tolerance():
    params, state, info = ol.minimize(quadratic, PARAMS, max_iter=50, line_search_fn="strong_wolfe")
    np.testing.assert_allclose(params["a"], 0.0, atol=1e-5)
    np.testing.assert_allclose(params["b"], 1.0, atol=1e-5)
    assert int(info.iterations) < 50
    # At the optimum a further call only evaluates (torch returns before iterating).
    _, state2, info2 = ol.minimize(
        quadratic,
        params,
        state=state,
        max_iter=50,
        tolerance_grad=1e-3,
        line_search_fn="strong_wolfe",
    )
    assert int(info2.iterations) == 0 and int(info2.evaluations) == 1
    assert int(state2.func_evals) == int(state.func_evals) + 1
    assert int(state2.n_iter) == int(state.n_iter)


def test_complex_params_are_optimized_as_real_pairs():
    z = jnp.array([1.0 + 2.0j, -0.5 + 0.5j], jnp.complex64)
    target = jnp.array([0.5 - 1.0j, 2.0 + 0.0j], jnp.complex64)
    out, _, _ = ol.minimize(
        lambda p: jnp.sum(jnp.abs(p - target) ** 2), z, max_iter=30, line_search_fn="strong_wolfe"
    )
    assert out.dtype == jnp.complex64
    np.testing.assert_allclose(out, target, atol=1e-5)


def test_update_with_value_fn_is_one_minimize_call():
    tx = ol.torch_lbfgs(max_iter=4, line_search_fn="strong_wolfe", history_size=5)
    state = tx.init(PARAMS)
    value, grad = jax.value_and_grad(quadratic)(PARAMS)
    updates, state = jax.jit(tx.update, static_argnames="value_fn")(
        grad, state, PARAMS, value=value, value_fn=quadratic
    )
    params, expected, _ = ol.minimize(
        quadratic, PARAMS, max_iter=4, line_search_fn="strong_wolfe", history_size=5
    )
    ours = ol.apply_updates(PARAMS, updates)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(state.inner_state.n_iter) == int(expected.n_iter) == 4
    # The state carries over to minimize.
    ol.minimize(
        quadratic,
        ours,
        state=state.inner_state,
        max_iter=4,
        line_search_fn="strong_wolfe",
        history_size=5,
    )
