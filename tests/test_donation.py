"""Buffer donation: no state leaf shares a buffer with the params or another leaf.

``jax.jit(step, donate_argnums=(0, 1))`` donates the params and the state; a
state leaf that is the params' own buffer (or the same zeros twice) makes XLA
refuse with "Attempt to donate the same buffer twice".
"""

from __future__ import annotations

import jax
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids


def _shared_buffers(tree):
    seen, shared = {}, []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(leaf, jax.Array):
            name = jax.tree_util.keystr(path)
            ptr = leaf.unsafe_buffer_pointer()
            if ptr in seen:
                shared.append(f"{name} is {seen[ptr]}")
            seen.setdefault(ptr, name)
    return shared


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_init_gives_every_state_leaf_its_own_buffer(case):
    # Eager only, nothing compiled: cheap enough for every case.
    tx = case.make()
    params = problems.quadratic_params()
    state = tx.init(params)
    again = tx.init(params)  # a second init shares nothing with the first either
    assert _shared_buffers({"params": params, "state": state, "again": again}) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: ol.schedule_free_sgd(0.1),
        lambda: ol.schedule_free_adamw(0.1),
        lambda: ol.schedule_free(ol.sgd(0.1), 0.1),
        lambda: ol.dadapt_adamw(),
    ],
    ids=["schedule_free_sgd", "schedule_free_adamw", "schedule_free", "dadapt_adamw"],
)
def test_donated_step(make):
    tx = make()

    def step(params, state):
        grads = jax.grad(problems.quadratic_loss)(params)
        updates, state = tx.update(grads, state, params)
        return ol.apply_updates(params, updates), state

    params = problems.quadratic_params()
    state = tx.init(params)
    step = jax.jit(step, donate_argnums=(0, 1))
    for _ in range(2):
        params, state = step(params, state)
    assert all(not x.is_deleted() for x in jax.tree.leaves((params, state)))
