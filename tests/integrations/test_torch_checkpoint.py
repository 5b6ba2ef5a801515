"""A torch run continued in JAX and back, as docs/torch_mapping.md shows.

torch trains a small MLP with ``AdamW(amsgrad=True)`` and ``CosineAnnealingLR`` and
saves model, optimizer and scheduler with ``torch.save``; ``optimlab.optim.load``
reads the file, ``optim.AdamW`` and ``lr_scheduler.CosineAnnealingLR`` load it, and
training continues step for step with torch's own continuation. The other way, a
file written by ``optim.save`` loads with a plain ``torch.load(f)`` and torch
continues it. The model is float64 on both sides, so the comparisons are at float64
rounding.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import optim
from optimlab.optim import lr_scheduler

from ._util import assert_bitwise_equal

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
BATCHES = [(RNG.normal(size=(32, 3)), RNG.normal(size=(32, 1))) for _ in range(16)]
LR, T_MAX = 1e-2, 12


def mse(params, x, y):  # the torch model: Linear(3, 8), Tanh, Linear(8, 1)
    h = jnp.tanh(x @ params[0]["weight"].T + params[0]["bias"])
    return jnp.mean((h @ params[2]["weight"].T + params[2]["bias"] - y) ** 2)


def _torch_run():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    net = net.double()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, amsgrad=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)
    return net, opt, sched


def _torch_steps(net, opt, sched, batches):
    weights = []
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        opt.step()
        sched.step()
        weights.append({n: p.detach().numpy().copy() for n, p in net.named_parameters()})
    return weights


def _steps(opt, sched, batches):
    weights = []
    for x, y in batches:
        opt.zero_grad()
        opt.backward(mse, jnp.asarray(x), jnp.asarray(y))
        opt.step()
        sched.step()
        weights.append({n: np.asarray(w) for n, w in optim.named_parameters(opt.params)})
    return weights


def _assert_same_run(ours, theirs):
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert sorted(a) == sorted(b)
        for name in b:
            # float64 on both sides, the same data: only the rounding of each library's
            # matmuls and reductions differs (measured below 1e-14 relative).
            np.testing.assert_allclose(
                a[name], b[name], rtol=1e-11, atol=1e-13, err_msg=f"{name} at step {t}"
            )


def _resume(checkpoint):
    """What the docs write: optimizer and scheduler built as in torch, then loaded."""
    pairs = [(name, jnp.asarray(w)) for name, w in checkpoint["model"].items()]
    opt = optim.AdamW(pairs, lr=LR, amsgrad=True)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    return opt, sched


def test_a_torch_checkpoint_continues_in_jax_step_for_step(tmp_path):
    net, opt, sched = _torch_run()
    _torch_steps(net, opt, sched, BATCHES[:5])
    path = tmp_path / "torch.pt"
    torch.save(
        {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
        path,
    )
    theirs = _torch_steps(net, opt, sched, BATCHES[5:])
    with jax.enable_x64(True):
        jopt, jsched = _resume(optim.load(path))
        ours = _steps(jopt, jsched, BATCHES[5:])
    _assert_same_run(ours, theirs)
    assert jsched.get_last_lr() == pytest.approx(sched.get_last_lr(), rel=1e-15)
    assert jopt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"].item()


def test_a_jax_checkpoint_continues_in_torch_with_a_plain_torch_load(tmp_path):
    net, opt, sched = _torch_run()
    _torch_steps(net, opt, sched, BATCHES[:3])
    start = tmp_path / "start.pt"
    torch.save(
        {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
        start,
    )
    with jax.enable_x64(True):
        jopt, jsched = _resume(optim.load(start))
        _steps(jopt, jsched, BATCHES[3:8])
        back = tmp_path / "back.pt"
        optim.save(
            {
                "model": dict(optim.named_parameters(jopt.params)),
                "optimizer": jopt.state_dict(),
                "scheduler": jsched.state_dict(),
            },
            back,
        )
        ours = _steps(jopt, jsched, BATCHES[8:])
    loaded = torch.load(back)  # torch's defaults: weights_only=True
    net2, opt2, sched2 = _torch_run()
    net2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    _assert_same_run(ours, _torch_steps(net2, opt2, sched2, BATCHES[8:]))


def test_resume_mid_run_is_bitwise_and_keeps_an_edited_learning_rate(tmp_path):
    with jax.enable_x64(True):
        init = {
            0: {"weight": jnp.asarray(RNG.normal(size=(8, 3))), "bias": jnp.zeros(8)},
            2: {"weight": jnp.asarray(RNG.normal(size=(1, 8))), "bias": jnp.zeros(1)},
        }

        def fresh():
            opt = optim.AdamW(list(optim.named_parameters(init)), lr=LR, amsgrad=True)
            return opt, lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)

        a, sa = fresh()
        _steps(a, sa, BATCHES[:4])
        a.param_groups[0]["weight_decay"] = 0.1  # an edit mid-run, torch's way
        path = tmp_path / "mid.pt"
        optim.save(
            {
                "model": dict(optim.named_parameters(a.params)),
                "optimizer": a.state_dict(),
                "scheduler": sa.state_dict(),
            },
            path,
        )
        uninterrupted = _steps(a, sa, BATCHES[4:])
        b, sb = _resume(optim.load(path))
        assert b.param_groups[0]["weight_decay"] == 0.1
        resumed = _steps(b, sb, BATCHES[4:])
    assert_bitwise_equal(resumed, uninterrupted)


def test_loading_needs_no_torch(tmp_path):
    net, opt, sched = _torch_run()
    _torch_steps(net, opt, sched, BATCHES[:2])
    path = tmp_path / "torch.pt"
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict()}, path)
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any torch import would now fail
        "from optimlab import optim\n"
        f"sd = optim.load({str(path)!r})\n"
        "print(sorted(sd['model']), float(sd['optimizer']['state'][0]['step']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("]")[0] + "]" == str(sorted(net.state_dict()))
    assert out.stdout.strip().endswith("2.0")
