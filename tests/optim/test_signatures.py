"""Every torch.optim optimizer has an optimlab.optim counterpart with torch's constructor."""

from __future__ import annotations

import inspect

import jax.numpy as jnp
import pytest
import torch

from optimlab import optim

TORCH_OPTIMIZERS = sorted(
    name
    for name in torch.optim.__all__
    if inspect.isclass(getattr(torch.optim, name))
    and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
)

#: Documented differences, ``{class: {parameter: reason}}``; the defaults of these
#: parameters are not compared (names and kinds still are). None at present.
EXCEPTIONS: dict[str, dict[str, str]] = {}


def test_all_fifteen_optimizers_and_the_base_are_covered():
    assert len(TORCH_OPTIMIZERS) == 16, TORCH_OPTIMIZERS  # 15 optimizers and Optimizer
    missing = [n for n in TORCH_OPTIMIZERS if not hasattr(optim, n)]
    assert not missing


@pytest.mark.parametrize("name", TORCH_OPTIMIZERS)
def test_constructor_matches_torch(name):
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    ours = inspect.signature(getattr(optim, name).__init__).parameters
    assert list(ours) == list(theirs)
    skip = EXCEPTIONS.get(name, {})
    for p_name, p in theirs.items():
        assert ours[p_name].kind == p.kind, p_name
        if p_name not in skip:
            assert ours[p_name].default == p.default, p_name


@pytest.mark.parametrize("name", [n for n in TORCH_OPTIMIZERS if n != "Optimizer"])
def test_defaults_match_torch_in_order(name):
    # The order of ``defaults`` is that of every group's options in the state dict.
    theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2, 2))])
    ours = getattr(optim, name)([jnp.zeros((2, 2))])
    assert list(ours.defaults.items()) == list(theirs.defaults.items())
    assert list(ours.param_groups[0]) == list(theirs.param_groups[0])
