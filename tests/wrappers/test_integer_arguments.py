"""Counts given as NumPy integers are accepted and behave as Python ints; valid axes run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol

P = {"w": jnp.arange(6.0).reshape(3, 2), "b": jnp.ones(2)}


def _run(tx, steps=4):
    state = tx.init(P)
    out = []
    for i in range(steps):
        grads = jax.tree.map(lambda p, i=i: p * (i + 1), P)
        updates, state = tx.update(grads, state, P)
        out.append(updates)
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda n: ol.accumulate(ol.sgd(0.1, momentum=0.9), n),
        lambda n: ol.lookahead(ol.sgd(0.1), n, 0.5),
        lambda n: ol.skip_nonfinite(ol.sgd(0.1), n),
    ],
    ids=["accumulate", "lookahead", "skip_nonfinite"],
)
@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint8])
def test_a_numpy_integer_count_is_the_python_int(make, kind):
    want, got = _run(make(2)), _run(make(kind(2)))
    for a, b in zip(want, got, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("axis", [0, -1, np.int64(0), (0,), (0, -1), ()])
def test_adaptive_grad_clip_runs_with_an_axis_in_range_for_every_leaf(axis):
    params = {"w": jnp.ones((3, 2)), "v": jnp.ones((2, 4))}
    tx = ol.adaptive_grad_clip(0.1, axis=axis)
    updates, _ = jax.jit(tx.update)(params, tx.init(params), params)
    assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, params)


def test_adaptive_grad_clip_names_the_leaf_an_axis_is_out_of_range_for():
    params = {"w": jnp.ones((3, 2)), "v": jnp.ones(4)}
    tx = ol.adaptive_grad_clip(0.1, axis=(0, -2))
    with pytest.raises(ValueError, match=r"axis=\(0, -2\) is out of range for the leaf at \['v'\]"):
        tx.update(params, tx.init(params), params)
