"""Orbax's StandardCheckpointer round-trips optimlab states bitwise, given the abstract state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES

ocp = pytest.importorskip("orbax.checkpoint", reason="orbax-checkpoint is in the test extra")

# Several state shapes: hyperparameters only, moments in bf16, a wrapper around an
# alias, param copies, factored statistics, param groups and a flat history.
IDS = (
    "sgd",
    "adam_bf16_moments",
    "adam_amsgrad_wd",
    "lookahead_adam",
    "skip_nonfinite_sgd",
    "adafactor_momentum_wd",
    "partition_two_groups",
    "lbfgs_single",
    "muon",
)
SELECTED = [c for c in CASES if c.id in IDS]


def _bits(x):
    x = np.asarray(x)
    return np.atleast_1d(x).view(np.uint8)


@pytest.fixture(scope="module")
def checkpointer():
    with ocp.StandardCheckpointer() as ck:
        yield ck


def test_the_selection_exists():
    assert sorted(c.id for c in SELECTED) == sorted(IDS)


@pytest.mark.parametrize("case", SELECTED, ids=[c.id for c in SELECTED])
def test_standard_checkpointer_round_trip_is_bitwise(case, checkpointer, tmp_path):
    tx = case.make()
    params = problems.quadratic_params()
    state = tx.init(params)
    step = jax.jit(tx.update)
    for i in range(3):
        grads = jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)), params)
        updates, state = step(grads, state, params)
        params = ol.apply_updates(params, updates)
    checkpointer.save(tmp_path / "state", state)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "state", jax.eval_shape(tx.init, params))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(_bits(a), _bits(b))
    # Training continues identically from the restored state.
    grads = jax.tree.map(jnp.cos, params)
    u1, s1 = step(grads, state, params)
    u2, s2 = step(grads, restored, params)
    for a, b in zip(jax.tree.leaves((u1, s1)), jax.tree.leaves((u2, s2)), strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b))
