"""Aliases built once, reading their hyperparameters through references bound at each call.

``torch_style`` aliases (adam, adamw, nadam, radam, adamax, yogi, lion...) build
their chain once, with :class:`~optimlab._core._binding.Ref` references that ``init`` and
``update`` bind to the state's values; other aliases rebuild it from the values
at each trace. Both forms must give the same program: every registry case is
traced both ways and the jaxprs compared (or, where the equations come in
another order, two jitted steps compared bitwise).
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from benchmarks.trace_calls import count
from optimlab._core import _hyperparams
from optimlab._core._binding import Bindings, Ref, Unbound
from tests.registry import CASES, case_ids


def _params():
    return {"a": jnp.linspace(-1.0, 1.0, 15).reshape(5, 3), "c": jnp.arange(4.0) * 0.3 + 0.1}


def _grads(p, k):
    return jax.tree.map(lambda x: jnp.sin(x * (k + 1.3)) + 0.1, p)


def _build(case, once, monkeypatch):
    monkeypatch.setattr(_hyperparams, "BUILD_ONCE", once)
    return case.make()


def _run(tx, case):
    p = _params()
    s = tx.init(p)
    out = []
    step = jax.jit(
        lambda g, s, p: tx.update(g, s, p, **(case.extra_args(p) if case.extra_args else {}))
    )
    for k in range(2):
        u, s = step(_grads(p, k), s, p)
        p = ol.apply_updates(p, u)
        out.append(
            [
                np.asarray(x)
                for x in jax.tree.leaves((p, s))
                if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
            ]
        )
    return out


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_built_once_is_the_rebuilt_program(case, monkeypatch):
    once, rebuilt = _build(case, True, monkeypatch), _build(case, False, monkeypatch)
    p = _params()
    extra = case.extra_args(p) if case.extra_args else {}
    jaxprs = [
        str(jax.make_jaxpr(lambda g, s, p, tx=tx: tx.update(g, s, p, **extra))(p, tx.init(p), p))
        for tx in (once, rebuilt)
    ]
    if jaxprs[0] == jaxprs[1]:
        return
    # The same operations in another order (a value computed while building): the
    # numbers must still be bitwise equal.
    for a, b in zip(_run(once, case), _run(rebuilt, case), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_a_build_reading_a_value_is_called_at_each_trace():
    calls = []

    def build(step, h):
        calls.append(step)
        lr = jnp.asarray(h["learning_rate"])  # read while building: no references
        return ol.scale(-lr)

    tx = _hyperparams.build_hyperparams(build, {"learning_rate": 0.5}, once=True)
    state = tx.init(jnp.ones(2))
    u, _ = jax.jit(tx.update)(jnp.ones(2), state)
    np.testing.assert_array_equal(u, [-0.5, -0.5])
    assert not any(isinstance(c, Ref) for c in calls[1:])


def test_a_reference_read_outside_its_update_says_so():
    tx = ol.adam(0.1)
    state = tx.init(jnp.ones(2))
    with pytest.raises(Unbound, match="'b1' was read outside its optimizer's update"):
        Ref("b1", Bindings()).value()
    # and the optimizer still runs, its references unbound again afterwards
    tx.update(jnp.ones(2), state)


def test_set_hyperparams_and_schedules_reach_a_built_once_alias():
    tx = ol.adamw(lambda t: 0.1 / (1.0 + t.astype(jnp.float32)), weight_decay=0.0)
    p = jnp.ones(3)
    state = ol.set_hyperparams(tx.init(p), weight_decay=0.5)
    u, state = jax.jit(tx.update)(jnp.zeros(3), state, p)
    # zero gradient: only the decay term, scaled by the schedule's first value
    np.testing.assert_allclose(u, -0.1 * 0.5 * np.ones(3), rtol=1e-6)
    u, _ = jax.jit(tx.update)(jnp.zeros(3), state, p)
    np.testing.assert_allclose(u, -0.05 * 0.5 * np.ones(3), rtol=1e-6)


def test_vmap_over_a_built_once_alias():
    tx = ol.adam(0.1)
    p = jnp.ones(2)
    states = jax.vmap(lambda lr: ol.set_hyperparams(tx.init(p), learning_rate=lr))(
        jnp.array([0.1, 0.2])
    )
    u, _ = jax.vmap(lambda s: tx.update(jnp.ones(2), s, p))(states)
    np.testing.assert_allclose(u[:, 0], [-0.1, -0.2], rtol=1e-5)


def test_two_threads_trace_one_alias():
    tx = ol.adam(0.1)
    p = jnp.ones(4)
    state = tx.init(p)
    results, errors = [], []

    def trace():
        try:
            results.append(jax.jit(lambda g, s: tx.update(g, s)[0]).lower(p, state).as_text())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=trace) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1


def test_tracing_adamw_makes_few_python_calls():
    # Deterministic counts, not time: a traced step runs the built transformation
    # (no rebuild) and maps every leaf without a Python frame of its own besides
    # the rule's. 45 is the budget for one leaf; each further leaf stays near
    # optax's dozen.
    one, ten = count(ol.adamw(1e-3), "optimlab")[0], count(ol.adamw(1e-3), "optimlab", 10)[0]
    assert one <= 45, one
    assert (ten - one) / 9 <= 20, (one, ten)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_initial_hyperparams_are_what_init_stores(case):
    # Declared by the builder, read without initialising anything: optimlab.optim
    # learns an alias's names this way.
    tx = case.make()
    declared = _hyperparams.initial_hyperparams(tx)
    state = tx.init(_params())
    if not isinstance(state, ol.HyperparamsState):
        assert declared is None
        return
    if declared is None:
        # The registry wraps a few aliases in a test helper that passes ``value=`` (or a
        # Hessian estimate).
        assert {"_with_value", "_with_hessian"} & set(case.make.__code__.co_names), case.id
        return
    assert declared.names == state.hyperparams.names
    np.testing.assert_array_equal(declared.packed, state.hyperparams.packed)
