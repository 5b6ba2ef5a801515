"""Orbax's ``CheckpointManager`` over params and optimizer state, as docs/frameworks.md shows.

A run saves every step (keeping the last two), changes its learning rate through the
state mid-run, restores the latest step into the abstract state and continues: the
continuation is bitwise the uninterrupted run's. A vmapped population of optimizer
states (one learning rate per member) goes through the same manager.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab

from ._util import assert_bitwise_equal

ocp = pytest.importorskip("orbax.checkpoint")

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.normal(size=(16, 3)), jnp.float32)
Y = jnp.asarray(RNG.normal(size=(16, 1)), jnp.float32)


def _tx():
    return optimlab.chain(optimlab.clip_by_global_norm(1.0), optimlab.adamw(1e-2))


def _params():
    return {"w": jnp.zeros(3), "b": jnp.zeros(())}


TX = _tx()


@jax.jit
def step(params, opt_state, x, y):
    grads = jax.grad(lambda p: jnp.mean((x @ p["w"] + p["b"] - y[:, 0]) ** 2))(params)
    updates, opt_state = TX.update(grads, opt_state, params)
    return optimlab.apply_updates(params, updates), opt_state


def _train(params, opt_state, steps, manager=None, first=0):
    for i in range(first, first + steps):
        params, opt_state = step(params, opt_state, X, Y)
        if manager is not None:
            state = {"params": params, "opt_state": opt_state}
            manager.save(i, args=ocp.args.StandardSave(state))
    return params, opt_state


def test_save_change_the_learning_rate_restore_and_continue_bitwise(tmp_path):
    params, opt_state = _params(), TX.init(_params())
    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        params, opt_state = _train(params, opt_state, 3, manager)
        # Read the learning rate from the state, then change it.
        assert float(optimlab.hyperparams(opt_state)["learning_rate"]) == pytest.approx(1e-2)
        opt_state = optimlab.set_hyperparams(opt_state, learning_rate=5e-3)
        assert float(optimlab.hyperparams(opt_state)["learning_rate"]) == pytest.approx(5e-3)
        params, opt_state = _train(params, opt_state, 2, manager, first=3)
        manager.wait_until_finished()
        assert sorted(manager.all_steps()) == [3, 4]  # max_to_keep
        abstract = jax.eval_shape(lambda: {"params": params, "opt_state": opt_state})
        restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
    assert_bitwise_equal(restored, {"params": params, "opt_state": opt_state})
    # The changed learning rate came back with the state.
    assert float(optimlab.hyperparams(restored["opt_state"])["learning_rate"]) == pytest.approx(
        5e-3
    )
    uninterrupted = _train(params, opt_state, 4)
    resumed = _train(restored["params"], restored["opt_state"], 1)
    # Orbax restores committed arrays, which jit keys apart from the uncommitted
    # ones it returned: one more compilation, then none while training continues.
    compiled = step._cache_size()
    resumed = _train(*resumed, 3)
    assert step._cache_size() == compiled
    assert_bitwise_equal(resumed, uninterrupted)


def test_a_vmapped_population_goes_through_the_manager(tmp_path):
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    tx = optimlab.adamw(1e-2)
    population = jax.vmap(lambda _: _params())(lrs)
    states = jax.vmap(tx.init)(population)
    states = optimlab.set_hyperparams(states, learning_rate=lrs)

    @jax.jit
    def pop_step(params, states):
        def one(p, s):
            g = jax.grad(lambda q: jnp.mean((X @ q["w"] + q["b"] - Y[:, 0]) ** 2))(p)
            u, s = tx.update(g, s, p)
            return optimlab.apply_updates(p, u), s

        return jax.vmap(one)(params, states)

    for _ in range(3):
        population, states = pop_step(population, states)
    with ocp.CheckpointManager(tmp_path / "pop") as manager:
        manager.save(3, args=ocp.args.StandardSave({"params": population, "opt": states}))
        manager.wait_until_finished()
        abstract = jax.eval_shape(lambda: {"params": population, "opt": states})
        restored = manager.restore(3, args=ocp.args.StandardRestore(abstract))
    np.testing.assert_array_equal(optimlab.hyperparams(restored["opt"])["learning_rate"], lrs)
    a = pop_step(population, states)
    b = pop_step(restored["params"], restored["opt"])
    assert_bitwise_equal(b, a)
    # Each member trained at its own rate: the parameters differ across the population.
    assert len({float(w) for w in population["b"]}) == 3
