"""set_hyperparams on states whose leaves a framework keeps in boxes (as Flax NNX does)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Box:
    """A mutable one-leaf node, like an ``nnx.Variable`` around each state leaf."""

    value: jax.Array


def _is_box(x):
    return isinstance(x, Box)


def test_set_hyperparams_keeps_the_box_around_the_packed_array():
    tx = ol.adamw(1e-3)
    state = jax.tree.map(Box, tx.init({"w": jnp.ones(3)}))
    new = ol.set_hyperparams(state, learning_rate=1e-4)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert isinstance(new.hyperparams.packed, Box)
    np.testing.assert_allclose(ol.hyperparams(new)["learning_rate"], 1e-4, rtol=1e-7)
    np.testing.assert_allclose(ol.hyperparams(state)["learning_rate"], 1e-3, rtol=1e-7)
    # The framework writes the new values back box by box, as nnx.update does.
    for old_box, new_box in zip(
        jax.tree.leaves(state, is_leaf=_is_box), jax.tree.leaves(new, is_leaf=_is_box), strict=True
    ):
        old_box.value = new_box.value
    np.testing.assert_allclose(ol.hyperparams(state)["learning_rate"], 1e-4, rtol=1e-7)


def test_set_hyperparams_on_boxed_population_and_groups():
    tx = ol.chain(ol.sgd(0.1), ol.adam(1e-2))
    states = jax.vmap(lambda _: tx.init({"w": jnp.ones(2)}))(jnp.arange(3))
    boxed = jax.tree.map(Box, states)
    new = ol.set_hyperparams(boxed, group="1", learning_rate=np.array([1.0, 2.0, 3.0]))
    assert jax.tree.structure(new) == jax.tree.structure(boxed)
    hp = ol.hyperparams(new)
    np.testing.assert_allclose(hp["1/learning_rate"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(hp["0/learning_rate"], [0.1] * 3, rtol=1e-7)
