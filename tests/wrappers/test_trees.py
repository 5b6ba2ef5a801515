"""Every wrapper on ``{}``, on a tree of only ``None`` leaves and on a scalar param.

``init`` and a jitted ``update`` work and return the updates' structure (and
shapes and dtypes), as optax's counterparts do.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests.registry._wrappers_trees import TREE_CASES, TREES


def _structure(tree):
    return jax.tree.structure(tree, is_leaf=lambda x: x is None)


@pytest.mark.parametrize("tree_id", sorted(TREES))
@pytest.mark.parametrize(("case_id", "make"), TREE_CASES, ids=[c for c, _ in TREE_CASES])
def test_wrapper_on_unusual_tree(case_id, make, tree_id):
    params = TREES[tree_id]
    tx = make()
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    # Every update takes extra arguments and ignores those it does not use; the
    # metric is for reduce_on_plateau.
    step = jax.jit(lambda g, s, p: tx.update(g, s, p, value=jnp.float32(1.0)))
    state_def = jax.tree.structure(state)
    for _ in range(3):
        updates, state = step(grads, state, params)
        assert _structure(updates) == _structure(params), case_id
        jax.tree.map(
            lambda u, p: (u.shape, u.dtype) == (p.shape, p.dtype) or pytest.fail(case_id),
            updates,
            params,
        )
        assert jax.tree.structure(state) == state_def
    assert step._cache_size() == 1


_GROUPS = ("a", "b")


@pytest.mark.parametrize(
    ("params", "labels"),
    [
        ({}, {}),
        ({}, "a"),
        ((), ()),
        ({"x": None, "y": jnp.ones(1)}, {"x": None, "y": "a"}),
        ({"x": None, "y": jnp.ones(1)}, {"x": "b", "y": "a"}),
        ({"x": {}, "y": jnp.ones(1)}, {"x": {}, "y": "a"}),
        ({"x": {}, "y": jnp.ones(1)}, {"x": "b", "y": "a"}),
        ([None, None], ["a", "b"]),
        ((jnp.ones(1), {"u": jnp.ones(2)}), ("a", "b")),
        (jnp.array(2.0, jnp.float32), "b"),
    ],
)
def test_partition_label_trees_optax_accepts(params, labels):
    import optax

    ours = ol.partition({g: ol.sgd(0.1 * (i + 1)) for i, g in enumerate(_GROUPS)}, labels)
    ref = optax.partition({g: optax.sgd(0.1 * (i + 1)) for i, g in enumerate(_GROUPS)}, labels)
    got, _ = jax.jit(ours.update)(params, ours.init(params), params)
    expected, _ = jax.jit(ref.update)(params, ref.init(params), params)
    assert _structure(got) == _structure(expected)
    jax.tree.map(np.testing.assert_array_equal, got, expected)
