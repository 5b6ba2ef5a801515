"""The multi-tensor path against real torch.optim: ``optimlab.bucketed(alias)``, step by step.

Every leaf of the reference tree is small, so all of them are packed into one
flat bucket; the bucketed state is converted back to the per-leaf form with
``optimlab.unbucket_state`` and compared with torch's state, key by key.

Tolerances: those of the per-leaf reference tests (tests/reference/
test_torch_core.py and test_torch_adaptive.py): float64 1e-12 (1e-10 for the
adaptive family), float32 1e-6 with a 1e-6 absolute floor (1e-5 for the
adaptive family). XLA vectorises the flat bucket's loop and may contract
``a * b + c`` differently from the per-leaf loops, a last-ulp effect well inside
these bounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import torch

import optimlab as ol
from tests.reference.harness import SHAPES, compare_with_torch, find
from tests.reference.test_torch_adaptive import adagrad_state, rmsprop_state
from tests.reference.test_torch_core import adam_state, sgd_state

CORE_TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-6, atol=1e-6)}
ADAPTIVE_TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}

CASES = {
    "sgd_nesterov_wd": (
        lambda: ol.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
        sgd_state,
        CORE_TOL,
    ),
    "sgd_dampening_maximize": (
        lambda: ol.sgd(0.05, momentum=0.9, dampening=0.3, maximize=True),
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, dampening=0.3, maximize=True),
        sgd_state,
        CORE_TOL,
    ),
    "adam_amsgrad_wd": (
        lambda: ol.adam(0.01, b1=0.8, b2=0.95, eps=1e-6, weight_decay=0.1, amsgrad=True),
        torch.optim.Adam,
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True),
        adam_state,
        CORE_TOL,
    ),
    "adamw": (lambda: ol.adamw(0.01), torch.optim.AdamW, dict(lr=0.01), adam_state, CORE_TOL),
    "rmsprop_centered_momentum": (
        lambda: ol.rmsprop(0.01, decay=0.9, centered=True, momentum=0.5, weight_decay=0.01),
        torch.optim.RMSprop,
        dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.01),
        rmsprop_state,
        ADAPTIVE_TOL,
    ),
    "adagrad_lr_decay": (
        lambda: ol.adagrad(0.1, initial_accumulator_value=0.1, lr_decay=0.01),
        torch.optim.Adagrad,
        dict(lr=0.1, initial_accumulator_value=0.1, lr_decay=0.01),
        adagrad_state,
        ADAPTIVE_TOL,
    ),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_bucketed_matches_torch(name, dtype):
    make, torch_cls, torch_kwargs, state_map, tol = CASES[name]
    holder = {}

    def make_ours():
        holder["tx"] = ol.bucketed(make())
        return holder["tx"]

    def per_leaf_state_map(state):
        assert isinstance(state, ol.BucketedState)  # the state really is bucketed
        np_dtype = jnp.float64 if dtype == "float64" else jnp.float32
        template = {k: jax.ShapeDtypeStruct(s, np_dtype) for k, s in SHAPES.items()}
        per_leaf = ol.unbucket_state(holder["tx"], state, template)
        find(per_leaf, ol.HyperparamsState)  # the wrapped alias's own state
        return state_map(per_leaf)

    compare_with_torch(
        make_ours, torch_cls, torch_kwargs, per_leaf_state_map, dtype=dtype, **tol[dtype]
    )
