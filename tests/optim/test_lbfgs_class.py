"""optim.LBFGS against torch.optim.LBFGS.step(closure), call by call, state dict included.

Tolerance (float64): 1e-6 relative, 1e-9 absolute. The iterates agree to ~1e-11
(see tests/reference/test_torch_lbfgs.py: XLA and torch's BLAS sum dot products
in different orders, which L-BFGS's feedback amplifies); the state holds
differences of nearly equal gradients and their reciprocal dot products, where
cancellation magnifies the same last-bit differences.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim
from tests.optim._pair import roundtrip
from tests.reference.test_torch_lbfgs import PROBLEMS

TOL = dict(rtol=1e-6, atol=1e-9)


def _np(x):
    return x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)


def _close(ours, theirs, what, atol=TOL["atol"]):
    if theirs is None:
        assert ours is None, what
        return
    np.testing.assert_allclose(
        np.asarray(ours, np.float64),
        np.asarray(_np(theirs), np.float64),
        rtol=TOL["rtol"],
        atol=atol,
        err_msg=what,
    )


def assert_lbfgs_state_dicts_close(ours, theirs, where):
    assert ours["param_groups"] == theirs["param_groups"], where
    assert list(ours["state"]) == list(theirs["state"]), where
    for i, entry in theirs["state"].items():
        mine = ours["state"][i]
        assert list(mine) == list(entry), f"{where}: {list(mine)} != {list(entry)}"
        for key, value in entry.items():
            if key in ("func_evals", "n_iter"):
                assert mine[key] == value and isinstance(mine[key], int), f"{where} {key}"
            elif isinstance(value, list):
                assert len(mine[key]) == len(value), f"{where} {key}"
                # 'al' entries (s.q / y.s) can be sums that cancel to near zero: they are
                # compared relative to the largest entry.
                scale = max([float(np.abs(_np(v)).max()) for v in value if v is not None] + [0])
                atol = max(TOL["atol"], TOL["rtol"] * scale) if key == "al" else TOL["atol"]
                for j, (a, b) in enumerate(zip(mine[key], value, strict=True)):
                    _close(a, b, f"{where} {key}[{j}]", atol)
            else:
                _close(mine[key], value, f"{where} {key}")


def _pair(problem, options, start=None):
    fun_jax, fun_torch, start0 = PROBLEMS[problem]
    start = start0 if start is None else start
    tparams = [
        torch.tensor(np.asarray(v, np.float64), requires_grad=True) for v in jax.tree.leaves(start)
    ]
    topt = torch.optim.LBFGS(tparams, **options)

    def closure():
        topt.zero_grad()
        loss = fun_torch(tparams)
        loss.backward()
        return loss

    opt = optim.LBFGS(
        jax.tree.map(lambda v: jnp.asarray(np.asarray(v, np.float64)), start), **options
    )
    return opt, topt, fun_jax, closure, tparams


def _check(opt, topt, tparams, where):
    for ours, t in zip(jax.tree.leaves(opt.params), tparams, strict=True):
        _close(ours, t, f"{where} params")
    assert_lbfgs_state_dicts_close(opt.state_dict(), topt.state_dict(), where)


CONFIGS = {
    "rosenbrock-wolfe": ("rosenbrock", dict(line_search_fn="strong_wolfe"), 4),
    "rosenbrock-fixed": ("rosenbrock", dict(lr=0.1, max_iter=15, history_size=5), 3),
    "logistic-wolfe": (
        "logistic",
        dict(line_search_fn="strong_wolfe", history_size=4, max_eval=9, max_iter=8),
        3,
    ),
    "logistic-fixed": (
        "logistic",
        dict(lr=0.5, max_iter=10, history_size=3, tolerance_change=1e-6),
        3,
    ),
    "logistic-one-iteration": ("logistic", dict(lr=0.5, max_iter=1, history_size=3), 4),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_steps_match_torch_float64(config):
    problem, options, calls = CONFIGS[config]
    with jax.enable_x64(True):
        opt, topt, fun, closure, tparams = _pair(problem, options)
        for call in range(calls):
            if call == 2:  # live options, no recompilation
                for g in (opt.param_groups[0], topt.param_groups[0]):
                    g["lr"] *= 0.9
            theirs = topt.step(closure)
            ours = opt.step(fun)
            _close(ours, theirs, f"call {call} loss")
            _check(opt, topt, tparams, f"call {call}")


@pytest.mark.parametrize("from_ours", [False, True], ids=["torch-to-ours", "ours-to-torch"])
def test_checkpoint_round_trip_continues_identically(from_ours):
    problem, options, _ = CONFIGS["logistic-fixed"]
    with jax.enable_x64(True):
        opt, topt, fun, closure, tparams = _pair(problem, options)
        for _ in range(2):
            topt.step(closure)
            opt.step(fun)
        sd = roundtrip(opt.state_dict() if from_ours else topt.state_dict())
        # Fresh optimizers at the current point, loading the same checkpoint.
        names = sorted(PROBLEMS[problem][2])  # jax.tree.leaves order
        here = {n: t.detach().numpy().copy() for n, t in zip(names, tparams, strict=True)}
        opt2, topt2, _, closure2, tparams2 = _pair(problem, options, start=here)

        topt2.load_state_dict(sd)
        assert opt2.load_state_dict(sd) is None
        _check(opt2, topt2, tparams2, "after load")
        for call in range(2):
            _close(opt2.step(fun), topt2.step(closure2), f"resumed call {call} loss")
            _check(opt2, topt2, tparams2, f"resumed call {call}")


def test_state_before_any_iteration_and_after_an_early_return():
    with jax.enable_x64(True):
        opt = optim.LBFGS({"x": jnp.zeros(2)}, tolerance_grad=1.0)
        assert opt.state_dict()["state"] == {}
        opt.step(lambda p: jnp.sum(p["x"] ** 2))  # gradient 0 <= tolerance_grad: no iteration
        assert opt.state_dict()["state"] == {0: {"func_evals": 1, "n_iter": 0}}


def test_one_group_only_with_torch_message():
    message = "LBFGS doesn't support per-parameter options (parameter groups)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        torch.optim.LBFGS([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)]}])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optim.LBFGS([{"params": [jnp.zeros(1)]}, {"params": [jnp.zeros(1)]}])
    opt = optim.LBFGS([jnp.zeros(1)])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        opt.add_param_group({"params": [jnp.zeros(1)]})


def test_step_needs_a_closure_and_strict_false_is_refused():
    opt = optim.LBFGS({"x": jnp.ones(2)})
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        opt.step()
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        opt.step({"x": jnp.ones(2)})
    with pytest.raises(ValueError, match="strict=False"):
        opt.load_state_dict(opt.state_dict(), strict=False)
    with pytest.raises(ValueError, match=re.escape("Invalid learning rate: -1.0")):
        optim.LBFGS({"x": jnp.ones(2)}, lr=-1.0)


def test_bad_state_dicts_raise_and_change_nothing():
    fun = lambda p: jnp.sum((p["x"] - 1.0) ** 4)
    opt = optim.LBFGS({"x": jnp.zeros(3)}, history_size=2)
    opt.step(fun)
    opt.step(fun)
    good = opt.state_dict()
    for edit, message in [
        (lambda e: e.update(d=np.zeros(4)), r"'d' has shape \(4,\)"),
        (lambda e: e.update(momentum_buffer=1), "'momentum_buffer' is not a state key"),
        (lambda e: e.pop("ro"), "has no 'ro'"),
        (
            lambda e: e.update(
                old_dirs=[np.zeros(3)] * 3, old_stps=[np.zeros(3)] * 3, ro=[1.0] * 3
            ),
            "3 curvature pairs, more than history_size=2",
        ),
    ]:
        bad = {"state": {0: dict(good["state"][0])}, "param_groups": good["param_groups"]}
        edit(bad["state"][0])
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(bad)
        after = opt.state_dict()
        assert list(after["state"][0]) == list(good["state"][0])
        np.testing.assert_array_equal(after["state"][0]["d"], good["state"][0]["d"])
