"""Every registered optimizer through the interop checks optax's own tests make.

- ``test_donated_step_and_optax_wrappers``: one jitted program per case that takes
  the params and three states donated (``donate_argnums``): the bare step, the
  step inside ``optax.chain`` and inside ``optax.MultiSteps``, each given the
  case's extra arguments from outside. The wrapped updates equal the bare ones,
  every state keeps its structure and dtypes, and a second call does not
  recompile.
- The mesh sweep (a second jitted call compiles nothing on an 8-device mesh with
  explicit axes) runs in a subprocess: see ``tests/layout/test_sharding_interop.py``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import optimlab as ol
from tests import problems
from tests.registry import CASES, case_ids


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [
        (np.shape(x), getattr(x, "dtype", None) or np.asarray(x).dtype) for x in leaves
    ]


@pytest.mark.slow  # about 2 s a case (three updates compiled together), 87 cases
@pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_donated_step_and_optax_wrappers(case):
    tx = case.make()
    in_chain = optax.chain(optax.identity(), tx)
    in_multisteps = optax.MultiSteps(tx, every_k_schedule=1)
    # optax recognises the update as one that takes extra args, and forwards them.
    assert optax.with_extra_args_support(tx) is tx

    def step(params, states):
        loss, grads = jax.value_and_grad(problems.quadratic_loss)(params)
        extra = case.extra_args(params) if case.extra_args else {}
        out = []
        for t, s in zip((tx, in_chain, in_multisteps), states, strict=True):
            updates, s = t.update(grads, s, params, **extra)
            out.append((updates, s))
        return ol.apply_updates(params, out[0][0]), tuple(out), loss

    jitted = jax.jit(step, donate_argnums=(0, 1))
    params = problems.quadratic_params()
    states = (tx.init(params), in_chain.init(params), in_multisteps.init(params))
    before = [_signature(s) for s in states]
    with jax.numpy_dtype_promotion("standard"):  # optax's wrappers rely on it
        for _ in range(2):
            # Eager init and donation: no state leaf may share a buffer with the params
            # or another leaf ("Attempt to donate the same buffer twice").
            params, out, _ = jitted(params, states)
            states = tuple(s for _, s in out)
            assert [_signature(s) for s in states] == before
            bare = out[0][0]
            for updates, _ in out[1:]:
                # The same arithmetic in another XLA fusion (MultiSteps divides its
                # one-gradient mean by 1): equal up to float32 rounding.
                jax.tree.map(
                    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9),
                    updates,
                    bare,
                )
    assert jitted._cache_size() == 1, "the second call recompiled"
