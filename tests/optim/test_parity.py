"""optimlab.optim classes against real torch.optim, step by step, on the same gradients.

After every step the parameters and the whole ``state_dict()`` (group options,
state keys, dtypes and values) must equal torch's; tolerances are in ``_pair.TOL``.
"""

from __future__ import annotations

import jax
import pytest
import torch

from optimlab import optim
from tests.optim._pair import Pair

GROUPS = [(["b", "w"], {}), (["s", "v"], {"lr": 0.01, "weight_decay": 0.1})]

CASES = [
    # (id, ours, torch, kwargs, groups)
    ("sgd-plain", optim.SGD, torch.optim.SGD, dict(lr=0.05), None),
    (
        "sgd-nesterov-wd",
        optim.SGD,
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        None,
    ),
    (
        "sgd-groups-dampening-maximize",
        optim.SGD,
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, dampening=0.1, maximize=True),
        [(["b", "w"], {}), (["s", "v"], {"lr": 0.01, "momentum": 0, "weight_decay": 0.1})],
    ),
    ("adam-plain", optim.Adam, torch.optim.Adam, dict(lr=0.01), None),
    (
        "adam-groups-amsgrad",
        optim.Adam,
        torch.optim.Adam,
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, amsgrad=True),
        [(["b", "w"], {"betas": (0.9, 0.99)}), (["s", "v"], {"lr": 0.02, "weight_decay": 0.1})],
    ),
    (
        "adam-decoupled-maximize",
        optim.Adam,
        torch.optim.Adam,
        dict(lr=0.01, weight_decay=0.1, maximize=True, decoupled_weight_decay=True),
        GROUPS,
    ),
    ("adamw-plain", optim.AdamW, torch.optim.AdamW, dict(lr=0.01), None),
    (
        "adamw-groups-amsgrad",
        optim.AdamW,
        torch.optim.AdamW,
        dict(lr=0.01, amsgrad=True),
        [(["b", "w"], {"weight_decay": 0}), (["s", "v"], {"lr": 0.003, "eps": 1e-5})],
    ),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_with_lr_changes(case, dtype):
    _, ours, theirs, kwargs, groups = case

    def before(k, pair):
        if k in (3, 6):  # the torch idiom: for g in opt.param_groups: g["lr"] = ...
            for g_ours, g_theirs in zip(
                pair.ours.param_groups, pair.theirs.param_groups, strict=True
            ):
                g_ours["lr"] = g_ours["lr"] * 0.5
                g_theirs["lr"] = g_theirs["lr"] * 0.5

    with jax.enable_x64(True):
        Pair(ours, theirs, kwargs, dtype=dtype, groups=groups).run(9, before)


@pytest.mark.parametrize(
    "cls,tcls,kwargs",
    [
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
        (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    ],
    ids=["sgd", "adam"],
)
def test_none_gradients_are_skipped_as_torch_skips_them(cls, tcls, kwargs):
    # "v" gets no gradient at all, "b" only from step 3 on, "s" misses steps 2 and 4:
    # no state is created for a parameter until its first gradient, and a skipped
    # parameter's step count, momentum and decay do not move.
    def skip(k):
        return ["v"] + (["b"] if k < 3 else []) + (["s"] if k in (2, 4) else [])

    with jax.enable_x64(True):
        pair = Pair(cls, tcls, dict(kwargs, weight_decay=0.1), dtype="float64")
        pair.run(6, skip=skip)
        assert 2 not in pair.ours.state_dict()["state"]  # "v" is parameter 2 ("b","s","v","w")
        if cls is optim.Adam:
            steps = {i: float(e["step"]) for i, e in pair.ours.state_dict()["state"].items()}
            assert steps == {0: 3.0, 1: 4.0, 3: 6.0}


def test_options_changed_mid_run_match_torch():
    # Every numeric option is live, flags too; momentum through zero keeps torch's
    # stale buffer and resumes from it.
    def before(k, pair):
        if k == 2:
            pair.set_all(0, momentum=0.0)
        if k == 4:
            pair.set_all(0, momentum=0.5, dampening=0.2, weight_decay=0.05)
        if k == 6:
            pair.set_all(1, nesterov=True, maximize=True)

    with jax.enable_x64(True):
        pair = Pair(
            optim.SGD,
            torch.optim.SGD,
            dict(lr=0.05, momentum=0.9),
            dtype="float64",
            groups=[(["b", "w"], {}), (["s", "v"], {"lr": 0.02})],
        )
        pair.run(9, before)


def test_adam_betas_eps_and_amsgrad_changed_mid_run_match_torch():
    def before(k, pair):
        if k == 3:
            pair.set_all(0, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.2)
        if k == 5:
            pair.set_all(1, lr=0.1)

    with jax.enable_x64(True):
        Pair(optim.Adam, torch.optim.Adam, dict(lr=0.01), dtype="float64", groups=GROUPS).run(
            8, before
        )


def test_float32_hyperparameters_without_x64_stay_close():
    # JAX's default (x64 off): hyperparameters are float32 scalars where torch uses
    # Python doubles; float32(1 - 0.999) is off by 1.3e-5 relative in the raw
    # second moment, which the bias correction cancels in the parameters.
    pair = Pair(optim.Adam, torch.optim.Adam, dict(lr=0.01), dtype="float32")
    pair.tol = dict(rtol=3e-5, atol=1e-6)
    pair.run(5)


MORE = [
    (
        optim.Adagrad,
        torch.optim.Adagrad,
        dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01),
    ),
    (optim.Adadelta, torch.optim.Adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.01)),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    (optim.NAdam, torch.optim.NAdam, dict(lr=0.01, weight_decay=0.01)),
    (optim.RAdam, torch.optim.RAdam, dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
    (optim.Rprop, torch.optim.Rprop, dict(lr=0.01, etas=(0.4, 1.3), maximize=True)),
    (optim.ASGD, torch.optim.ASGD, dict(lr=0.01, t0=3, weight_decay=0.01)),
]


@pytest.mark.parametrize("cls,tcls,kwargs", MORE, ids=[c[0].__name__ for c in MORE])
def test_more_classes_match_torch_with_groups_and_lr_changes(cls, tcls, kwargs):
    def before(k, pair):
        if k == 4:
            pair.set_all(1, lr=pair.ours.param_groups[1]["lr"] * 0.5)

    # torch's defaults throughout: NAdam's mu_product is then a float32 scalar on
    # both sides, rounded at every step, with float64 parameters.
    with jax.enable_x64(True):
        pair = Pair(
            cls,
            tcls,
            kwargs,
            dtype="float64",
            groups=[(["b", "w"], {}), (["s", "v"], {"lr": 0.02})],
        )
        pair.run(8, before)
