"""Adamax, SparseAdam, Adafactor and Muon against real torch.optim, step by step.

After every step the parameters and the whole ``state_dict()`` must equal torch's
(tolerances in ``_pair.TOL``: float64 1e-10, float32 1e-5 relative).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim
from tests.optim._pair import Pair, roundtrip

GROUPS = [(["b", "w"], {}), (["s", "v"], {"lr": 0.02})]


def _halve_lr_at(k_change):
    def before(k, pair):
        if k == k_change:
            for g_ours, g_theirs in zip(
                pair.ours.param_groups, pair.theirs.param_groups, strict=True
            ):
                g_ours["lr"] = g_theirs["lr"] = g_ours["lr"] * 0.5

    return before


CASES = [
    ("adamax", optim.Adamax, torch.optim.Adamax, dict(lr=0.01, weight_decay=0.01)),
    (
        "adamax-maximize",
        optim.Adamax,
        torch.optim.Adamax,
        dict(lr=0.01, betas=(0.8, 0.9), eps=1e-4, maximize=True),
    ),
    ("adafactor", optim.Adafactor, torch.optim.Adafactor, dict(lr=0.05)),
    (
        "adafactor-eps1-decay-maximize",
        optim.Adafactor,
        torch.optim.Adafactor,
        dict(lr=0.05, eps=(1e-6, 1e-2), d=1.5, beta2_decay=-0.6, weight_decay=0.1, maximize=True),
    ),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_with_groups_and_lr_changes(case, dtype):
    _, ours, theirs, kwargs = case
    with jax.enable_x64(True):
        Pair(ours, theirs, kwargs, dtype=dtype, groups=GROUPS).run(8, _halve_lr_at(4))


def test_adafactor_eps1_switched_mid_run_matches_torch():
    # eps1 from None (machine epsilon) to a number and back: the step is rebuilt
    # once each way and the state carries over.
    def before(k, pair):
        if k in (3, 6):
            pair.set_all(0, eps=(1e-5, 1e-3) if k == 3 else (None, 1e-3))

    with jax.enable_x64(True):
        Pair(
            optim.Adafactor, torch.optim.Adafactor, dict(lr=0.05), dtype="float64", groups=GROUPS
        ).run(8, before)


MATRICES = {"u": (5, 2), "v": (4, 4), "w": (3, 4)}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.02),
        dict(
            lr=0.02,
            momentum=0.9,
            nesterov=False,
            weight_decay=0.0,
            adjust_lr_fn="match_rms_adamw",
            ns_coefficients=(3.0, -4.0, 2.0),
            ns_steps=3,
        ),
    ],
    ids=["defaults", "options"],
)
def test_muon_matches_torch(kwargs, dtype):
    # The Newton-Schulz iteration runs in bfloat16 on both sides with the same
    # roundings, so float64 parameters still agree to 1e-10.
    def before(k, pair):
        if k == 3:
            pair.set_all(0, lr=0.01, momentum=0.8, weight_decay=0.05)

    with jax.enable_x64(True):
        Pair(optim.Muon, torch.optim.Muon, kwargs, dtype=dtype, shapes=MATRICES).run(7, before)


def test_muon_refuses_other_than_2d_params():
    message = "Muon only supports 2D parameters whereas we found a parameter with size: (3,)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optim.Muon({"w": jnp.ones((2, 2)), "b": jnp.ones(3)})
    opt = optim.Muon({"w": jnp.ones((2, 2))})
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.add_param_group({"params": [jnp.ones(3)]})
    assert len(opt.param_groups) == 1 and len(opt._store.params) == 1


EMBED = {"b": (4,), "e": (6, 3), "w": (3, 4)}


class SparsePair(Pair):
    """torch gets sparse COO gradients listing the rows that are non-zero in ours."""

    def grads(self, k, skip=()):
        ours, _ = super().grads(k, skip)
        ours = {n: g.at[jnp.arange(g.shape[0]) % 3 == k % 3].set(0.0) for n, g in ours.items()}
        theirs = {}
        for n, g in ours.items():
            dense = torch.tensor(np.asarray(g))
            rows = torch.nonzero(dense.reshape(dense.shape[0], -1).abs().sum(1)).reshape(-1)
            theirs[n] = torch.sparse_coo_tensor(
                rows[None], dense[rows], dense.shape, check_invariants=True
            ).coalesce()
        return ours, theirs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sparse_adam_matches_torch_on_sparse_gradients(dtype):
    with jax.enable_x64(True):
        pair = SparsePair(
            optim.SparseAdam,
            torch.optim.SparseAdam,
            dict(lr=0.05, betas=(0.8, 0.95)),
            dtype=dtype,
            shapes=EMBED,
            groups=[(["b", "e"], {}), (["w"], {"lr": 0.02, "maximize": True})],
        )
        pair.run(7, _halve_lr_at(4))
        assert pair.ours.state_dict()["state"][0]["step"] == 7


def test_sparse_adam_with_an_embedding_layer():
    # torch.nn.Embedding(sparse=True) against the same lookup written in JAX.
    with jax.enable_x64(True):
        table = np.random.default_rng(0).normal(size=(10, 3))
        emb = torch.nn.Embedding(10, 3, sparse=True, dtype=torch.float64)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(table))
        topt = torch.optim.SparseAdam(emb.parameters(), lr=0.1)
        opt = optim.SparseAdam({"weight": jnp.asarray(table)}, lr=0.1)

        def loss(p, ids):
            return jnp.sum(jnp.sin(p["weight"][ids]))

        for ids in ([1, 4, 4], [0, 9], [4, 5, 6, 1]):
            topt.zero_grad()
            torch.sin(emb(torch.tensor(ids))).sum().backward()
            topt.step()
            opt.zero_grad()
            opt.backward(loss, jnp.asarray(ids))
            opt.step()
        np.testing.assert_allclose(
            opt.params["weight"], emb.weight.detach().numpy(), rtol=1e-12, atol=1e-14
        )
        ours, theirs = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(ours[key], theirs[key].numpy(), rtol=1e-12, atol=1e-14)
        assert ours["step"] == theirs["step"] == 3


def test_sparse_adam_refuses_complex_params_with_torch_message():
    message = "Complex params at indices [[0, 1]]: SparseAdam does not support complex parameters"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        torch.optim.SparseAdam([torch.zeros(2), torch.zeros(2, dtype=torch.complex64)])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        optim.SparseAdam([jnp.zeros(2), jnp.zeros(2, jnp.complex64)])


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (optim.Adamax, dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (optim.Adamax, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
        (optim.Adamax, dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (optim.Adamax, dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
        (optim.SparseAdam, dict(lr=0.0), "Invalid learning rate: 0.0"),
        (optim.SparseAdam, dict(eps=0.0), "Invalid epsilon value: 0.0"),
        (optim.SparseAdam, dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (optim.Adafactor, dict(lr=-1.0), "Learning rate should be >= 0 but is: -1.0"),
        (optim.Adafactor, dict(beta2_decay=0.5), "beta2_decay should be <= 0 but is: 0.5"),
        (optim.Adafactor, dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0 but is: -1.0"),
        (optim.Adafactor, dict(eps=(None, -1.0)), "epsilon2 should be >= 0 but is: -1.0"),
        (optim.Adafactor, dict(d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
        (optim.Adafactor, dict(weight_decay=-1.0), "weight_decay should be >= 0 but is: -1.0"),
        (optim.Muon, dict(lr=-1.0), "Learning rate should be >= 0 but is: -1.0"),
        (optim.Muon, dict(momentum=-1.0), "momentum should be >= 0 but is: -1.0"),
        (optim.Muon, dict(weight_decay=-1.0), "weight decay should be >= 0 but is: -1.0"),
        (
            optim.Muon,
            dict(adjust_lr_fn="other"),
            "Adjust learning rate function other is not supported",
        ),
    ],
    ids=lambda x: x.__name__ if isinstance(x, type) else None,
)
def test_invalid_options_raise_torch_messages(cls, kwargs, message):
    shape = (2, 2)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(torch.optim, cls.__name__)([torch.zeros(shape, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls({"w": jnp.zeros(shape)}, **kwargs)


@pytest.mark.parametrize(
    "cls,tcls,kwargs,shapes",
    [
        (optim.Adamax, torch.optim.Adamax, dict(lr=0.01), None),
        (optim.Adafactor, torch.optim.Adafactor, dict(lr=0.05), None),
        (optim.Muon, torch.optim.Muon, dict(lr=0.02), MATRICES),
    ],
    ids=["adamax", "adafactor", "muon"],
)
def test_checkpoints_cross_both_ways(cls, tcls, kwargs, shapes):
    with jax.enable_x64(True):
        extra = {} if shapes is None else dict(shapes=shapes)
        pair = Pair(cls, tcls, kwargs, dtype="float64", **extra)
        pair.run(3)
        start = {n: t.detach().numpy().copy() for n, t in pair.tparams.items()}
        for source in (pair.ours.state_dict(), pair.theirs.state_dict()):
            fresh = Pair(cls, tcls, kwargs, dtype="float64", start=start, **extra)
            fresh.grad_fn = pair.grad_fn
            fresh.resume(roundtrip(source), start=3, steps=2)
