"""Flax Linen with a ``TrainState`` and BatchNorm, as docs/frameworks.md tells a user."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab

from ._util import assert_bitwise_equal

nn = pytest.importorskip("flax.linen")
train_state = pytest.importorskip("flax.training.train_state")

X = jnp.linspace(-1.0, 1.0, 48).reshape(16, 3)
Y = jnp.sin(3.0 * X[:, :1]) + X[:, 1:2]


class MLP(nn.Module):
    norm: bool = True

    @nn.compact
    def __call__(self, x, train):
        x = nn.Dense(16, use_bias=not self.norm)(x)
        if self.norm:
            x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(1)(nn.relu(x))


class TrainState(train_state.TrainState):
    batch_stats: dict


def _create(norm=True, learning_rate=1e-2):
    model = MLP(norm)
    variables = model.init(jax.random.key(0), X, train=False)
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=optimlab.adamw(learning_rate),
        batch_stats=variables.get("batch_stats", {}),
    )


def _train_step():
    traces = []

    def train_step(state, x, y):
        traces.append(1)

        def loss_fn(params):
            out, updates = state.apply_fn(
                {"params": params, "batch_stats": state.batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.mean((out - y) ** 2), updates.get("batch_stats", {})

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return state.apply_gradients(grads=grads, batch_stats=batch_stats), loss

    return train_step, traces


def _arrays(s):
    return {
        "step": s.step,
        "params": s.params,
        "opt_state": s.opt_state,
        "batch_stats": s.batch_stats,
    }


def _lr(state):
    return float(optimlab.hyperparams(state.opt_state)["learning_rate"])


def test_learning_rate_changes_mid_training_without_retracing():
    train_step, traces = _train_step()
    step = jax.jit(train_step)
    state = _create()
    losses = []
    for i in range(8):
        if i == 4:
            assert _lr(state) == pytest.approx(1e-2)
            state = state.replace(
                opt_state=optimlab.set_hyperparams(state.opt_state, learning_rate=1e-3)
            )
        state, loss = step(state, X, Y)
        losses.append(float(loss))
    assert len(traces) == 1
    assert _lr(state) == pytest.approx(1e-3)
    assert losses[-1] < losses[0]
    assert not jax.tree.all(
        jax.tree.map(np.array_equal, state.batch_stats, _create().batch_stats)
    )  # BatchNorm's running statistics were updated beside the optimizer


def test_checkpoint_mid_run_continues_bitwise(tmp_path):
    step = jax.jit(_train_step()[0])
    state = _create()
    for i in range(6):
        if i == 2:
            state = state.replace(
                opt_state=optimlab.set_hyperparams(state.opt_state, learning_rate=3e-3)
            )
        state, _ = step(state, X, Y)

    interrupted = _create()
    for i in range(3):
        if i == 2:
            interrupted = interrupted.replace(
                opt_state=optimlab.set_hyperparams(interrupted.opt_state, learning_rate=3e-3)
            )
        interrupted, _ = step(interrupted, X, Y)
    optimlab.checkpoint.save(tmp_path / "train_state.npz", _arrays(interrupted))
    fresh = _create()  # a new process builds apply_fn and tx again
    resumed = fresh.replace(
        **optimlab.checkpoint.restore(tmp_path / "train_state.npz", jax.eval_shape(_arrays, fresh))
    )
    assert _lr(resumed) == pytest.approx(3e-3)
    assert int(resumed.step) == 3
    for _ in range(3):
        resumed, _ = step(resumed, X, Y)
    assert_bitwise_equal(_arrays(resumed), _arrays(state))  # apply_fn and tx are new objects


def test_vmapped_population_matches_each_member_trained_alone():
    step = _train_step()[0]
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    states = jax.tree.map(lambda a: jnp.stack([a] * 3), _create(norm=False))
    states = states.replace(opt_state=optimlab.set_hyperparams(states.opt_state, learning_rate=lrs))
    population_step = jax.jit(jax.vmap(step, in_axes=(0, None, None)))
    for _ in range(3):
        states, losses = population_step(states, X, Y)
    alone_step = jax.jit(step)
    for k, lr in enumerate([1e-3, 1e-2, 1e-1]):
        alone = _create(norm=False, learning_rate=lr)
        for _ in range(3):
            alone, loss = alone_step(alone, X, Y)
        np.testing.assert_allclose(losses[k], loss, rtol=1e-5)
        member = jax.tree.map(lambda a, k=k: a[k], states)
        for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)  # vmap batches the matmuls
