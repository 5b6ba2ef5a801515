"""Every registered optimizer through the same checks (see tests/registry)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids


def _leaf_dtypes(tree):
    return [jnp.asarray(x).dtype for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_converges_on_quadratic_under_jit(case):
    tx = case.make()
    params = problems.quadratic_params()
    train = problems.make_train(tx, problems.quadratic_loss, case.converge_steps)
    final, _, losses = train(params, tx.init(params))
    assert np.all(np.isfinite(np.asarray(losses)))
    assert problems.distance_to_zero(final) < case.quadratic_tol, (
        f"{case.id}: distance {problems.distance_to_zero(final)}")


@pytest.mark.parametrize("case", [c for c in CASES if c.rosenbrock], ids=case_ids(
    [c for c in CASES if c.rosenbrock]))
def test_converges_on_rosenbrock_under_jit(case):
    make, steps, tol = case.rosenbrock
    tx = make()
    params = problems.rosenbrock_params()
    final, _, _ = problems.make_train(tx, problems.rosenbrock, steps)(params, tx.init(params))
    err = float(jnp.max(jnp.abs(final["xy"] - 1.0)))
    assert err < tol, f"{case.id}: |xy - 1| = {err}"


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_no_recompile_and_stable_state(case):
    tx = case.make()
    params = problems.quadratic_params()
    state = tx.init(params)
    grads = jax.grad(problems.quadratic_loss)(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    u1, s1 = step(grads, state, params)
    u2, s2 = step(grads, s1, params)
    if case.lr_name is not None:
        lr = ol.hyperparams(s2)[case.lr_name]
        s2 = ol.set_hyperparams(s2, **{case.lr_name: 0.5 * float(lr)})
        s2 = ol.set_hyperparams(s2, **{case.lr_name: np.float32(0.25) * np.float32(lr)})
        step(grads, s2, params)
    assert step._cache_size() == 1, "the step recompiled"
    for s in (s1, s2):
        assert jax.tree.structure(s) == jax.tree.structure(state)
        assert _leaf_dtypes(s) == _leaf_dtypes(state)
    for u in (u1, u2):
        assert jax.tree.structure(u) == jax.tree.structure(grads)
        assert _leaf_dtypes(u) == _leaf_dtypes(grads)


@pytest.mark.parametrize("case", [c for c in CASES if c.lr_name], ids=case_ids(
    [c for c in CASES if c.lr_name]))
def test_one_step_counter(case):
    state = case.make().init(problems.quadratic_params())
    counts = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
              if getattr(path[-1], "name", None) == "count"]
    assert len(counts) == 1
    assert counts[0].dtype == jnp.int32


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_none_leaves_pass_through(case):
    tx = case.make()
    params = {"w": jnp.ones(3), "frozen": None, "b": [jnp.ones(2), None]}
    grads = {"w": jnp.ones(3), "frozen": None, "b": [jnp.ones(2), None]}
    state = tx.init(params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    assert updates["frozen"] is None and updates["b"][1] is None
    assert updates["w"].shape == (3,)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_low_precision_zero_gradients(case, dtype):
    tx = case.make()
    params = problems.quadratic_params(dtype)
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    step = jax.jit(tx.update)
    for _ in range(3):
        updates, new_state = step(zeros, state, params)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        assert _leaf_dtypes(new_state) == _leaf_dtypes(state)
        state = new_state
        for u in jax.tree.leaves(updates):
            assert u.dtype == dtype
            assert bool(jnp.all(jnp.isfinite(u.astype(jnp.float32))))
            if case.zero_grad_zero_update:
                assert bool(jnp.all(u == 0))
        params = ol.apply_updates(params, updates)
        assert _leaf_dtypes(params) == [dtype] * 3
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_eval_shape_init(case):
    tx = case.make()
    params = problems.quadratic_params()
    abstract = jax.eval_shape(tx.init, params)
    concrete = tx.init(params)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    for a, c in zip(jax.tree.leaves(abstract), jax.tree.leaves(concrete), strict=True):
        assert a.shape == c.shape and a.dtype == c.dtype


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_complex_params(case):
    tx = case.make()
    params = {"z": jnp.array([1.0 + 1.0j, -0.5 + 2.0j], jnp.complex64)}
    if not case.complex_ok:
        with pytest.raises((TypeError, ValueError), match="complex"):
            state = tx.init(params)
            tx.update(params, state, params)
        return
    # The descent direction of 0.5 * |z|^2 is z (torch's convention for complex grads).
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(p, s, p))
    for _ in range(case.converge_steps):
        updates, state = step(params, state)
        params = ol.apply_updates(params, updates)
    assert params["z"].dtype == jnp.complex64
    assert problems.distance_to_zero(params) < case.quadratic_tol * 10
