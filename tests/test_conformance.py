"""Every registered optimizer through the same checks (see tests/registry).

Checks are grouped so that each case compiles a handful of programs only:
- ``test_trains_under_jit``: quadratic convergence under ``jit`` (a scan of
  steps), ``None`` leaves passing through, no recompilation after hyperparameter
  changes (Python float and NumPy scalar), constant state treedef and dtypes,
  update dtypes, a single int32 step counter and ``eval_shape`` of ``init``;
- ``test_low_precision_zero_gradients``: bf16 and f16 params in one tree;
- ``test_converges_on_rosenbrock_under_jit`` for the cases that ask for it;
- ``test_complex_params``: converges, or a clear error for real-only algorithms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids


def _leaf_dtypes(tree):
    return [x.dtype if hasattr(x, "dtype") else jnp.asarray(x).dtype for x in jax.tree.leaves(tree)]


def _params_with_none():
    return {**problems.quadratic_params(), "frozen": None}


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_trains_under_jit(case):
    tx = case.make()
    params = _params_with_none()
    state = tx.init(params)

    # eval_shape of init: same structure, shapes and dtypes, nothing computed.
    abstract = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(abstract) == jax.tree.structure(state)
    assert [(a.shape, a.dtype) for a in jax.tree.leaves(abstract)] == [
        (jnp.shape(c), jnp.asarray(c).dtype) for c in jax.tree.leaves(state)
    ]

    # Updates come back with the gradients' structure and dtypes (traced only).
    grads = jax.grad(problems.quadratic_loss)(params)
    updates, _ = jax.eval_shape(tx.update, grads, state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(grads)
    assert _leaf_dtypes(updates) == _leaf_dtypes(grads)

    if case.lr_name is not None:  # exactly one int32 step counter
        counts = [
            leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
            if getattr(path[-1], "name", None) == "count"
        ]
        assert len(counts) == 1 and counts[0].dtype == jnp.int32

    train = problems.make_train(tx, problems.quadratic_loss, case.converge_steps)
    final, new_state, losses = train(params, state)
    assert final["frozen"] is None
    assert np.all(np.isfinite(np.asarray(losses)))
    assert problems.distance_to_zero(final) < case.quadratic_tol, (
        f"{case.id}: distance {problems.distance_to_zero(final)}"
    )
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert _leaf_dtypes(new_state) == _leaf_dtypes(state)

    if case.lr_name in problems.scheduled_names(new_state):
        # A value that follows a schedule is recomputed at every step: setting it is refused.
        with pytest.raises(ValueError, match="follows a schedule"):
            ol.set_hyperparams(new_state, **{case.lr_name: 0.1})
        train(final, new_state)
    elif case.lr_name is not None:
        lr = float(ol.hyperparams(new_state)[case.lr_name])
        for value in (0.5 * lr, np.float32(0.25 * lr)):
            new_state = ol.set_hyperparams(new_state, **{case.lr_name: value})
            train(final, new_state)
    else:
        train(final, new_state)
    assert train._cache_size() == 1, "the step recompiled"


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_low_precision_zero_gradients(case):
    tx = case.make()
    params = {
        "bf16": problems.quadratic_params(jnp.bfloat16),
        "f16": problems.quadratic_params(jnp.float16),
    }
    dtypes = _leaf_dtypes(params)
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    step = jax.jit(tx.update)
    for _ in range(3):
        updates, new_state = step(zeros, state, params)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        assert _leaf_dtypes(new_state) == _leaf_dtypes(state)
        state = new_state
        assert _leaf_dtypes(updates) == dtypes
        for u in jax.tree.leaves(updates):
            assert bool(jnp.all(jnp.isfinite(u.astype(jnp.float32))))
            if case.zero_grad_zero_update:
                assert bool(jnp.all(u == 0))
        params = ol.apply_updates(params, updates)
        assert _leaf_dtypes(params) == dtypes
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))


ROSENBROCK = [c for c in CASES if c.rosenbrock]


@pytest.mark.parametrize("case", ROSENBROCK, ids=case_ids(ROSENBROCK))
def test_converges_on_rosenbrock_under_jit(case):
    make, steps, tol = case.rosenbrock
    tx = make()
    params = problems.rosenbrock_params()
    final, _, _ = problems.make_train(tx, problems.rosenbrock, steps)(params, tx.init(params))
    err = float(jnp.max(jnp.abs(final["xy"] - 1.0)))
    assert err < tol, f"{case.id}: |xy - 1| = {err}"


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
    def body(carry, _):
        p, s = carry
        updates, s = tx.update(p, s, p)
        return (ol.apply_updates(p, updates), s), None

    run = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=case.converge_steps)[0])
    final, _ = run(params, tx.init(params))
    assert final["z"].dtype == jnp.complex64
    assert problems.distance_to_zero(final) < case.quadratic_tol * 10
