"""Checkpoints cross between torch.optim and optimlab.optim in both directions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim
from tests.optim._pair import Pair, assert_state_dicts_close, roundtrip

CASES = [
    (
        optim.SGD,
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, weight_decay=0.01),
        [(["b", "w"], {}), (["s", "v"], {"lr": 0.01, "momentum": 0.5})],
    ),
    (
        optim.Adam,
        torch.optim.Adam,
        dict(lr=0.01, amsgrad=True),
        [(["b", "w"], {"betas": (0.8, 0.9)}), (["s", "v"], {"lr": 0.02})],
    ),
    (optim.AdamW, torch.optim.AdamW, dict(lr=0.01), None),
]
IDS = ["sgd", "adam", "adamw"]


def _restart(pair, from_ours: bool):
    """A fresh pair starting from the current parameters, with one side's checkpoint
    loaded into both (after a torch.save/torch.load(weights_only=True) round trip)."""
    start = {n: t.detach().numpy().copy() for n, t in pair.tparams.items()}
    sd = roundtrip(pair.ours.state_dict() if from_ours else pair.theirs.state_dict())
    fresh = Pair(
        type(pair.ours),
        type(pair.theirs),
        pair.kwargs,
        dtype="float64",
        groups=pair.groups,
        start=start,
    )
    fresh.grad_fn = pair.grad_fn
    fresh.theirs.load_state_dict(sd)
    assert fresh.ours.load_state_dict(sd) is None
    return fresh


@pytest.mark.parametrize("from_ours", [False, True], ids=["torch-to-ours", "ours-to-torch"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_checkpoint_round_trip_continues_identically(case, from_ours):
    cls, tcls, kwargs, groups = case
    with jax.enable_x64(True):
        pair = Pair(cls, tcls, kwargs, dtype="float64", groups=groups)
        pair.kwargs, pair.groups = kwargs, groups
        pair.run(5, before=lambda k, p: p.set_all(0, lr=0.03) if k == 2 else None)
        resumed = _restart(pair, from_ours)
        resumed.check("after load")
        for k in range(5, 10):
            resumed.step(k)
            resumed.check(f"resumed step {k}")


def test_optimlab_checkpoint_loads_into_torch_exactly():
    # The converted state dict is accepted by torch as is, and torch's own
    # state_dict() afterwards equals ours (same ids, options, keys and dtypes).
    with jax.enable_x64(True):
        pair = Pair(optim.Adam, torch.optim.Adam, dict(lr=0.01), dtype="float32")
        pair.run(3)
        ours = pair.ours.state_dict()
        assert ours["state"][0]["step"].dtype == np.float32 and ours["state"][0]["step"].shape == ()
        other = torch.optim.Adam(list(pair.tparams.values()), lr=0.5)
        other.load_state_dict(roundtrip(ours))
        assert_state_dicts_close(ours, other.state_dict(), rtol=0, atol=0)


def test_state_dict_is_made_of_plain_values_and_snapshots():
    opt = optim.SGD({"w": jnp.ones(3)}, lr=0.1, momentum=0.9)
    opt.step({"w": jnp.ones(3)})
    sd = opt.state_dict()
    allowed = (np.ndarray, int, float, str, bool, type(None), list, tuple, dict)

    def walk(x):
        assert isinstance(x, allowed), type(x)
        for v in x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ():
            walk(v)

    walk(sd)
    before = sd["state"][0]["momentum_buffer"].copy()
    opt.step({"w": jnp.ones(3)})  # donates the live buffers; the snapshot is untouched
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], before)


def test_load_state_dict_casts_to_the_parameter_dtype():
    opt = optim.Adam({"w": jnp.ones(2, jnp.float32)}, lr=0.1)
    sd = {
        "state": {
            0: {
                "step": torch.tensor(4.0),
                "exp_avg": torch.ones(2, dtype=torch.float64),
                "exp_avg_sq": torch.ones(2, dtype=torch.float64),
            }
        },
        "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.2)],
    }
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.2
    state = opt.state[0]
    assert state["exp_avg"].dtype == jnp.float32 and float(state["step"]) == 4.0


def test_strict_false_loads_by_name_and_reports_the_rest():
    tree = {"body": jnp.ones((2, 2)), "head": jnp.ones(3), "new": jnp.ones(4)}
    saved_tree = {"body": jnp.ones((2, 2)), "head": jnp.ones(5), "old": jnp.ones(1)}
    src = optim.SGD(optim.named_parameters(saved_tree), lr=0.1, momentum=0.9)
    src.step({k: jnp.full_like(v, 2.0) for k, v in saved_tree.items()})
    dst = optim.SGD(optim.named_parameters(tree), lr=0.5, momentum=0.9)
    report = dst.load_state_dict(src.state_dict(), strict=False)
    assert report.loaded == ["body"]
    assert set(report.skipped) == {"head", "old"}
    assert "shape (5,)" in report.skipped["head"]
    assert report.skipped["old"] == "no parameter of this name"
    assert report.missing == ["new"]
    assert list(dst.state) == [0]  # "body" only; the groups' options are untouched
    np.testing.assert_array_equal(dst.state[0]["momentum_buffer"], 2.0)
    assert dst.param_groups[0]["lr"] == 0.5


def test_strict_false_needs_names():
    opt = optim.SGD({"w": jnp.ones(2)}, lr=0.1)
    with pytest.raises(ValueError, match="matches parameters by name"):
        opt.load_state_dict(opt.state_dict(), strict=False)
