"""optimlab.optim.swa_utils against torch.optim.swa_utils (and NumPy for update_bn)."""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as T
from torch.optim import swa_utils as TS

from optimlab import optim
from optimlab.optim import lr_scheduler as L
from optimlab.optim import swa_utils

RNG = np.random.default_rng(0)
SEQ = [
    {"w": RNG.normal(size=(3, 2)).astype(np.float32), "b": RNG.normal(size=2).astype(np.float32)}
    for _ in range(12)
]


def torch_model(p):
    m = torch.nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(p["w"].T.copy()))
        m.bias.copy_(torch.from_numpy(p["b"]))
    return m


@pytest.mark.parametrize("kind", ["swa", "ema-multi", "ema", "swa-single"])
def test_averaged_model_matches_torch(kind):
    ours_kw, torch_kw = {
        "swa": ({}, {}),
        "ema-multi": (
            {"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.9)},
            {"multi_avg_fn": TS.get_ema_multi_avg_fn(0.9)},
        ),
        "ema": ({"avg_fn": swa_utils.get_ema_avg_fn(0.8)}, {"avg_fn": TS.get_ema_avg_fn(0.8)}),
        "swa-single": ({"avg_fn": swa_utils.get_swa_avg_fn()}, {"avg_fn": TS.get_swa_avg_fn()}),
    }[kind]
    model = torch_model(SEQ[0])
    tavg = TS.AveragedModel(model, **torch_kw)
    avg = swa_utils.AveragedModel({k: jnp.asarray(v) for k, v in SEQ[0].items()}, **ours_kw)
    for p in SEQ:
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(p["w"].T.copy()))
            model.bias.copy_(torch.from_numpy(p["b"]))
        tavg.update_parameters(model)
        avg.update_parameters({k: jnp.asarray(v) for k, v in p.items()})
        assert int(avg.n_averaged) == int(tavg.n_averaged)
        # float32 on both sides; the same lerp (or formula) per element: an ulp or two.
        np.testing.assert_allclose(
            np.asarray(avg.params["w"]), tavg.module.weight.detach().numpy().T, rtol=1e-6, atol=1e-7
        )
        np.testing.assert_allclose(
            np.asarray(avg.params["b"]), tavg.module.bias.detach().numpy(), rtol=1e-6, atol=1e-7
        )
        assert avg.params["w"].dtype == jnp.float32


def test_averaged_model_buffers_follow_torch_rules():
    var = {"params": {"w": jnp.zeros(2)}, "batch_stats": {"mean": jnp.zeros(2)}}
    synced, averaged = swa_utils.AveragedModel(var), swa_utils.AveragedModel(var, use_buffers=True)
    for k in range(1, 5):
        v = {"params": {"w": jnp.full(2, float(k))}, "batch_stats": {"mean": jnp.full(2, 10.0 * k)}}
        synced.update_parameters(v)
        averaged.update_parameters(v)
    np.testing.assert_allclose(synced.params["params"]["w"], 2.5)
    np.testing.assert_allclose(synced.params["batch_stats"]["mean"], 40.0)  # copied, as torch
    np.testing.assert_allclose(averaged.params["batch_stats"]["mean"], 25.0)
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(
            var, avg_fn=swa_utils.get_swa_avg_fn(), multi_avg_fn=swa_utils.get_swa_multi_avg_fn()
        )
    with pytest.raises(ValueError, match="Invalid decay value"):
        swa_utils.get_ema_multi_avg_fn(1.5)


@pytest.mark.parametrize(
    "kw",
    [
        {"swa_lr": 0.05},
        {"swa_lr": [0.01, 0.02], "anneal_epochs": 7, "anneal_strategy": "linear"},
        {"swa_lr": 0.03, "anneal_epochs": 0},
    ],
)
def test_swalr_after_cosine_annealing_lockstep(kw):
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    to = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}], lr=0.1)
    oo = optim.SGD(
        [{"params": {"a": jnp.zeros(2)}}, {"params": {"b": jnp.zeros(2)}, "lr": 0.05}], lr=0.1
    )
    tc, oc = T.CosineAnnealingLR(to, 40), L.CosineAnnealingLR(oo, 40)
    for _ in range(15):
        to.step()
        tc.step()
        oc.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ts, os_ = TS.SWALR(to, **kw), swa_utils.SWALR(oo, **kw)
    for k in range(100):
        np.testing.assert_allclose(os_.get_last_lr(), ts.get_last_lr(), rtol=1e-6, err_msg=str(k))
        for go, gt in zip(oo.param_groups, to.param_groups, strict=True):
            np.testing.assert_allclose(go["lr"], gt["lr"], rtol=1e-6)
        to.step()
        ts.step()
        os_.step()
    assert os_.state_dict().keys() == ts.state_dict().keys()


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Dense(4)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(1)(nn.relu(x))


def test_update_bn_is_the_cumulative_average_of_batch_statistics():
    x = RNG.normal(size=(40, 3)).astype(np.float32) * 3 + 1
    batches = [(x[i : i + 8], np.zeros(8)) for i in range(0, 40, 8)]
    model = Net()
    variables = model.init(jax.random.key(0), x[:2], train=False)

    def apply_fn(v, xb):
        return model.apply(v, xb, train=True, mutable=["batch_stats"])

    new = swa_utils.update_bn(batches, apply_fn, variables)
    kernel = np.asarray(variables["params"]["Dense_0"]["kernel"], np.float64)
    bias = np.asarray(variables["params"]["Dense_0"]["bias"], np.float64)
    hs = [xb.astype(np.float64) @ kernel + bias for xb, _ in batches]
    want_mean = np.mean([h.mean(0) for h in hs], axis=0)
    want_var = np.mean([h.var(0) for h in hs], axis=0)  # Flax's biased batch variance
    got = new["batch_stats"]["BatchNorm_0"]
    np.testing.assert_allclose(np.asarray(got["mean"]), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got["var"]), want_var, rtol=1e-5, atol=1e-6)
    assert got["mean"].dtype == jnp.float32
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new["params"], variables["params"])
    )
    # torch's update_bn on the same layer: the same means (its variance is unbiased).
    lin, bn = torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(kernel.T.astype(np.float32)))
        lin.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    TS.update_bn([torch.from_numpy(xb) for xb, _ in batches], torch.nn.Sequential(lin, bn))
    np.testing.assert_allclose(
        np.asarray(got["mean"]), bn.running_mean.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(got["var"]), bn.running_var.numpy() * 7 / 8, rtol=1e-5, atol=1e-6
    )


def test_swa_idiom_with_averaged_model_swalr_and_update_bn():
    # torch's documented loop: cosine schedule, then from swa_start average the weights
    # every epoch under SWALR; finally recompute the BatchNorm statistics.
    x = RNG.normal(size=(32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    model = Net()
    variables = model.init(jax.random.key(1), x[:2], train=False)
    opt = optim.SGD(variables["params"], lr=0.05, momentum=0.9)
    swa_model = swa_utils.AveragedModel(variables)
    scheduler = L.CosineAnnealingLR(opt, T_max=20)
    swa_start, swa_scheduler = 10, swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=3)
    stats = variables["batch_stats"]

    def loss_fn(params, stats, xb, yb):
        out, mutated = model.apply(
            {"params": params, "batch_stats": stats}, xb, train=True, mutable=["batch_stats"]
        )
        return jnp.mean((out - yb) ** 2), mutated["batch_stats"]

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    lrs = []
    for epoch in range(20):
        for i in range(0, 32, 8):
            (_, stats), grads = grad_fn(opt.params, stats, x[i : i + 8], y[i : i + 8])
            opt.step(grads)
        if epoch > swa_start:
            swa_model.update_parameters({"params": opt.params, "batch_stats": stats})
            swa_scheduler.step()
        else:
            scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert int(swa_model.n_averaged) == 9
    assert lrs[-1] == pytest.approx(0.01) and lrs[swa_start] > 0.01
    averaged = swa_utils.update_bn(
        [(x[i : i + 8],) for i in range(0, 32, 8)],
        lambda v, xb: model.apply(v, xb, train=True, mutable=["batch_stats"]),
        swa_model.params,
    )
    out = model.apply(averaged, x, train=False)
    assert np.isfinite(np.asarray(out)).all()
    assert not np.allclose(
        np.asarray(averaged["batch_stats"]["BatchNorm_0"]["mean"]),
        np.asarray(swa_model.params["batch_stats"]["BatchNorm_0"]["mean"]),
    )


def test_hostile_inputs_are_refused_before_anything_changes():
    avg = swa_utils.AveragedModel({"w": jnp.ones(2)})
    avg.update_parameters({"w": jnp.ones(2)})
    for bad, exc, match in [
        ({"w": jnp.ones(3)}, ValueError, r"\['w'\] has shape \(3,\).*\(2,\)"),
        ({"w": jnp.ones(1)}, ValueError, r"\['w'\] has shape \(1,\).*\(2,\)"),
        ({"w": jnp.ones(2, jnp.complex64)}, TypeError, r"\['w'\] is complex"),
        ({"w": jnp.ones(2, jnp.bfloat16)}, ValueError, r"\['w'\] has dtype bfloat16"),
    ]:
        with pytest.raises(exc, match="AveragedModel.update_parameters: .*" + match):
            avg.update_parameters(bad)
    assert avg.params["w"].shape == (2,) and int(avg.n_averaged) == 1
    wide = swa_utils.AveragedModel({"w": jnp.ones(2)}, avg_fn=lambda a, c, n: jnp.ones(5))
    wide.update_parameters({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"avg_fn: the result at \['w'\] has shape \(5,\)"):
        wide.update_parameters({"w": jnp.ones(2)})
    assert wide.params["w"].shape == (2,) and int(wide.n_averaged) == 1
    flax_like = swa_utils.AveragedModel({"params": {"w": jnp.ones(2)}, "batch_stats": {"m": 1.0}})
    with pytest.raises(ValueError, match="tree structure differs.*batch_stats"):
        flax_like.update_parameters({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"\['batch_stats'\]\['m'\] has shape \(3,\)"):
        flax_like.update_parameters(
            {"params": {"w": jnp.ones(2)}, "batch_stats": {"m": jnp.ones(3)}}
        )
    assert int(flax_like.n_averaged) == 0 and "batch_stats" in flax_like.params
    with pytest.raises(TypeError, match="AveragedModel: use_buffers must be a bool, got str"):
        swa_utils.AveragedModel({"w": jnp.ones(2)}, use_buffers="no")
    for fn in (swa_utils.get_ema_avg_fn, swa_utils.get_ema_multi_avg_fn):
        with pytest.raises(TypeError, match=f"{fn.__name__}: decay must be a real number"):
            fn("x")
    with pytest.raises(TypeError, match="update_bn: momentum must be a real number"):
        swa_utils.update_bn([], lambda v, x: (None, v), {}, momentum="x")

    def apply_fn(v, x):
        return None, {"batch_stats": {"m": jnp.ones(1)}}

    with pytest.raises(ValueError, match=r"update_bn: .*\['m'\] has shape \(1,\).*\(3,\)"):
        swa_utils.update_bn([jnp.ones(1)], apply_fn, {"batch_stats": {"m": jnp.ones(3)}})


def test_swalr_argument_types():
    opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
    for bad in ("x", None):
        with pytest.raises(TypeError, match="SWALR: swa_lr must be a real number"):
            swa_utils.SWALR(opt, bad)
    assert "swa_lr" not in opt.param_groups[0]
    assert swa_utils.SWALR(opt, 0.05, anneal_epochs=np.int64(3)).anneal_epochs == 3
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0, got -1"):
        swa_utils.SWALR(opt, 0.05, anneal_epochs=-1)
