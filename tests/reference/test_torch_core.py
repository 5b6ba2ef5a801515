"""optimlab's sgd/adam/adamw against real torch.optim, step by step.

Tolerances, each with its reason:
- float64, 1e-12 relative: both sides do the same IEEE operations; the residue
  comes from an equivalent but differently associated ``lr / bias_correction``.
- float32 (x64 enabled, so hyperparameters are float64 scalars like torch's
  Python floats), 1e-6 relative with a 1e-6 absolute floor for entries that
  cross zero: float32 rounding of the same operations in a different order.
- float32_x32 (JAX's default, hyperparameters stored as float32 scalars), 3e-5
  relative: torch forms ``1 - beta2`` in double precision before casting, while
  float32(0.999) makes ``1 - beta2`` off by 1.3e-5 relative, which shows in the
  raw second moment (the bias-corrected step cancels it; parameters stay ~1e-6).
"""

from __future__ import annotations

import itertools

import pytest
import torch

import optimlab as ol
from tests.reference.harness import compare_with_torch, find, torch_terms

TOL = {
    "float64": dict(rtol=1e-12, atol=1e-12),
    "float32": dict(rtol=1e-6, atol=1e-6),
    "float32_x32": dict(rtol=3e-5, atol=1e-6),
}
DTYPES = ["float32", "float64", "float32_x32"]


def sgd_state(state):
    try:
        return {"momentum_buffer": find(state, ol.TraceState).trace}
    except AssertionError:
        return {}


def adam_state(state):
    s = find(state, ol.ScaleByAdamState)
    out = {"exp_avg": s.mu, "exp_avg_sq": s.nu, "step": find(state, ol.HyperparamsState).count}
    if s.nu_max is not None:
        out["max_exp_avg_sq"] = s.nu_max
    return out


SGD_GRID = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=w, maximize=x)
    for m, d, n, w, x in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.05], [False, True]
    )
    if not (n and (m == 0.0 or d != 0.0))
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", SGD_GRID, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.sgd(0.05, **torch_terms(cfg, "momentum")),
        torch.optim.SGD,
        dict(lr=0.05, **cfg),
        sgd_state,
        dtype=dtype,
        **TOL[dtype],
    )


ADAM_GRID = [
    dict(amsgrad=a, weight_decay=w, maximize=x)
    for a, w, x in itertools.product([False, True], [0.0, 0.1], [False, True])
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", ADAM_GRID, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_adam_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.adam(0.01, b1=0.8, b2=0.95, eps=1e-6, **cfg),
        torch.optim.Adam,
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, **cfg),
        adam_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", ADAM_GRID, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_adamw_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.adamw(0.01, **cfg),
        torch.optim.AdamW,
        dict(lr=0.01, **cfg),
        adam_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_lr_change_midway_matches_torch(dtype):
    def before_step(k, topt, state):
        if k == 7:
            for g in topt.param_groups:
                g["lr"] = 0.003
            return ol.set_hyperparams(state, learning_rate=0.003)
        return state

    compare_with_torch(
        lambda: ol.adam(0.01),
        torch.optim.Adam,
        dict(lr=0.01),
        adam_state,
        dtype=dtype,
        before_step=before_step,
        **TOL[dtype],
    )
