"""Array-valued options, as torch takes tensor ``lr`` and ``betas``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import optim


def test_one_element_arrays_are_scalars():
    grads = {"w": jnp.ones(2)}
    plain = optim.Adam({"w": jnp.ones(2)}, lr=0.01, betas=(0.9, 0.99))
    shaped = optim.Adam(
        {"w": jnp.ones(2)},
        lr=jnp.array([0.01]),
        betas=(jnp.full((1, 1, 1), 0.9), jnp.full((1, 1), 0.99)),
    )
    for opt in (plain, shaped):
        opt.step(grads)
        opt.step(grads)
    np.testing.assert_array_equal(np.asarray(shaped.params["w"]), np.asarray(plain.params["w"]))


def test_torch_messages_for_array_options():
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.SGD({"w": jnp.ones(2)}, lr=jnp.array([0.1, 0.1]))
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        optim.Adam({"w": jnp.ones(2)}, betas=(0.9, jnp.array(0.99)))


def test_a_plain_tree_listing_one_array_twice_warns_as_torch():
    w = jnp.ones(2)
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        optim.SGD([w, w], lr=0.1)
