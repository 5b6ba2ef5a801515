"""Param groups on real model libraries: Flax NNX and Equinox (integer and None leaves)."""

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol

eqx = __import__("pytest").importorskip("equinox")
nnx = __import__("pytest").importorskip("flax.nnx")


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.enc = nnx.Linear(3, 4, rngs=rngs)
        self.head = nnx.Linear(4, 1, rngs=rngs)
        self.calls = nnx.Variable(jnp.array(0, jnp.int32))  # an integer, not a Param

    def __call__(self, x):
        self.calls[...] += 1
        return self.head(jax.nn.relu(self.enc(x)))


def test_partition_with_flax_nnx_optimizer():
    model = _Net(nnx.Rngs(0))
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    tx = ol.partition(
        {"frozen": ol.set_to_zero(), "train": ol.sgd(0.1), "bias": ol.adam(1e-2)},
        {"**": "train", "enc": "frozen", "head/bias": "bias"},
    )
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jnp.ones((2, 3))

    @nnx.jit
    def train_step(model, optimizer):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        optimizer.update(model, grads)

    for _ in range(2):
        train_step(model, optimizer)
    after = nnx.state(model, nnx.Param)
    np.testing.assert_array_equal(after["enc"]["kernel"][...], before["enc"]["kernel"][...])
    np.testing.assert_array_equal(after["enc"]["bias"][...], before["enc"]["bias"][...])
    assert not np.allclose(after["head"]["kernel"][...], before["head"]["kernel"][...])
    assert not np.allclose(after["head"]["bias"][...], before["head"]["bias"][...])
    assert int(model.calls[...]) == 2
    hp = ol.hyperparams(optimizer.opt_state)
    assert set(hp) >= {"train/learning_rate", "bias/learning_rate"}


def test_partition_with_equinox_filter_and_partition():
    class Model(eqx.Module):
        mlp: eqx.nn.MLP
        scale: jax.Array
        steps: jax.Array  # an integer leaf
        name: str = "m"

    model = Model(
        eqx.nn.MLP(2, 1, 8, 1, key=jax.random.key(0)), jnp.array(1.0), jnp.array(0, jnp.int32)
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)  # None where not trained
    assert params.steps is None
    tx = ol.partition_overrides(
        ol.adamw,
        {"body": {}, "last": {"learning_rate": 1e-4}},
        {"**": "body", "mlp/layers/1": "last"},
        learning_rate=1e-2,
    )
    state = tx.init(params)
    x = jnp.ones((5, 2))

    @eqx.filter_jit
    def step(params, state):
        def loss(p):
            m = eqx.combine(p, static)
            return jnp.mean(jax.vmap(m.mlp)(x) ** 2) * m.scale

        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return eqx.apply_updates(params, updates), state

    new_params, state = step(params, state)
    # adamw's first step moves each weight with a gradient by about its group's lr
    # (weights of dead ReLU units only see the tiny decay).
    for layer, lr in ((1, 1e-4), (0, 1e-2)):
        moved = np.abs(
            np.asarray(new_params.mlp.layers[layer].weight - params.mlp.layers[layer].weight)
        )
        moved = moved[moved > lr / 10]
        assert moved.size > 0
        np.testing.assert_allclose(moved, lr, rtol=0.05)
    assert new_params.steps is None
    assert eqx.combine(new_params, static).steps.dtype == jnp.int32
    # eqx.filter picks the same leaves and gives the same state structure.
    filtered = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.structure(tx.init(filtered)) == jax.tree.structure(state)
