"""Leaves that are not float arrays: Python numbers, and integer gradients through a chain.

Python numbers are leaves JAX accepts (``jnp.zeros_like(1.5)``), so every optimizer
reads them as the arrays JAX makes of them. Integer gradients are cast to the
parameters' floating dtype by an alias (``_core/_grads.py``); a chain does the same
before its first transformation, so a clipping primitive in front of an alias does not
round them to zero first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids


def _run(tx, grads, params):
    state = tx.init(params)
    return tx.update(grads, state, params)[0]


def _assert_same(ours, expected):
    assert jax.tree.structure(ours) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True):
        assert jnp.asarray(a).dtype == jnp.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the same operations


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_python_numbers_are_read_as_arrays(case):
    params = {"d": 1.5, "e": -0.5}
    grads = {"d": 0.25, "e": -1.0}
    as_arrays = lambda tree: jax.tree.map(jnp.asarray, tree)
    expected = _run(case.make(), as_arrays(grads), as_arrays(params))
    _assert_same(_run(case.make(), grads, params), expected)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_integer_gradients_through_a_chain_are_cast_first(case):
    params = problems.quadratic_params()
    ints = {
        "a": jnp.array([1, -2, 3], jnp.int32),
        "b": {"c": jnp.array([[1, 0], [2, -1]], jnp.int32)},
        "d": jnp.array(2, jnp.int32),
    }
    # A threshold above the gradients' norm: clipping multiplies by one.
    make = lambda: ol.chain(ol.clip_by_global_norm(100.0), case.make())
    expected = _run(make(), jax.tree.map(lambda g: g.astype(jnp.float32), ints), params)
    _assert_same(_run(make(), ints, params), expected)
