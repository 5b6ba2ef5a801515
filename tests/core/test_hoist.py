"""Per-update scalars computed once for every leaf (``_core._fusion.hoist``).

The barrier is a program transformation: the values must come out unchanged,
under every JAX transformation an optimizer update meets (jit, vmap over
hyperparameters, grad through the update), and it must be absent where it has
nothing to share (one leaf, eager updates).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab
from optimlab._core import _fusion, _tree

# The barrier is lowered on CPU only (elsewhere the values pass through as they are).
cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the barrier is CPU's")


def _lowered(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()


def test_values_pass_through_unchanged_under_jit():
    values = {"a": jnp.float32(0.25), "n": jnp.int32(3), "v": jnp.arange(3.0), "none": None}
    out = jax.jit(_fusion.apart)(values)
    assert jax.tree.structure(out) == jax.tree.structure(values)
    for x, y in zip(jax.tree.leaves(out), jax.tree.leaves(values), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@cpu_only
def test_only_traced_float_scalars_go_through_the_barrier():
    x = jnp.float32(0.5)
    assert "stablehlo.case" in _lowered(lambda s: _fusion.apart(s * 2), x)
    assert "stablehlo.case" not in _lowered(lambda s: _fusion.apart(s.astype(jnp.int32)), x)
    assert "stablehlo.case" not in _lowered(lambda v: _fusion.apart(v * 2), jnp.ones(3))
    eager = _fusion.apart(x * 2)  # eager: a concrete array, returned as it is
    assert isinstance(eager, jax.Array) and float(eager) == 1.0


@cpu_only
def test_scalars_are_hoisted_for_several_small_leaves_only():
    x = jnp.float32(0.5)
    small = _fusion.SMALL_LEAF
    cases = [
        ([jnp.ones(4)], False),  # one leaf: nothing to share
        ([jnp.ones(4), jnp.ones(4)], True),
        ([jnp.ones(small), jnp.ones(small)], True),
        ([jnp.ones(small + 1), jnp.ones(small + 1)], False),  # the kernels' work hides it
    ]
    for tree, expected in cases:
        text = _lowered(lambda s, t: _fusion.hoist(s * 2, t), x, tree)
        assert ("stablehlo.case" in text) is expected, [t.shape for t in tree]
        assert _fusion.worth_hoisting(tree) is expected


@cpu_only
def test_a_step_may_decide_for_every_call_it_traces():
    """``hoisting`` overrides the rule both ways, for the trace inside it only."""
    x = jnp.float32(0.5)
    one, many = [jnp.ones(4)], [jnp.ones(4), jnp.ones(4)]
    for on, tree in ((True, one), (False, many)):
        with _fusion.hoisting(on):
            text = _lowered(lambda s, t: _fusion.hoist(s * 2, t), x, tree)
        assert ("stablehlo.case" in text) is on
    text = _lowered(lambda s, t: _fusion.hoist(s * 2, t), x, many)
    assert "stablehlo.case" in text  # the rule again outside it


@cpu_only
def test_a_one_leaf_update_has_no_barrier_and_a_many_leaf_update_has_one():
    tx = optimlab.chain(optimlab.clip_by_global_norm(1.0), optimlab.adamw(1e-3))
    for leaves, expected in ((1, False), (3, True)):
        params = {f"w{i}": jnp.ones(4) for i in range(leaves)}
        state = tx.init(params)
        text = _lowered(lambda g, s, p: tx.update(g, s, p), params, state, params)
        assert ("stablehlo.case" in text) is expected, leaves


def test_grad_through_a_hoisted_update_matches_the_eager_grad():
    # d(update)/d(learning_rate) through the barrier equals the same derivative eagerly.
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
    grads = {"a": jnp.array([0.3, 0.1]), "b": jnp.array([-0.2])}

    def first_update(lr):
        tx = optimlab.adam(1.0)
        state = optimlab.set_hyperparams(tx.init(params), learning_rate=lr)
        updates, _ = tx.update(grads, state, params)
        return sum(jnp.sum(u) for u in jax.tree.leaves(updates))

    eager = jax.grad(first_update)(jnp.float32(0.1))
    jitted = jax.jit(jax.grad(first_update))(jnp.float32(0.1))
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)


def test_vmap_over_learning_rates_sees_each_value():
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    tx = optimlab.sgd(1.0)
    state = tx.init(params)
    lrs = jnp.array([0.1, 0.2, 0.4])

    def one(lr):
        s = optimlab.set_hyperparams(state, learning_rate=lr)
        return tx.update(grads, s, params)[0]

    out = jax.jit(jax.vmap(one))(lrs)
    np.testing.assert_allclose(out["a"][:, 0], -0.5 * lrs, rtol=1e-6)
    np.testing.assert_allclose(out["b"][:, 1], -0.5 * lrs, rtol=1e-6)


@cpu_only
@pytest.mark.parametrize("leaves", [_tree.MANY_LEAVES - 1, _tree.MANY_LEAVES])
def test_global_norm_of_many_leaves_is_the_same_number_with_its_partial_sums_apart(
    leaves, monkeypatch
):
    # Leaves over SMALL_LEAF are summed one by one: one partial sum per leaf.
    monkeypatch.setattr(_tree, "SMALL_LEAF", 1)
    tree = [jnp.full((2,), 0.01 * (i % 7), jnp.float32) for i in range(leaves)]
    text = _lowered(_tree.global_norm, tree)
    assert ("stablehlo.case" in text) is (leaves >= _tree.MANY_LEAVES)
    sq = np.float32(0)
    for x in tree:  # the same order of additions as the unhoisted norm
        sq = np.float32(sq + np.sum(np.square(np.asarray(x))))
    np.testing.assert_allclose(jax.jit(_tree.global_norm)(tree), np.sqrt(sq), rtol=1e-6)


@pytest.mark.parametrize("dtypes", [("float32",), ("float32", "bfloat16", "complex64")])
def test_global_norm_joins_small_leaves_into_one_reduction_per_chunk(dtypes):
    rng = np.random.default_rng(0)
    n = 2 * _tree.NORM_CHUNK + 3
    tree = []
    for i in range(n):
        dtype = dtypes[(i // 5) % len(dtypes)]  # runs of one dtype, then another
        x = rng.standard_normal((3, 7)).astype(np.float32)
        tree.append(jnp.asarray(x + 1j * x if dtype == "complex64" else x, dtype))
    tree.insert(n // 2, jnp.ones(_fusion.SMALL_LEAF + 1))  # a large leaf, summed alone
    exact = np.sqrt(sum(np.sum(np.abs(np.asarray(x, np.complex128)) ** 2) for x in tree))
    np.testing.assert_allclose(jax.jit(_tree.global_norm)(tree), exact, rtol=1e-6)
    text = _lowered(_tree.global_norm, tree)
    # One reduction per run of one dtype (at most NORM_CHUNK leaves), not one per leaf.
    assert text.count("stablehlo.reduce") < n // 4
