"""Masks and label trees: nested masks, sequence label trees, Equinox-shaped masks (as optax)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol

eqx = pytest.importorskip("equinox")


def _params():
    return {"l1": jnp.array([1.0, -2.0]), "l2": jnp.array([0.5, 3.0]), "l3": jnp.array([-1.0])}


def _steps(tx, params, n=3):
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    outs = []
    for k in range(n):
        grads = jax.tree.map(lambda p, k=k: 0.3 * p + 0.1 * (k + 1), params)
        updates, state = step(grads, state, params)
        params = ol.apply_updates(params, updates)
        outs.append(updates)
    return outs


def _assert_same(a, b, rtol=1e-6, atol=0.0):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def _outer(p):
    return {"l1": True, "l2": True, "l3": False}


def test_nested_masked_matches_optax():
    inner = {"l1": True, "l2": False, "l3": True}
    ours = ol.masked(ol.masked(ol.sgd(1.0, momentum=0.5), inner), _outer)
    ref = optax.masked(optax.masked(optax.sgd(1.0, momentum=0.5), inner), _outer)
    _assert_same(_steps(ours, _params()), _steps(ref, _params()))
    updates = _steps(ours, _params(), 1)[0]  # only l1 is in both masks
    np.testing.assert_array_equal(updates["l2"], 0.3 * _params()["l2"] + 0.1)


def test_nested_masked_on_nested_params_and_inside_partition():
    params = {"a": {"w": jnp.ones(2), "b": jnp.ones(1)}, "c": jnp.ones(3)}
    inner = {"a": {"w": False, "b": True}, "c": True}
    ours = ol.masked(ol.masked(ol.scale(-2.0), inner), ["a"])
    ref = optax.masked(optax.masked(optax.scale(-2.0), inner), {"a": True, "c": False})
    _assert_same(_steps(ours, params), _steps(ref, params))
    grouped = ol.partition(
        {"x": ol.masked(ol.scale(-2.0), inner), "y": ol.identity()}, {"a": "x", "c": "y"}
    )
    _assert_same(_steps(grouped, params), _steps(ref, params))


def test_nested_mask_naming_an_unknown_leaf_is_refused():
    tx = ol.masked(
        ol.masked(ol.sgd(1.0), {"l1": True, "l2": False, "l3": True, "l4": True}), _outer
    )
    with pytest.raises(ValueError, match=r"masked: .*\['l4'\] match no leaf"):
        tx.init(_params())


@pytest.mark.parametrize("container", [tuple, list])
def test_partition_sequence_label_tree_of_strings(container):
    params = container([{"u": jnp.ones(2)}, {"v": jnp.array([2.0])}])
    labels = container(["fast", "slow"])
    ours = ol.partition({"fast": ol.sgd(0.5), "slow": ol.sgd(0.1)}, labels)
    ref = optax.partition({"fast": optax.sgd(0.5), "slow": optax.sgd(0.1)}, labels)
    _assert_same(_steps(ours, params), _steps(ref, params))


def test_partition_label_tree_with_glob_like_keys():
    params = {"w*": jnp.ones(2), "b": jnp.ones(1)}  # a key that looks like a pattern
    labels = {"w*": "fast", "b": "slow"}
    ours = ol.partition({"fast": ol.sgd(0.5), "slow": ol.sgd(0.1)}, labels)
    ref = optax.partition({"fast": optax.sgd(0.5), "slow": optax.sgd(0.1)}, labels)
    _assert_same(_steps(ours, params), _steps(ref, params))


def _mlp():
    model = eqx.nn.MLP(3, 2, 4, 1, key=jax.random.key(0))
    params = eqx.filter(model, eqx.is_array)
    return params, jax.tree.map(lambda x: x.ndim > 1, params)  # decay/train weights only


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda m: ol.masked(ol.sgd(0.1), m), lambda m: optax.masked(optax.sgd(0.1), m)),
        (
            lambda m: ol.adamw(0.1, weight_decay=0.5, mask=m),
            lambda m: optax.adamw(0.1, weight_decay=0.5, mask=m),
        ),
        (lambda m: ol.freeze(m), lambda m: optax.masked(optax.set_to_zero(), m)),
        (
            lambda m: ol.lamb(0.1, weight_decay=0.5, mask=m),
            lambda m: optax.lamb(0.1, weight_decay=0.5, mask=m),
        ),
    ],
    ids=["masked", "adamw", "freeze", "lamb"],
)
def test_equinox_shaped_mask_is_a_tree(ours, ref):
    params, mask = _mlp()
    assert callable(mask)  # an eqx.Module is callable, yet this is a mask
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        expected = _steps(ref(mask), params)
    # adamw and lamb form the Adam step in torch's order (bias corrections applied
    # separately, eps after the corrected root): a few float32 ulps from optax's, so
    # an absolute term covers entries near zero where ulps cancel.
    _assert_same(_steps(ours(mask), params), expected, rtol=5e-5, atol=1e-6)


def test_equinox_shaped_label_tree():
    params, mask = _mlp()
    labels = jax.tree.map(lambda m: "w" if m else "b", mask)
    ours = ol.partition({"w": ol.sgd(0.5), "b": ol.sgd(0.1)}, labels)
    # optax.partition would call the label module; it takes a function returning it.
    ref = optax.partition({"w": optax.sgd(0.5), "b": optax.sgd(0.1)}, lambda _: labels)
    _assert_same(_steps(ours, params), _steps(ref, params))


def test_callable_masks_are_still_called():
    params = _params()
    by_fn = ol.masked(ol.scale(-1.0), lambda p: jax.tree.map(lambda x: x.shape[0] > 1, p))
    by_tree = ol.masked(ol.scale(-1.0), {"l1": True, "l2": True, "l3": False})
    _assert_same(_steps(by_fn, params), _steps(by_tree, params))
    labels = ol.partition(
        {"a": ol.scale(-1.0), "b": ol.identity()}, lambda path, leaf: "a" if path != "l3" else "b"
    )
    _assert_same(_steps(labels, params), _steps(by_tree, params))


def test_equinox_shaped_galore_dimension_numbers_are_a_tree():
    params, mask = _mlp()
    dims = jax.tree.map(lambda m: ol.GaLoreDimensionNumbers() if m else None, mask)
    assert callable(dims)
    as_tree = ol.galore(0.1, rank=1, weight_dimension_numbers=dims)
    as_fn = ol.galore(0.1, rank=1, weight_dimension_numbers=lambda p: dims)
    _assert_same(_steps(as_tree, params), _steps(as_fn, params))
