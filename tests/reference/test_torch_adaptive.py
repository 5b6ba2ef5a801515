"""adamax, nadam, nadamw, radam, adagrad, adadelta and rmsprop against real torch.optim.

Each alias runs side by side with its torch class for 20 steps over a grid of
flags (every flag on and off, weight decay on and off, maximize), comparing the
parameters and every torch state leaf at every step. The CI run takes the
all-off and all-on corners of each grid; the full grids are marked ``slow``.

Tolerances, each with its reason:
- float64, 1e-12 relative and absolute: the same IEEE double
  operations, associated differently in places (torch folds ``-lr`` into an
  ``addcdiv``; optimlab scales the direction by ``lr`` afterwards).
- float32 (x64 enabled, so hyperparameters are float64 scalars like torch's
  Python floats), 1e-5 relative with a 1e-6 absolute floor for entries that
  cross zero: float32 rounding of the same operations in a different order.
- float32_x32 (JAX's default: hyperparameters stored as float32), 1e-4
  relative: torch forms ``1 - beta``, ``1 - beta**t`` and NAdam's/RAdam's
  scalar coefficients in double precision, while float32 hyperparameters make
  ``1 - 0.999`` off by 1.3e-5 relative (and ``rho_t`` or ``1 - mu_product`` by
  more), which shows in the second moments and compounds over the 20 steps.
"""

from __future__ import annotations

import contextlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optimlab as ol
from tests.reference.harness import compare_with_torch, find, torch_terms

TOL = {
    "float64": dict(rtol=1e-12, atol=1e-12),
    "float32": dict(rtol=1e-5, atol=1e-6),
    "float32_x32": dict(rtol=1e-4, atol=1e-6),
}
DTYPES = ["float32", "float64", "float32_x32"]

# The core aliases default to optax's numerics; torch's variant is selected by these.
TORCH_ADAGRAD = dict(initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False)
TORCH_RMSPROP = dict(decay=0.99, eps_in_sqrt=False)
TORCH_RADAM = dict(eps_root=None, eps_after_bias_correction=False)


def _step(state):
    return find(state, ol.HyperparamsState).count


def adamax_state(state):
    s = find(state, ol.ScaleByAdamaxState)
    return {"exp_avg": s.mu, "exp_inf": s.nu, "step": _step(state)}


def nadam_state(state):
    s = find(state, ol.ScaleByNadamState)
    return {"exp_avg": s.mu, "exp_avg_sq": s.nu, "mu_product": s.mu_product, "step": _step(state)}


def radam_state(state):
    s = find(state, ol.ScaleByRadamState)
    return {"exp_avg": s.mu, "exp_avg_sq": s.nu, "step": _step(state)}


def adagrad_state(state):
    return {"sum": find(state, ol.ScaleByAdagradState).sum_of_squares, "step": _step(state)}


def adadelta_state(state):
    s = find(state, ol.ScaleByAdadeltaState)
    return {"square_avg": s.square_avg, "acc_delta": s.acc_delta, "step": _step(state)}


def rmsprop_state(state):
    s = find(state, ol.ScaleByRmspropState)
    out = {"square_avg": s.square_avg, "step": _step(state)}
    if s.grad_avg is not None:
        out["grad_avg"] = s.grad_avg
    try:
        out["momentum_buffer"] = find(state, ol.TraceState).trace
    except AssertionError:
        pass
    return out


def _grid(**axes):
    """Every combination of the axes; the all-first and all-last corners run in CI."""
    names = list(axes)
    combos = list(itertools.product(*axes.values()))
    corners = {combos[0], combos[-1]}
    params = []
    for combo in combos:
        cfg = dict(zip(names, combo, strict=True))
        cid = "-".join(f"{k}={v}" for k, v in cfg.items())
        marks = () if combo in corners else (pytest.mark.slow,)
        params.append(pytest.param(cfg, id=cid, marks=marks))
    return params


@contextlib.contextmanager
def torch_default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _torch_default_for(dtype):
    # torch keeps NAdam's mu_product in its default dtype and optimlab in the
    # hyperparameter dtype (float64 under x64): run torch with float64 defaults
    # for the float64 comparison, as a float64 torch user would.
    return torch_default_dtype(torch.float64 if dtype == "float64" else torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", _grid(weight_decay=[0.0, 0.1], maximize=[False, True]))
def test_adamax_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.adamax(0.01, b1=0.8, b2=0.95, eps=1e-6, **cfg),
        torch.optim.Adamax,
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, **cfg),
        adamax_state,
        dtype=dtype,
        **TOL[dtype],
    )


NADAM_GRID = _grid(
    decoupled_weight_decay=[False, True],
    weight_decay=[0.0, 0.1],
    maximize=[False, True],
    momentum_decay=[4e-3, 0.3],
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", NADAM_GRID)
def test_nadam_matches_torch(cfg, dtype):
    with _torch_default_for(dtype):
        compare_with_torch(
            lambda: ol.nadam(0.01, b1=0.85, b2=0.98, eps=1e-7, **cfg),
            torch.optim.NAdam,
            dict(lr=0.01, betas=(0.85, 0.98), eps=1e-7, **cfg),
            nadam_state,
            dtype=dtype,
            **TOL[dtype],
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", _grid(weight_decay=[0.05, 0.2], maximize=[False, True]))
def test_nadamw_matches_torch_decoupled_nadam(cfg, dtype):
    with _torch_default_for(dtype):
        compare_with_torch(
            lambda: ol.nadamw(0.01, momentum_decay=4e-3, **cfg),
            torch.optim.NAdam,
            dict(lr=0.01, decoupled_weight_decay=True, **cfg),
            nadam_state,
            dtype=dtype,
            **TOL[dtype],
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    _grid(decoupled_weight_decay=[False, True], weight_decay=[0.0, 0.1], maximize=[False, True]),
)
def test_radam_matches_torch(cfg, dtype):
    # b2 = 0.99 and 0.999 cross the rho_t > 5 threshold at steps 6 and 7, so
    # both branches run within the 20 steps.
    compare_with_torch(
        lambda: ol.radam(0.01, b2=0.99, **TORCH_RADAM, **cfg),
        torch.optim.RAdam,
        dict(lr=0.01, betas=(0.9, 0.99), **cfg),
        radam_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    _grid(
        lr_decay=[0.0, 0.05],
        initial_accumulator_value=[0.0, 0.1],
        weight_decay=[0.0, 0.1],
        maximize=[False, True],
    ),
)
def test_adagrad_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.adagrad(0.05, eps=1e-8, eps_in_sqrt=False, **cfg),
        torch.optim.Adagrad,
        dict(lr=0.05, eps=1e-8, **cfg),
        adagrad_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg", _grid(rho=[0.9, 0.5], weight_decay=[0.0, 0.1], maximize=[False, True])
)
def test_adadelta_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.adadelta(1.0, eps=1e-4, **cfg),
        torch.optim.Adadelta,
        dict(eps=1e-4, **cfg),
        adadelta_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    _grid(
        centered=[False, True], momentum=[0.0, 0.9], weight_decay=[0.0, 0.1], maximize=[False, True]
    ),
)
def test_rmsprop_matches_torch(cfg, dtype):
    compare_with_torch(
        lambda: ol.rmsprop(
            0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, **torch_terms(cfg, "momentum")
        ),
        torch.optim.RMSprop,
        dict(lr=0.01, alpha=0.9, eps=1e-6, **cfg),
        rmsprop_state,
        dtype=dtype,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adagrad_lr_and_lr_decay_change_midway_match_torch(dtype):
    # torch reads lr and lr_decay afresh at every step: clr = lr / (1 + (t-1) * lr_decay).
    def before_step(k, topt, state):
        if k == 7:
            for g in topt.param_groups:
                g["lr"], g["lr_decay"] = 0.02, 0.2
            return ol.set_hyperparams(state, learning_rate=0.02, lr_decay=0.2)
        return state

    compare_with_torch(
        lambda: ol.adagrad(0.05, lr_decay=0.05, **TORCH_ADAGRAD),
        torch.optim.Adagrad,
        dict(lr=0.05, lr_decay=0.05),
        adagrad_state,
        dtype=dtype,
        before_step=before_step,
        **TOL[dtype],
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_radam_default_betas_match_torch(dtype):
    compare_with_torch(
        lambda: ol.radam(1e-2, **TORCH_RADAM),
        torch.optim.RAdam,
        dict(lr=1e-2),
        radam_state,
        dtype=dtype,
        steps=20,
        **TOL[dtype],
    )


def test_nadam_float64_with_torch_float32_defaults_stays_close():
    # With torch's default dtype float32, torch rounds mu_product to float32 at
    # every step while optimlab (x64) keeps it in float64: the two then differ by
    # float32 rounding of mu_product alone (~1e-7), well above float64 noise.
    worst = compare_with_torch(
        lambda: ol.nadam(0.01, momentum_decay=4e-3),
        torch.optim.NAdam,
        dict(lr=0.01),
        nadam_state,
        dtype="float64",
        rtol=1e-6,
        atol=1e-9,
    )
    assert worst["mu_product"] > 1e-12


_P = [torch.zeros(1, requires_grad=True)]
ERROR_PARITY = [
    (lambda: ol.adamax(-1.0), torch.optim.Adamax, dict(lr=-1.0)),
    (lambda: ol.adamax(eps=-1.0), torch.optim.Adamax, dict(eps=-1.0)),
    (lambda: ol.adamax(b1=1.0), torch.optim.Adamax, dict(betas=(1.0, 0.999))),
    (lambda: ol.adamax(b2=-0.5), torch.optim.Adamax, dict(betas=(0.9, -0.5))),
    (lambda: ol.adamax(weight_decay=-0.1), torch.optim.Adamax, dict(weight_decay=-0.1)),
    (lambda: ol.nadam(momentum_decay=-0.004), torch.optim.NAdam, dict(momentum_decay=-0.004)),
    (lambda: ol.nadam(b1=1.5), torch.optim.NAdam, dict(betas=(1.5, 0.999))),
    (
        lambda: ol.nadamw(weight_decay=-0.01),
        torch.optim.NAdam,
        dict(weight_decay=-0.01, decoupled_weight_decay=True),
    ),
    (lambda: ol.radam(eps=-1e-8), torch.optim.RAdam, dict(eps=-1e-8)),
    (lambda: ol.radam(b2=1.1), torch.optim.RAdam, dict(betas=(0.9, 1.1))),
    (lambda: ol.adagrad(lr_decay=-0.1), torch.optim.Adagrad, dict(lr_decay=-0.1)),
    (
        lambda: ol.adagrad(initial_accumulator_value=-1.0),
        torch.optim.Adagrad,
        dict(initial_accumulator_value=-1.0),
    ),
    (lambda: ol.adagrad(eps=-1e-10), torch.optim.Adagrad, dict(eps=-1e-10)),
    (lambda: ol.adadelta(rho=1.5), torch.optim.Adadelta, dict(rho=1.5)),
    (lambda: ol.adadelta(rho=-0.1), torch.optim.Adadelta, dict(rho=-0.1)),
    (lambda: ol.adadelta(weight_decay=-1.0), torch.optim.Adadelta, dict(weight_decay=-1.0)),
    (lambda: ol.rmsprop(decay=-0.99), torch.optim.RMSprop, dict(alpha=-0.99)),
    (lambda: ol.rmsprop(momentum=-0.9), torch.optim.RMSprop, dict(momentum=-0.9)),
    (
        lambda: ol.rmsprop(-0.01, momentum=-0.9),
        torch.optim.RMSprop,
        dict(lr=-0.01, momentum=-0.9),
    ),  # the first failing check is the same
]


@pytest.mark.parametrize(
    "ours,torch_cls,torch_kwargs",
    ERROR_PARITY,
    ids=[f"{c.__name__}-{'-'.join(k)}" for _, c, k in ERROR_PARITY],
)
def test_validation_messages_are_torch_s(ours, torch_cls, torch_kwargs):
    with pytest.raises(ValueError) as theirs:
        torch_cls(_P, **torch_kwargs)
    with pytest.raises(ValueError) as mine:
        ours()
    # torch's message, after the name of the factory called (optimlab.optim's classes
    # raise torch's message alone: tests/optim).
    function, _, message = str(mine.value).partition(": ")
    assert message == str(theirs.value) and callable(getattr(ol, function, None)), mine.value


COMPLEX = [
    (
        "adamax",
        lambda: ol.adamax(0.05, weight_decay=0.1, componentwise=True),
        torch.optim.Adamax,
        dict(lr=0.05, weight_decay=0.1),
    ),
    ("nadam", lambda: ol.nadam(0.05, momentum_decay=4e-3), torch.optim.NAdam, dict(lr=0.05)),
    (
        "nadamw",
        lambda: ol.nadamw(0.05, weight_decay=0.1, momentum_decay=4e-3),
        torch.optim.NAdam,
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    (
        "radam",
        lambda: ol.radam(0.05, weight_decay=0.1, componentwise=True, **TORCH_RADAM),
        torch.optim.RAdam,
        dict(lr=0.05, weight_decay=0.1),
    ),
    (
        "adagrad",
        lambda: ol.adagrad(
            0.05,
            initial_accumulator_value=0.1,
            lr_decay=0.01,
            eps=1e-10,
            eps_in_sqrt=False,
            componentwise=True,
        ),
        torch.optim.Adagrad,
        dict(lr=0.05, initial_accumulator_value=0.1, lr_decay=0.01),
    ),
    (
        "adadelta",
        lambda: ol.adadelta(1.0, weight_decay=0.1, componentwise=True),
        torch.optim.Adadelta,
        dict(weight_decay=0.1),
    ),
    (
        "rmsprop",
        lambda: ol.rmsprop(0.01, momentum=0.9, centered=True, componentwise=True, **TORCH_RMSPROP),
        torch.optim.RMSprop,
        dict(lr=0.01, momentum=0.9, centered=True),
    ),
]


@pytest.mark.parametrize(
    "ours,torch_cls,torch_kwargs", [c[1:] for c in COMPLEX], ids=[c[0] for c in COMPLEX]
)
def test_complex_params_match_torch(ours, torch_cls, torch_kwargs):
    # torch treats complex tensors componentwise (view_as_real); so does optimlab with
    # componentwise=True (its default, where optax shares the name, is optax's rule).
    # float64 (complex128), 1e-12 relative: the same double operations.
    rng = np.random.default_rng(0)
    z0 = rng.normal(size=5) + 1j * rng.normal(size=5)
    noise = [rng.normal(size=5) + 1j * rng.normal(size=5) for _ in range(12)]
    with jax.enable_x64(True), _torch_default_for("float64"):
        tz = torch.tensor(z0, dtype=torch.complex128, requires_grad=True)
        topt = torch_cls([tz], **torch_kwargs)
        tx = ours()
        z = jnp.asarray(z0, jnp.complex128)
        state = tx.init(z)
        step = jax.jit(tx.update)
        for k in range(12):
            tz.grad = torch.tensor(2.0 * tz.detach().numpy() + noise[k])
            topt.step()
            updates, state = step(jnp.asarray(2.0 * np.asarray(z) + noise[k]), state, z)
            z = ol.apply_updates(z, updates)
            assert z.dtype == jnp.complex128
            np.testing.assert_allclose(
                np.asarray(z), tz.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"step {k}"
            )
