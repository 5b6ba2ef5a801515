"""``clip_by_global_norm`` on gradients that are not finite (``_transforms/_clipping.py``).

The documented behaviour: a NaN or Inf anywhere makes the norm non-finite and the
step is skipped (every update zero, not NaN). On many small leaves the factor is
computed once, apart from the leaves' kernels (``_core/_fusion.hoist``), and the
non-finite case travels as a NaN factor: both paths, eager and jitted, must agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab

BAD = [jnp.inf, -jnp.inf, jnp.nan]


def _trees(bad, dtype, n_leaves):
    good = {f"p{i}": jnp.full((3,), 0.5 + i, dtype) for i in range(n_leaves)}
    broken = dict(good)
    broken["p0"] = broken["p0"].at[1].set(bad)
    return good, broken


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("n_leaves", [1, 8], ids=["one_leaf", "hoisted"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.complex64])
@pytest.mark.parametrize("bad", BAD, ids=["inf", "-inf", "nan"])
def test_non_finite_norm_skips_the_step(bad, dtype, n_leaves, jit):
    tx = optimlab.clip_by_global_norm(1.0)
    good, broken = _trees(bad, dtype, n_leaves)
    update = jax.jit(tx.update) if jit else tx.update
    out, _ = update(broken, tx.init(good))
    for k, u in out.items():
        assert u.dtype == dtype, k
        np.testing.assert_array_equal(np.asarray(u), np.zeros(3, dtype), err_msg=k)


@pytest.mark.parametrize("n_leaves", [1, 8], ids=["one_leaf", "hoisted"])
def test_finite_norm_is_clipped_after_a_skipped_step(n_leaves):
    # The skip is per update: the next finite gradient is clipped as usual.
    tx = optimlab.clip_by_global_norm(1.0)
    good, broken = _trees(jnp.nan, jnp.float32, n_leaves)
    update = jax.jit(tx.update)
    state = tx.init(good)
    _, state = update(broken, state)
    out, _ = update(good, state)
    norm = np.sqrt(sum(float(np.sum(np.square(v))) for v in good.values()))
    for k, u in out.items():
        np.testing.assert_allclose(u, good[k] * min(1.0, 1.0 / norm), rtol=1e-6, err_msg=k)
