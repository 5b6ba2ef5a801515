"""A parameter is refused in two groups by its identity, as torch refuses a tensor."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import optim

MESSAGE = "some parameters appear in more than one parameter group"


def test_named_parameters_of_two_trees_make_two_groups():
    encoder = {"w": jnp.ones(2), "b": jnp.zeros(1)}
    decoder = {"w": jnp.full(2, 3.0), "b": jnp.ones(1)}
    opt = optim.SGD(
        [
            {"params": list(optim.named_parameters(encoder))},
            {"params": list(optim.named_parameters(decoder)), "lr": 0.5},
        ],
        lr=0.1,
    )
    opt.step([{"b": jnp.ones(1), "w": jnp.ones(2)}, {"b": jnp.ones(1), "w": jnp.ones(2)}])
    enc, dec = opt.params
    np.testing.assert_allclose(np.asarray(enc["w"]), [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(dec["w"]), [2.5, 2.5], rtol=1e-6)


def test_the_same_named_parameter_in_two_groups_is_refused():
    tree = {"w": jnp.ones(2), "b": jnp.zeros(1)}
    first = [(n, p) for n, p in optim.named_parameters(tree) if n == "w"]
    again = list(optim.named_parameters(tree))  # a second call: the same leaves
    opt = optim.SGD([{"params": first}], lr=0.1)
    with pytest.raises(ValueError, match=MESSAGE):
        opt.add_param_group({"params": again})
    plain = jnp.ones(3)
    opt = optim.SGD([{"params": [("a", plain)]}], lr=0.1)
    with pytest.raises(ValueError, match=MESSAGE):
        opt.add_param_group({"params": [("b", plain)]})
    opt = optim.SGD([{"params": [plain]}], lr=0.1)
    with pytest.raises(ValueError, match=MESSAGE):
        opt.add_param_group({"params": {"x": plain}})


def test_a_new_array_at_a_freed_address_is_a_new_parameter():
    # The optimizer copies the arrays it is given and does not keep them alive: an
    # array created later may reuse a freed one's address (id), yet is another array.
    x = jnp.ones(2)
    address = id(x)
    opt = optim.SGD([{"params": [x]}], lr=0.1)
    del x
    reused = None
    for _ in range(1000):
        y = jnp.zeros(2)
        if id(y) == address:
            reused = y
            break
        del y
    assert reused is not None, "CPython did not reuse the freed address"
    opt.add_param_group({"params": [reused]})
    assert len(opt.param_groups) == 2
