"""Flax NNX, as docs/frameworks.md tells a user: nnx.Optimizer, nnx.jit, Orbax, populations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab

from ._util import assert_bitwise_equal

nnx = pytest.importorskip("flax.nnx")
ocp = pytest.importorskip("orbax.checkpoint")

X = jnp.linspace(-1.0, 1.0, 24).reshape(8, 3)
Y = jnp.sin(X[:, :1] * 3.0)


class Model(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 8, use_bias=False, rngs=rngs)  # BatchNorm follows
        self.bn = nnx.BatchNorm(8, rngs=rngs)  # batch statistics: state that is not a Param
        self.head = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.head(jax.nn.relu(self.bn(self.linear(x))))


class Linear(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x):
        return self.linear(x)


def _setup(cls=Model):
    model = cls(nnx.Rngs(0))
    return model, nnx.Optimizer(model, optimlab.adamw(1e-2), wrt=nnx.Param)


def _lr(optimizer):
    return float(optimlab.hyperparams(optimizer.opt_state)["learning_rate"])


def _train_step():
    traces = []

    @nnx.jit
    def train_step(model, optimizer, x, y):
        traces.append(1)
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    return train_step, traces


def test_set_hyperparams_on_the_optimizer_state_then_update():
    model, optimizer = _setup(Linear)  # small: this test runs eagerly, op by op
    grads = nnx.grad(lambda m: jnp.mean((m(X) - Y) ** 2))(model)
    optimizer.update(model, grads)
    optimizer.opt_state = optimlab.set_hyperparams(optimizer.opt_state, learning_rate=1e-4)
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    grads = nnx.grad(lambda m: jnp.mean((m(X) - Y) ** 2))(model)
    optimizer.update(model, grads)  # eager, outside any jit
    assert _lr(optimizer) == pytest.approx(1e-4)
    step = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), nnx.state(model, nnx.Param), before)
    assert 0 < max(float(s) for s in jax.tree.leaves(step)) <= 1.5e-4  # Adam moves by ~lr


def test_learning_rate_changes_mid_training_without_retracing():
    model, optimizer = _setup()
    ref_model, ref_optimizer = _setup()
    train_step, traces = _train_step()
    ref_train_step, ref_traces = _train_step()  # NNX traces again for other objects
    for i in range(6):
        if i == 3:
            optimizer.opt_state = optimlab.set_hyperparams(optimizer.opt_state, learning_rate=1e-3)
        train_step(model, optimizer, X, Y)
    assert len(traces) == 1
    assert _lr(optimizer) == pytest.approx(1e-3)

    # The same run with the value changed inside a jitted function of the optimizer.
    @nnx.jit
    def set_lr(optimizer, lr):
        optimizer.opt_state = optimlab.set_hyperparams(optimizer.opt_state, learning_rate=lr)

    for i in range(6):
        if i == 3:
            set_lr(ref_optimizer, jnp.float32(1e-3))
        ref_train_step(ref_model, ref_optimizer, X, Y)
    assert len(ref_traces) == 1
    assert_bitwise_equal(nnx.state((model, optimizer)), nnx.state((ref_model, ref_optimizer)))


def test_split_merge_and_state_round_trips_keep_training_identical():
    model, optimizer = _setup()
    train_step, _ = _train_step()
    train_step(model, optimizer, X, Y)
    optimizer.opt_state = optimlab.set_hyperparams(optimizer.opt_state, learning_rate=3e-3)
    graphdef, state = nnx.split((model, optimizer))
    model2, optimizer2 = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
    assert _lr(optimizer2) == pytest.approx(3e-3)
    # nnx.state / nnx.update round trip through a pure copy of the state.
    model3, optimizer3 = _setup()
    nnx.update((model3, optimizer3), jax.tree.map(jnp.copy, nnx.state((model, optimizer))))
    for m, o in ((model, optimizer), (model2, optimizer2), (model3, optimizer3)):
        for _ in range(2):
            train_step(m, o, X, Y)
    assert_bitwise_equal(nnx.state((model, optimizer)), nnx.state((model2, optimizer2)))
    assert_bitwise_equal(nnx.state((model, optimizer)), nnx.state((model3, optimizer3)))


def test_orbax_checkpoint_mid_run_continues_bitwise(tmp_path):
    train_step, _ = _train_step()
    model, optimizer = _setup()
    for i in range(5):
        if i == 2:
            optimizer.opt_state = optimlab.set_hyperparams(optimizer.opt_state, learning_rate=5e-3)
        train_step(model, optimizer, X, Y)

    model2, optimizer2 = _setup()
    for i in range(3):
        if i == 2:
            optimizer2.opt_state = optimlab.set_hyperparams(
                optimizer2.opt_state, learning_rate=5e-3
            )
        train_step(model2, optimizer2, X, Y)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "nnx", nnx.state((model2, optimizer2)))
        ckpt.wait_until_finished()
        model3, optimizer3 = _setup()  # a fresh process: new objects, initial values
        restored = ckpt.restore(tmp_path / "nnx", nnx.state((model3, optimizer3)))
    nnx.update((model3, optimizer3), restored)
    assert _lr(optimizer3) == pytest.approx(5e-3)
    for _ in range(2):
        train_step(model3, optimizer3, X, Y)
    assert_bitwise_equal(nnx.state((model, optimizer)), nnx.state((model3, optimizer3)))


def test_vmapped_population_matches_each_member_trained_alone():
    # A linear model: Adam's first steps are sign(g) * lr, so a network with gradients
    # near zero (a bias before BatchNorm) would amplify the rounding of batched matmuls.
    model, optimizer = _setup(Linear)
    train_step, _ = _train_step()
    graphdef, state = nnx.split((model, optimizer))

    @jax.jit
    @jax.vmap
    def population_step(state, learning_rate):
        model, optimizer = nnx.merge(graphdef, state)
        optimizer.opt_state = optimlab.set_hyperparams(
            optimizer.opt_state, learning_rate=learning_rate
        )
        loss = train_step(model, optimizer, X, Y)
        return nnx.state((model, optimizer)), loss

    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    states = jax.tree.map(lambda a: jnp.stack([a] * 3), state)
    for _ in range(3):
        states, losses = population_step(states, lrs)
    for k, lr in enumerate(lrs):
        member_model, member_optimizer = _setup(Linear)
        member_optimizer.opt_state = optimlab.set_hyperparams(
            member_optimizer.opt_state, learning_rate=lr
        )
        for _ in range(3):
            loss = train_step(member_model, member_optimizer, X, Y)
        member = jax.tree.map(lambda a, k=k: a[k], states)
        np.testing.assert_allclose(loss, losses[k], rtol=1e-5)
        alone = nnx.state((member_model, member_optimizer))
        for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)  # vmap batches the matmuls
