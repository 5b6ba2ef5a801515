"""rprop, asgd, sparse_adam, torch_adafactor and muon against real torch.optim, step by step;
the classic adafactor and rprop against optax.

Tolerances, each with its reason:
- float64, 1e-10 relative (atol 1e-12): the same IEEE operations, a few associated
  differently (an update formed as ``new_p - p`` and added back, ``lr * ratio``
  applied in two multiplies).
- float32 (x64 on: hyperparameters are float64 scalars like torch's Python
  floats), 1e-5 relative with a 1e-6 absolute floor for entries that cross zero:
  float32 rounding of the same operations in a different order (norms and means
  reduced in a different order in Adafactor).
- float32_x32 (JAX's default float32 hyperparameters), 1e-5 relative: scalars
  such as ASGD's ``1 - lambd * eta`` are formed in float32 instead of double,
  about 6e-8 relative per step.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optimlab as ol
from tests.reference.harness import compare_with_torch, find

TOL = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=1e-5, atol=1e-6),
    "float32_x32": dict(rtol=1e-5, atol=1e-6),
}
DTYPES = ["float64", "float32", "float32_x32"]


def _fast_first(grid, fast):
    """The configurations ``fast`` (indices) run in CI; the rest are marked slow."""
    return [c if i in fast else pytest.param(c, marks=pytest.mark.slow) for i, c in enumerate(grid)]


def _ids(cfg):
    return "-".join(f"{k}={v}" for k, v in cfg.items())


def _count(state):
    return find(state, ol.HyperparamsState).count


# ----------------------------------------------------------------------------- rprop

RPROP_GRID = [
    dict(etas=e, step_sizes=s, maximize=m)
    for e, s, m in itertools.product(
        [(0.5, 1.2), (0.3, 1.7)], [(1e-6, 50.0), (1e-3, 0.05)], [False, True]
    )
]


def rprop_state(state):
    s = find(state, ol.ScaleByRpropState)
    return {"prev": s.prev, "step_size": s.step_size, "step": _count(state)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", _fast_first(RPROP_GRID, {0, 7}), ids=_ids)
def test_rprop_matches_torch(cfg, dtype):
    (em, ep), (lo, hi) = cfg["etas"], cfg["step_sizes"]
    compare_with_torch(
        lambda: ol.rprop(0.02, em, ep, lo, hi, delayed_update=False, maximize=cfg["maximize"]),
        torch.optim.Rprop,
        dict(lr=0.02, **cfg),
        rprop_state,
        dtype=dtype,
        **TOL[dtype],
    )


def test_rprop_is_optax_s_one_step_late_rule_by_default_and_torch_s_on_request():
    # optax's rprop (optimlab's default) moves by the previous step's update:
    # nothing on step 1, then torch's updates one step late. Constant-sign
    # gradients show it exactly.
    params = jnp.array([1.0, -2.0])
    grads = [jnp.array([1.0, -1.0]) * (k + 1) for k in range(5)]
    torch_rule, default, theirs = (
        ol.rprop(0.1, delayed_update=False),
        ol.rprop(0.1),
        optax.rprop(0.1),
    )
    so, sd, st = torch_rule.init(params), default.init(params), theirs.init(params)
    uo, ud, ut = [], [], []
    for g in grads:
        u, so = torch_rule.update(g, so, params)
        uo.append(np.asarray(u))
        u, sd = default.update(g, sd, params)
        ud.append(np.asarray(u))
        with jax.numpy_dtype_promotion("standard"):
            u, st = theirs.update(g, st, params)
        ut.append(np.asarray(u))
    np.testing.assert_allclose(uo[0], [-0.1, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(ut[0], [0.0, 0.0])
    np.testing.assert_allclose(np.stack(ut[1:]), np.stack(uo[:-1]), rtol=1e-6)
    np.testing.assert_array_equal(np.stack(ud), np.stack(ut))


# ----------------------------------------------------------------------------- asgd

ASGD_GRID = [
    dict(lambd=la, t0=t0, weight_decay=w, maximize=m)
    for la, t0, w, m in itertools.product([1e-4, 0.5], [1e6, 5.0], [0.0, 0.05], [False, True])
]


def asgd_state(state):
    s = find(state, ol.ScaleByAsgdState)
    return {"ax": s.ax, "eta": s.eta, "mu": s.mu, "step": _count(state)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", _fast_first(ASGD_GRID, {15}), ids=_ids)
def test_asgd_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.asgd(0.05, **cfg),
        torch.optim.ASGD,
        dict(lr=0.05, **cfg),
        asgd_state,
        dtype=dtype,
        **TOL[dtype],
    )


def test_asgd_averaged_params_is_the_mean_of_the_iterates_after_t0():
    tx = ol.asgd(0.1, lambd=0.0, t0=0.0)
    params = jnp.array([1.0, -3.0])
    state = tx.init(params)
    iterates = []
    for _ in range(6):
        updates, state = tx.update(params, state, params)
        params = ol.apply_updates(params, updates)
        iterates.append(np.asarray(params))
    # With t0 = 0, step t averages with weight mu_{t-1} = 1/max(1, t-1): ax is the
    # running mean of p_2 .. p_6 (torch's schedule, one step after t0 + 1).
    np.testing.assert_allclose(ol.asgd_averaged_params(state), np.mean(iterates[1:], 0), rtol=1e-6)


# ----------------------------------------------------------------------------- sparse adam


def _run_sparse_adam(dtype, maximize, steps=20, rows=10, dim=4):
    """Two embedding tables looked up at random rows; torch gets Embedding's sparse grads."""
    x64 = dtype in ("float64", "float32")
    np_dtype = np.float64 if dtype == "float64" else np.float32
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    rng = np.random.default_rng(0)
    tables = [rng.normal(size=(rows, dim)), rng.normal(size=(rows + 3, dim))]
    lookups = [[rng.integers(0, t.shape[0], size=5) for t in tables] for _ in range(steps)]
    targets = [[rng.normal(size=(5, dim)) for _ in tables] for _ in range(steps)]
    worst = 0.0
    with jax.enable_x64(x64):
        embs = [torch.nn.Embedding(t.shape[0], dim, sparse=True, dtype=torch_dtype) for t in tables]
        for e, t in zip(embs, tables, strict=True):
            e.weight.data = torch.tensor(t.astype(np_dtype), dtype=torch_dtype)
        topt = torch.optim.SparseAdam(
            [e.weight for e in embs], lr=0.05, betas=(0.8, 0.95), eps=1e-6, maximize=maximize
        )
        tx = ol.sparse_adam(0.05, 0.8, 0.95, 1e-6, maximize=maximize)
        ours = [jnp.asarray(t.astype(np_dtype)) for t in tables]
        state = tx.init(ours)

        def loss(params, idxs, tgts):
            return sum(
                jnp.sum((p[idx] - tgt) ** 2 * 0.5)
                for p, idx, tgt in zip(params, idxs, tgts, strict=True)
            )

        @jax.jit
        def step(params, state, idxs, tgts):
            return tx.update(jax.grad(loss)(params, idxs, tgts), state, params)

        for k in range(steps):
            topt.zero_grad()
            tloss = sum(
                ((e(torch.tensor(idx)) - torch.tensor(tgt, dtype=torch_dtype)) ** 2 * 0.5).sum()
                for e, idx, tgt in zip(embs, lookups[k], targets[k], strict=True)
            )
            tloss.backward()
            assert all(e.weight.grad.is_sparse for e in embs)
            topt.step()
            updates, state = step(
                ours,
                state,
                [jnp.asarray(i) for i in lookups[k]],
                [jnp.asarray(t.astype(np_dtype)) for t in targets[k]],
            )
            ours = ol.apply_updates(ours, updates)
            s = find(state, ol.ScaleBySparseAdamState)
            for i, e in enumerate(embs):
                st = topt.state[e.weight]
                for mine, theirs in (
                    (ours[i], e.weight),
                    (s.mu[i], st["exp_avg"]),
                    (s.nu[i], st["exp_avg_sq"]),
                ):
                    theirs = theirs.detach().numpy()
                    np.testing.assert_allclose(np.asarray(mine, np.float64), theirs, **TOL[dtype])
                    scale = np.maximum(np.abs(theirs), TOL[dtype]["atol"] / TOL[dtype]["rtol"])
                    worst = max(worst, float(np.max(np.abs(np.asarray(mine) - theirs) / scale)))
                assert int(_count(state)) == st["step"]
            # Rows not looked up this step keep their moments (lazy update).
            untouched = np.setdiff1d(np.arange(tables[0].shape[0]), lookups[k][0])
            assert untouched.size and np.all(np.asarray(updates[0])[untouched] == 0)
    return worst


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "maximize", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["min", "max"]
)
def test_sparse_adam_matches_torch_embedding(maximize, dtype):
    _run_sparse_adam(dtype, maximize)


# ----------------------------------------------------------------------------- torch adafactor

MATRIX_SHAPES = {"w": (3, 4), "t": (2, 3, 5), "u": (4, 4)}
VECTOR_SHAPES = {"b": (4,), "s": (), "v": (6,)}
ADAFACTOR_GRID = [
    dict(lr=lr, eps=e, d=d, weight_decay=w, maximize=m)
    for lr, e, d, w, m in itertools.product(
        [0.05, 1.0], [(None, 1e-3), (1e-4, 0.5)], [1.0, 2.0], [0.0, 0.05], [False, True]
    )
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [MATRIX_SHAPES, VECTOR_SHAPES], ids=["factored", "vectors"])
@pytest.mark.parametrize("cfg", _fast_first(ADAFACTOR_GRID, {27}), ids=_ids)
def test_torch_adafactor_matches_torch(cfg, shapes, dtype):
    if cfg["lr"] == 1.0 and cfg["d"] == 2.0 and cfg["eps"][0] is not None:
        pytest.skip("thinned grid")  # every flag is still covered on and off

    def state_map(state):
        s = find(state, ol.ScaleByTorchAdafactorState)
        keys = (
            {"row_var": s.row_var, "col_var": s.col_var}
            if shapes is MATRIX_SHAPES
            else {"variance": s.variance}
        )
        return {**keys, "step": _count(state)}

    eps1, eps2 = cfg["eps"]
    compare_with_torch(
        lambda: ol.torch_adafactor(
            cfg["lr"],
            beta2_decay=-0.8,
            eps1=eps1,
            eps2=eps2,
            d=cfg["d"],
            weight_decay=cfg["weight_decay"],
            maximize=cfg["maximize"],
        ),
        torch.optim.Adafactor,
        cfg,
        state_map,
        dtype=dtype,
        shapes=shapes,
        **TOL[dtype],
    )


# ----------------------------------------------------------------------------- muon

MUON_SHAPES = {"w": (3, 4), "v": (5, 3), "u": (4, 4)}
MUON_GRID = [
    dict(nesterov=n, weight_decay=w, adjust_lr_fn=a)
    for n, w, a in itertools.product([True, False], [0.0, 0.1], [None, "match_rms_adamw"])
]


def muon_state(state):
    return {"momentum_buffer": find(state, ol.ScaleByMuonState).momentum}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", _fast_first(MUON_GRID, {7}), ids=_ids)
def test_muon_matches_torch_on_matrices(cfg, dtype):
    # torch runs Newton-Schulz in bfloat16; so does muon by default, with the same
    # roundings, so the bf16 result is bit-identical on these small matrices.
    compare_with_torch(
        lambda: ol.torch_muon(0.02, momentum=0.9, **cfg),
        torch.optim.Muon,
        dict(lr=0.02, momentum=0.9, **cfg),
        muon_state,
        dtype=dtype,
        shapes=MUON_SHAPES,
        **TOL[dtype],
    )


def _adam_fallback_state(state):
    s = find(state, ol.ScaleByMuonState).adam
    return {"exp_avg": s.mu, "exp_avg_sq": s.nu, "step": _count(state)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [pytest.param(0.0, marks=pytest.mark.slow), 0.1])
def test_muon_adam_fallback_matches_torch_adamw(wd, dtype):
    compare_with_torch(
        lambda: ol.torch_muon(0.01, adam_b1=0.8, adam_b2=0.95, adam_eps=1e-6, adam_weight_decay=wd),
        torch.optim.AdamW,
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd),
        _adam_fallback_state,
        dtype=dtype,
        shapes={"b": (4,), "s": (), "t": (2, 3, 2)},
        **TOL[dtype],
    )


def test_muon_mixed_tree_splits_between_muon_and_adamw():
    params = {"w": jnp.ones((3, 4)) * 0.5, "b": jnp.arange(3.0)}
    grads = {"w": jnp.linspace(-1, 1, 12).reshape(3, 4), "b": jnp.array([0.3, -1.0, 2.0])}
    tx = ol.torch_muon(0.02, weight_decay=0.1, adam_weight_decay=0.01)
    u, _ = tx.update(grads, tx.init(params), params)
    uw, _ = ol.torch_muon(0.02, weight_decay=0.1).update(
        {"w": grads["w"]}, ol.torch_muon(0.02).init({"w": params["w"]}), {"w": params["w"]}
    )
    ref = ol.adamw(0.02, weight_decay=0.01)
    ub, _ = ref.update(grads["b"], ref.init(params["b"]), params["b"])
    np.testing.assert_array_equal(u["w"], uw["w"])
    np.testing.assert_allclose(u["b"], ub, rtol=1e-6)


# ----------------------------------------------------------------------------- classic adafactor

OPTAX_ADAFACTOR = [
    dict(learning_rate=0.05, min_dim_size_to_factor=2),
    dict(learning_rate=None, min_dim_size_to_factor=2, multiply_by_parameter_scale=True),
    dict(
        learning_rate=0.05,
        min_dim_size_to_factor=2,
        momentum=0.9,
        weight_decay_rate=1e-3,
        clipping_threshold=None,
        decay_rate=0.7,
        decay_offset=3,
    ),
    dict(learning_rate=0.05, factored=False, multiply_by_parameter_scale=False),
    dict(learning_rate=0.05),  # default min_dim 128: nothing factored
]


@pytest.mark.parametrize("cfg", _fast_first(OPTAX_ADAFACTOR, {2}), ids=lambda c: str(sorted(c)))
def test_adafactor_matches_optax(cfg):
    # float32 (JAX's default mode, as optax), 1e-5 relative: the same operations;
    # reductions and the products of the factors associate differently.
    rng = np.random.default_rng(0)
    shapes = {"w": (3, 4), "t": (2, 5, 3), "b": (4,), "s": ()}
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    curv = {k: jnp.asarray(rng.uniform(0.5, 2.0, size=s), jnp.float32) for k, s in shapes.items()}
    ours, theirs = ol.adafactor(**cfg), optax.adafactor(**cfg)
    po, pt = params, params
    so, st = ours.init(po), theirs.init(pt)
    for k in range(20):
        noise = {
            n: jnp.asarray(rng.normal(scale=0.3, size=s), jnp.float32) for n, s in shapes.items()
        }
        uo, so = ours.update({n: curv[n] * po[n] + noise[n] for n in po}, so, po)
        with jax.numpy_dtype_promotion("standard"):
            ut, st = theirs.update({n: curv[n] * pt[n] + noise[n] for n in pt}, st, pt)
            pt = optax.apply_updates(pt, ut)
        po = ol.apply_updates(po, uo)
        for n in po:
            np.testing.assert_allclose(po[n], pt[n], rtol=1e-5, atol=1e-6, err_msg=f"{n} {k}")
