"""Equinox models with non-array leaves, as docs/frameworks.md tells a user."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab

from ._util import assert_bitwise_equal

eqx = pytest.importorskip("equinox")

X = jnp.linspace(-1.0, 1.0, 48).reshape(16, 3)
Y = jnp.sin(3.0 * X[:, :1]) + X[:, 1:2]


class Net(eqx.Module):
    mlp: Any  # an eqx.nn.MLP
    scale: jax.Array
    calls: jax.Array  # an integer array: not trained
    name: str = "net"  # a string leaf
    depth: int = 2  # a Python int leaf
    activation: Callable = jax.nn.tanh

    def __call__(self, x):
        return self.scale * self.activation(self.mlp(x))


def _net(key=0):
    mlp = eqx.nn.MLP(3, 1, width_size=16, depth=2, key=jax.random.key(key))
    return Net(mlp, jnp.ones(()), jnp.array(0, jnp.int32))


def _train_step(tx):
    traces = []

    @eqx.filter_jit
    def train_step(model, opt_state, x, y):
        traces.append(1)
        loss_fn = lambda m: jnp.mean((jax.vmap(m)(x) - y) ** 2)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return train_step, traces


def _lr(opt_state):
    return float(optimlab.hyperparams(opt_state)["learning_rate"])


def test_non_array_leaves_pass_through_and_lr_changes_without_retracing():
    tx = optimlab.adamw(1e-2)
    train_step, traces = _train_step(tx)
    model = _net()
    opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))
    losses = []
    for i in range(8):
        if i == 4:
            opt_state = optimlab.set_hyperparams(opt_state, learning_rate=1e-3)
        model, opt_state, loss = train_step(model, opt_state, X, Y)
        losses.append(float(loss))
    assert len(traces) == 1
    assert _lr(opt_state) == pytest.approx(1e-3)
    assert losses[-1] < losses[0]
    assert model.name == "net" and model.depth == 2 and model.activation is jax.nn.tanh
    assert model.calls.dtype == jnp.int32 and int(model.calls) == 0
    assert not np.array_equal(model.scale, 1.0)


def test_serialised_leaves_mid_run_continue_bitwise(tmp_path):
    tx = optimlab.chain(optimlab.clip_by_global_norm(1.0), optimlab.adamw(1e-2))
    train_step, _ = _train_step(tx)

    def run(model, opt_state, steps, start=0):
        for i in range(start, start + steps):
            if i == 2:
                opt_state = optimlab.set_hyperparams(opt_state, learning_rate=3e-3)
            model, opt_state, _ = train_step(model, opt_state, X, Y)
        return model, opt_state

    model = _net()
    fresh = (model, tx.init(eqx.filter(model, eqx.is_inexact_array)))
    straight = run(*fresh, 6)
    halfway = run(*fresh, 3)
    eqx.tree_serialise_leaves(tmp_path / "run.eqx", halfway)
    model = _net(key=7)  # a new process: other initial values, same structure
    like = (model, tx.init(eqx.filter(model, eqx.is_inexact_array)))
    resumed = eqx.tree_deserialise_leaves(tmp_path / "run.eqx", like)
    assert _lr(resumed[1]) == pytest.approx(3e-3)
    resumed = run(resumed[0], resumed[1], 3, start=3)
    assert_bitwise_equal(eqx.filter(resumed, eqx.is_array), eqx.filter(straight, eqx.is_array))


def test_filter_vmap_population_matches_each_member_trained_alone():
    tx = optimlab.adamw(1e-2)
    train_step, _ = _train_step(tx)
    keys = jnp.arange(3)
    models = eqx.filter_vmap(_net)(keys)
    opt_states = eqx.filter_vmap(tx.init)(eqx.filter(models, eqx.is_inexact_array))
    lrs = [1e-3, 1e-2, 1e-1]
    opt_states = optimlab.set_hyperparams(opt_states, learning_rate=jnp.array(lrs))
    population_step = eqx.filter_vmap(train_step, in_axes=(eqx.if_array(0), 0, None, None))
    for _ in range(3):
        models, opt_states, losses = population_step(models, opt_states, X, Y)
    for k, lr in enumerate(lrs):
        model = _net(k)
        opt_state = optimlab.set_hyperparams(
            tx.init(eqx.filter(model, eqx.is_inexact_array)), learning_rate=lr
        )
        for _ in range(3):
            model, opt_state, loss = train_step(model, opt_state, X, Y)
        np.testing.assert_allclose(losses[k], loss, rtol=1e-5)
        member = jax.tree.map(lambda a, k=k: a[k], eqx.filter((models, opt_states), eqx.is_array))
        alone = eqx.filter((model, opt_state), eqx.is_array)
        for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)  # vmap batches the matmuls
