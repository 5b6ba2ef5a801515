"""`opt.params` takes the structure the parameter names spell, however the pairs were made."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import optim


def _tree():
    return {
        "weight": jnp.ones((3, 2)),
        "bias": jnp.zeros(2),
        "enc": {"layers": [{"w": jnp.full(2, 0.5)}, {"w": jnp.full(2, 2.0)}]},
    }


def _loss(p, x):
    h = x @ p["weight"] + p["bias"]
    for layer in p["enc"]["layers"]:
        h = h * layer["w"]
    return jnp.sum(h**2)


def _groups(pairs):
    return [
        {"params": [(n, x) for n, x in pairs if n.startswith("enc")], "lr": 0.01},
        {"params": [(n, x) for n, x in pairs if not n.startswith("enc")]},
    ]


def test_literal_pairs_give_the_tree_named_parameters_gives():
    x = jnp.arange(6.0).reshape(2, 3) / 6
    sourced = optim.Adam(_groups(list(optim.named_parameters(_tree()))), lr=0.1)
    literal_pairs = [(str(n), a) for n, a in optim.named_parameters(_tree())]
    assert all(type(n) is str for n, _ in literal_pairs)
    literal = optim.Adam(_groups(literal_pairs), lr=0.1)
    assert jax.tree.structure(literal.params) == jax.tree.structure(_tree())
    for _ in range(3):
        for opt in (sourced, literal):
            opt.zero_grad()
            opt.backward(_loss, x)  # the loss is written for the tree
            opt.step()
    assert jax.tree.structure(literal.grads) == jax.tree.structure(_tree())
    for a, b in zip(jax.tree.leaves(sourced.params), jax.tree.leaves(literal.params), strict=True):
        np.testing.assert_array_equal(a, b)
    # Gradients given by hand take the same structure.
    grads = jax.tree.map(jnp.ones_like, literal.params)
    before = literal.params["enc"]["layers"][1]["w"]
    literal.step(grads)
    assert not np.array_equal(literal.params["enc"]["layers"][1]["w"], before)


def test_hand_written_names_nest_and_number_lists():
    w, b = jnp.ones((2, 2)), jnp.zeros(2)
    opt = optim.SGD([("weight", w), ("bias", b)], lr=0.1)
    assert list(opt.params) == ["weight", "bias"]
    w1 = jnp.ones((2, 2))  # another array: one array in two groups is refused, as in torch
    opt = optim.SGD(
        [{"params": [("layers.0.w", w)]}, {"params": [("layers.1.w", w1), ("head", b)]}], lr=0.1
    )
    assert jax.tree.structure(opt.params) == jax.tree.structure(
        {"layers": [{"w": 0}, {"w": 0}], "head": 0}
    )
    opt.step({"layers": [{"w": jnp.ones((2, 2))}, None], "head": jnp.ones(2)})
    np.testing.assert_allclose(opt.params["layers"][0]["w"], 0.9)
    np.testing.assert_allclose(opt.params["layers"][1]["w"], 1.0)  # no gradient
    np.testing.assert_allclose(opt.params["head"], -0.1)


@pytest.mark.parametrize("names", [("a", "a.b"), ("a.b", "a"), ("a..b", "c")])
def test_names_that_spell_no_tree_give_one_dict_per_group(names):
    opt = optim.SGD(
        [{"params": [(names[0], jnp.ones(2))]}, {"params": [(names[1], jnp.ones(2))]}], lr=0.1
    )
    assert isinstance(opt.params, list)
    assert [list(g) for g in opt.params] == [[names[0]], [names[1]]]


def test_numbered_children_are_indexed_by_int_with_or_without_gaps():
    # torch's Sequential(Linear, Tanh, Linear) names its parameters 0.* and 2.*, and
    # Sequential(Linear, Flatten) only 0.*: both index as model[i], gaps or not.
    w0, b0, w2 = jnp.ones((2, 3)), jnp.zeros(2), jnp.ones((1, 2))
    gaps = optim.SGD([("0.weight", w0), ("0.bias", b0), ("2.weight", w2)], lr=0.1)
    assert jax.tree.structure(gaps.params) == jax.tree.structure(
        {0: {"weight": 0, "bias": 0}, 2: {"weight": 0}}
    )
    assert [n for n, _ in optim.named_parameters(gaps.params)] == [
        "0.bias",
        "0.weight",
        "2.weight",
    ]
    dense = optim.SGD([("0.weight", jnp.ones((2, 3))), ("0.bias", jnp.zeros(2))], lr=0.1)
    for opt in (gaps, dense):
        opt.zero_grad()
        opt.backward(lambda p: jnp.sum(p[0]["weight"]) + jnp.sum(p[0]["bias"]))
        opt.step()
        np.testing.assert_allclose(opt.params[0]["bias"], -0.1)
    np.testing.assert_allclose(gaps.params[2]["weight"], 1.0)  # no gradient reached it
