"""Faults, for every registry case: non-finite gradients, low precision, a saturated step
counter, mixed param/gradient dtypes under ``lax.scan`` and hyperparameter input types.

Params are tiny and each case's jitted update is compiled once and shared by the checks
that can use it (see ``_compiled``). docs/faults.md describes the behaviour checked here.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids

INT32_MAX = 2**31 - 1


def _params(dtype=jnp.float32):
    return {
        "a": jnp.array([1.0, -2.0, 3.0], dtype),
        "c": jnp.array([[0.5, -1.0], [2.0, 0.25]], dtype),
    }


def _grads(params, i):
    return jax.tree.map(
        lambda p: (jnp.sin(p.astype(jnp.float32) * (i + 1)) + 0.1).astype(p.dtype), params
    )


def _bits(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.atleast_1d(np.asarray(x)).view(np.uint8)


def _assert_bitwise(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(_bits(x), _bits(y))


def _finite(tree):
    return all(
        bool(jnp.all(jnp.isfinite(jnp.asarray(x).astype(jnp.float32))))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    )


@functools.cache
def _compiled(case_id):
    """The case's transformation and its jitted update (compiled once per case)."""
    case = {c.id: c for c in CASES}[case_id]
    tx = case.make()
    return tx, jax.jit(tx.update)


# --------------------------------------------------------------------------- NaN / Inf


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_skip_nonfinite_keeps_faults_out_of_the_state(case):
    """A NaN gradient at step 2 and an Inf at step 3 leave no trace: the run equals the
    run without them, bit for bit."""
    tx = ol.skip_nonfinite(case.make())
    step = jax.jit(tx.update)
    params = _params()
    faults = {2: np.nan, 3: np.inf}

    def run(with_faults):
        p, s = params, tx.init(params)
        for i in range(4):
            if with_faults and i in faults:
                bad = jax.tree.map(lambda g, i=i: g.at[..., 0].set(faults[i]), _grads(p, 9))
                u, s_bad = step(bad, s, p)
                assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
                _assert_bitwise(s_bad.inner_state, s.inner_state)
                s = s_bad
            u, s = step(_grads(p, i), s, p)
            p = ol.apply_updates(p, u)
        return p, s

    p_fault, s_fault = run(True)
    p_clean, s_clean = run(False)
    assert _finite((p_fault, s_fault.inner_state))
    _assert_bitwise(p_fault, p_clean)
    _assert_bitwise(s_fault.inner_state, s_clean.inner_state)
    assert int(s_fault.total_notfinite) == 2 and int(s_clean.total_notfinite) == 0


def test_plain_adam_and_sgd_propagate_a_nan_as_documented():
    # docs/faults.md: without skip_nonfinite a NaN reaches the moments and every later
    # update of that leaf; other leaves are untouched (per-leaf math).
    params = _params()
    for tx in (ol.adam(1e-2), ol.sgd(0.1, momentum=0.9)):
        state = tx.init(params)
        grads = dict(_grads(params, 0), a=jnp.array([jnp.nan, 1.0, 1.0]))
        u, state = tx.update(grads, state, params)
        assert bool(jnp.isnan(u["a"][0])) and _finite(u["c"]) and _finite(u["a"][1:])
        u, state = tx.update(_grads(params, 1), state, params)
        assert bool(jnp.isnan(u["a"][0])) and _finite(u["c"])


# --------------------------------------------------------------------------- low precision


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_low_precision_zero_gradients_after_training(case, dtype):
    """Zero gradients after real steps (moments decaying towards underflow): finite updates,
    exactly zero from a fresh state where the case says so."""
    tx = case.make()
    step = jax.jit(tx.update)
    params = _params(dtype)
    zeros = jax.tree.map(jnp.zeros_like, params)
    u, _ = step(zeros, tx.init(params), params)
    if case.zero_grad_zero_update:
        assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
    state = tx.init(params)
    for i in range(2):
        u, state = step(_grads(params, i), state, params)
        params = ol.apply_updates(params, u)
    for _ in range(3):
        u, state = step(zeros, state, params)
        assert all(x.dtype == dtype for x in jax.tree.leaves(u))
        assert _finite(u) and _finite(state)
        params = ol.apply_updates(params, u)
    assert _finite(params)


# --------------------------------------------------------------------------- step counter


def _counts(state):
    return [
        (p, x)
        for p, x in jax.tree_util.tree_flatten_with_path(state)[0]
        if getattr(p[-1], "name", None) == "count"
    ]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_step_counter_restored_at_int32_max_saturates(case):
    tx, step = _compiled(case.id)
    params = _params()
    state = tx.init(params)
    _, state = step(_grads(params, 0), state, params)
    counts = {p for p, _ in _counts(state)}
    if not counts:
        pytest.skip(f"{case.id} keeps no step counter")
    restored = jax.tree_util.tree_map_with_path(
        lambda p, x: jnp.full_like(x, INT32_MAX) if p in counts else x, state
    )
    for i in range(2):
        u, restored = step(_grads(params, i), restored, params)
        assert _finite(u), f"non-finite update at the int32 maximum: {u}"
        assert _finite(restored)
        values = [int(x) for _, x in _counts(restored)]
        assert INT32_MAX in values and all(v >= 0 for v in values), values
        # Every counter saturates, except those of a state re-initialised by design
        # (sam's adversarial optimizer at the end of each cycle), which restart from 0.
        assert all(v == INT32_MAX or v <= 2 for v in values), values
        if case.id != "sam":
            assert all(v == INT32_MAX for v in values), values


# --------------------------------------------------------------------------- mixed dtypes


@pytest.mark.parametrize("mix", ["bf16_params_f32_grads", "f32_params_bf16_grads"])
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_mixed_dtypes_under_scan_keep_the_carry_type(case, mix):
    p_dtype, g_dtype = (
        (jnp.bfloat16, jnp.float32)
        if mix == "bf16_params_f32_grads"
        else (jnp.float32, jnp.bfloat16)
    )
    tx = case.make()
    params = _params(p_dtype)

    def body(carry, i):
        p, s = carry
        g = jax.tree.map(
            lambda x: (jnp.sin(x.astype(jnp.float32) * (i + 1)) + 0.1).astype(g_dtype), p
        )
        u, s = tx.update(g, s, p)
        return (ol.apply_updates(p, u), s), jax.tree.map(lambda x: x.dtype == g_dtype, u)

    (p, s), _ = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(4.0)))(
        params, tx.init(params)
    )
    assert all(x.dtype == p_dtype for x in jax.tree.leaves(p))
    assert _finite(p) and _finite(s)


# --------------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.lr_name], ids=case_ids([c for c in CASES if c.lr_name])
)
def test_hyperparameter_value_types_do_not_recompile(case):
    tx, step = _compiled(case.id)
    params = _params()
    grads = _grads(params, 0)
    state = tx.init(params)
    u0, state = step(grads, state, params)
    size = step._cache_size()
    hp = ol.hyperparams(state)
    scheduled = problems.scheduled_names(state)
    settable = [n for n in hp if n.split("/")[-1] not in scheduled]
    if case.lr_name in scheduled:  # recomputed at every step: setting it is refused
        with pytest.raises(ValueError, match="follows a schedule"):
            ol.set_hyperparams(state, **{case.lr_name: 0.1})
        if not settable:
            return
    # The learning rate, or (when it follows a schedule) another value.
    name = case.lr_name if case.lr_name not in scheduled else settable[0].split("/")[-1]
    names = [n for n in hp if n.split("/")[-1] == name]
    value = float(hp[names[0]])
    forms = [
        value,
        np.float32(value),
        np.float64(value),
        jnp.asarray(value, jnp.bfloat16),
        np.asarray(value),
        jnp.asarray(value, jnp.float16),
    ]
    for form in forms:
        new = ol.set_hyperparams(state, **{name: form})
        assert jax.tree.structure(new) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
            assert a.dtype == b.dtype and not getattr(a, "weak_type", False)
        u, _ = step(grads, new, params)
        assert [x.dtype for x in jax.tree.leaves(u)] == [x.dtype for x in jax.tree.leaves(u0)]
    # Every hyperparameter at once, given as NumPy scalars of the other precision.
    wide = {n.split("/")[-1]: np.float64(v) for n, v in hp.items() if n in settable}
    step(grads, ol.set_hyperparams(state, **wide), params)
    assert step._cache_size() == size, "a hyperparameter's input type caused a recompile"
