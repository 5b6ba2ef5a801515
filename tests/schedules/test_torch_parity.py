"""Torch set: equal to torch.optim.lr_scheduler's get_last_lr() at every step (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import schedules as S
from tests.schedules import torch_ref as T
from tests.schedules.torch_ref import BASE_LR, tls

N = 320
STEPS = np.arange(N)
# 1e-6 relative (the brief's bound; torch's recursions drift by a few ulps per step);
# the absolute floor only matters where both sides are ~0 (cosine minima).
RTOL, ATOL = 1e-6, 1e-14


def ours(fn, steps=STEPS):
    with jax.enable_x64(True):
        out = jax.jit(jax.vmap(fn))(jnp.asarray(steps))
        assert out.dtype == jnp.float64
        return np.asarray(out)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


# (id, torch scheduler factory, optimlab schedule giving the learning rate)
LR_CASES = [
    ("StepLR-30", lambda o: tls.StepLR(o, 30), S.step(BASE_LR, 30)),
    ("StepLR-7-0.9", lambda o: tls.StepLR(o, 7, gamma=0.9), S.step(BASE_LR, 7, 0.9)),
    ("StepLR-1-0.99", lambda o: tls.StepLR(o, 1, gamma=0.99), S.step(BASE_LR, 1, 0.99)),
    (
        "MultiStepLR",
        lambda o: tls.MultiStepLR(o, [30, 80, 200]),
        S.multistep(BASE_LR, [30, 80, 200]),
    ),
    (
        "MultiStepLR-repeated",
        lambda o: tls.MultiStepLR(o, [10, 50, 50, 50, 120], gamma=0.5),
        S.multistep(BASE_LR, [10, 50, 50, 50, 120], 0.5),
    ),
    (
        "MultiStepLR-zero",
        lambda o: tls.MultiStepLR(o, [0, 299], gamma=0.3),
        S.multistep(BASE_LR, [0, 299], 0.3),
    ),
    ("ConstantLR", lambda o: tls.ConstantLR(o), lambda t: BASE_LR * S.constant_factor()(t)),
    (
        "ConstantLR-0.5-100",
        lambda o: tls.ConstantLR(o, 0.5, 100),
        lambda t: BASE_LR * S.constant_factor(0.5, 100)(t),
    ),
    (
        "ConstantLR-1.0-1",
        lambda o: tls.ConstantLR(o, 1.0, 1),
        lambda t: BASE_LR * S.constant_factor(1.0, 1)(t),
    ),
    ("LinearLR", lambda o: tls.LinearLR(o), lambda t: BASE_LR * S.linear_factor()(t)),
    (
        "LinearLR-decay",
        lambda o: tls.LinearLR(o, 1.0, 0.05, 250),
        lambda t: BASE_LR * S.linear_factor(1.0, 0.05, 250)(t),
    ),
    (
        "LinearLR-warmup",
        lambda o: tls.LinearLR(o, 0.01, 1.0, 100),
        lambda t: BASE_LR * S.linear_factor(0.01, 1.0, 100)(t),
    ),
    ("ExponentialLR-0.99", lambda o: tls.ExponentialLR(o, 0.99), S.exponential(BASE_LR, 0.99)),
    ("ExponentialLR-0.9", lambda o: tls.ExponentialLR(o, 0.9), S.exponential(BASE_LR, 0.9)),
    ("ExponentialLR-1.01", lambda o: tls.ExponentialLR(o, 1.01), S.exponential(BASE_LR, 1.01)),
    (
        "CosineAnnealingLR-100",
        lambda o: tls.CosineAnnealingLR(o, 100),
        S.cosine_annealing(BASE_LR, 100),
    ),
    (
        "CosineAnnealingLR-eta",
        lambda o: tls.CosineAnnealingLR(o, 37, eta_min=0.01),
        S.cosine_annealing(BASE_LR, 37, 0.01),
    ),
    (
        "CosineAnnealingLR-1",
        lambda o: tls.CosineAnnealingLR(o, 1, eta_min=0.001),
        S.cosine_annealing(BASE_LR, 1, 0.001),
    ),
    (
        "CosineAnnealingLR-300",
        lambda o: tls.CosineAnnealingLR(o, 300),
        S.cosine_annealing(BASE_LR, 300),
    ),
    (
        "CAWR-10",
        lambda o: tls.CosineAnnealingWarmRestarts(o, 10),
        S.cosine_annealing_warm_restarts(BASE_LR, 10),
    ),
    (
        "CAWR-5-x2",
        lambda o: tls.CosineAnnealingWarmRestarts(o, 5, T_mult=2, eta_min=1e-3),
        S.cosine_annealing_warm_restarts(BASE_LR, 5, 2, 1e-3),
    ),
    (
        "CAWR-1-x3",
        lambda o: tls.CosineAnnealingWarmRestarts(o, 1, T_mult=3),
        S.cosine_annealing_warm_restarts(BASE_LR, 1, 3),
    ),
    (
        "CyclicLR-triangular",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, step_size_up=20),
        S.cyclic(0.01, 0.1, 20),
    ),
    (
        "CyclicLR-triangular2",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 15, 25, mode="triangular2"),
        S.cyclic(0.01, 0.1, 15, 25, mode="triangular2"),
    ),
    (
        "CyclicLR-exp_range",
        lambda o: tls.CyclicLR(o, 0.001, 0.1, 10, mode="exp_range", gamma=0.995),
        S.cyclic(0.001, 0.1, 10, mode="exp_range", gamma=0.995),
    ),
    (
        "CyclicLR-scale_fn-cycle",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 12, 8, scale_fn=lambda x: 1 / (1.0 + 0.1 * x)),
        S.cyclic(0.01, 0.1, 12, 8, scale_fn=lambda x: 1 / (1.0 + 0.1 * x)),
    ),
    (
        "CyclicLR-scale_fn-iter",
        lambda o: tls.CyclicLR(
            o, 0.01, 0.1, 9, scale_fn=lambda x: 0.999**x, scale_mode="iterations"
        ),
        S.cyclic(0.01, 0.1, 9, scale_fn=lambda x: 0.999**x, scale_mode="iterations"),
    ),
    ("CyclicLR-down0", lambda o: tls.CyclicLR(o, 0.01, 0.1, 7, 0), S.cyclic(0.01, 0.1, 7, 0)),
    ("OneCycleLR-cos", lambda o: tls.OneCycleLR(o, 0.5, total_steps=N), S.one_cycle(0.5, N)),
    (
        "OneCycleLR-linear",
        lambda o: tls.OneCycleLR(
            o,
            0.5,
            total_steps=N - 1,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        S.one_cycle(0.5, N - 1, 0.25, "linear", 10.0, 100.0),
    ),
    (
        "OneCycleLR-three_phase",
        lambda o: tls.OneCycleLR(o, 1.0, total_steps=N, pct_start=0.4, three_phase=True),
        S.one_cycle(1.0, N, 0.4, three_phase=True),
    ),
    (
        "OneCycleLR-three_phase-linear",
        lambda o: tls.OneCycleLR(
            o,
            1.0,
            epochs=4,
            steps_per_epoch=80,
            pct_start=0.2,
            three_phase=True,
            anneal_strategy="linear",
        ),
        S.one_cycle(1.0, 320, 0.2, "linear", three_phase=True),
    ),
    ("PolynomialLR", lambda o: tls.PolynomialLR(o), S.polynomial_decay(BASE_LR)),
    (
        "PolynomialLR-200-2",
        lambda o: tls.PolynomialLR(o, 200, 2.0),
        S.polynomial_decay(BASE_LR, 200, 2.0),
    ),
    (
        "PolynomialLR-299-0.5",
        lambda o: tls.PolynomialLR(o, 299, 0.5),
        S.polynomial_decay(BASE_LR, 299, 0.5),
    ),
    (
        "LambdaLR",
        lambda o: tls.LambdaLR(o, lambda e: 0.95**e),
        lambda t: BASE_LR * S.lambda_factor(lambda e: 0.95**e)(t),
    ),
    (
        "LambdaLR-floor",
        lambda o: tls.LambdaLR(o, lambda e: 1 / (1 + e // 25)),
        lambda t: BASE_LR * S.lambda_factor(lambda e: 1 / (1 + e // 25))(t),
    ),
    (
        "LambdaLR-warmup",
        lambda o: tls.LambdaLR(o, lambda e: min(1.0, (e + 1) / 50)),
        lambda t: BASE_LR * S.lambda_factor(lambda e: jnp.minimum(1.0, (e + 1) / 50))(t),
    ),
    (
        "MultiplicativeLR-const",
        lambda o: tls.MultiplicativeLR(o, lambda e: 0.98),
        lambda t: BASE_LR * S.multiplicative(lambda e: 0.98, num_steps=N)(t),
    ),
    (
        "MultiplicativeLR-python",
        lambda o: tls.MultiplicativeLR(o, lambda e: 0.9 if e % 50 == 0 else 1.001),
        lambda t: (
            BASE_LR * S.multiplicative(lambda e: 0.9 if e % 50 == 0 else 1.001, num_steps=N)(t)
        ),
    ),
    (
        "MultiplicativeLR-loop",
        lambda o: tls.MultiplicativeLR(o, lambda e: 1 - 1 / (e + 100)),
        lambda t: BASE_LR * S.multiplicative(lambda e: 1 - 1 / (e + 100))(t),
    ),
    ("SWALR-cos", lambda o: T.swa_utils.SWALR(o, swa_lr=0.05), S.swa_anneal(BASE_LR, 0.05)),
    (
        "SWALR-linear",
        lambda o: T.swa_utils.SWALR(o, 0.02, anneal_epochs=150, anneal_strategy="linear"),
        S.swa_anneal(BASE_LR, 0.02, 150, "linear"),
    ),
    (
        "SWALR-0",
        lambda o: T.swa_utils.SWALR(o, 0.3, anneal_epochs=0),
        S.swa_anneal(BASE_LR, 0.3, 0),
    ),
]


@pytest.mark.parametrize("make,fn", [c[1:] for c in LR_CASES], ids=[c[0] for c in LR_CASES])
def test_learning_rate_matches_torch(make, fn):
    expected, _ = T.run(make, N)
    close(ours(fn), expected)


MOMENTUM_CASES = [
    (
        "CyclicLR-sgd",
        "sgd",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 20, base_momentum=0.8, max_momentum=0.95),
        S.cyclic_momentum(0.8, 0.95, 20),
    ),
    (
        "CyclicLR-adam-triangular2",
        "adam",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 13, 17, mode="triangular2"),
        S.cyclic_momentum(0.8, 0.9, 13, 17, mode="triangular2"),
    ),
    (
        "CyclicLR-exp_range",
        "sgd",
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 10, mode="exp_range", gamma=0.99),
        S.cyclic_momentum(step_size_up=10, mode="exp_range", gamma=0.99),
    ),
    (
        "OneCycleLR-sgd",
        "sgd",
        lambda o: tls.OneCycleLR(o, 0.5, total_steps=N),
        S.one_cycle_momentum(N),
    ),
    (
        "OneCycleLR-adam-linear",
        "adam",
        lambda o: tls.OneCycleLR(
            o,
            0.5,
            total_steps=N,
            pct_start=0.1,
            anneal_strategy="linear",
            base_momentum=0.8,
            max_momentum=0.99,
        ),
        S.one_cycle_momentum(N, 0.1, "linear", 0.8, 0.99),
    ),
    (
        "OneCycleLR-three_phase",
        "sgd",
        lambda o: tls.OneCycleLR(o, 0.5, total_steps=N - 1, pct_start=0.35, three_phase=True),
        S.one_cycle_momentum(N - 1, 0.35, three_phase=True),
    ),
]


@pytest.mark.parametrize(
    "kind,make,fn", [c[1:] for c in MOMENTUM_CASES], ids=[c[0] for c in MOMENTUM_CASES]
)
def test_momentum_matches_torch(kind, make, fn):
    _, expected = T.run(make, N, kind=kind)
    close(ours(fn), expected)


def test_one_cycle_evaluates_step_total_steps_like_torch():
    # torch allows last_epoch == total_steps (one step past the schedule) and no further.
    for strategy in ("cos", "linear"):
        expected, _ = T.run(
            lambda o, s=strategy: tls.OneCycleLR(o, 0.5, total_steps=300, anneal_strategy=s), 301
        )
        close(ours(S.one_cycle(0.5, 300, anneal_strategy=strategy), np.arange(301)), expected)
        close(
            ours(S.one_cycle(0.5, 300, anneal_strategy=strategy), [400, 10**6]), [expected[-1]] * 2
        )  # held after torch's last valid step


def test_cosine_annealing_past_t_max_follows_torchs_recursion():
    # Three and a half periods: torch's recursive rule keeps oscillating between the bounds.
    expected, _ = T.run(lambda o: tls.CosineAnnealingLR(o, 40, eta_min=0.02), 7 * 40 + 3)
    got = ours(S.cosine_annealing(BASE_LR, 40, 0.02), np.arange(7 * 40 + 3))
    close(got, expected)
    np.testing.assert_allclose(got[[80, 160, 240]], BASE_LR)  # back at the base value
    np.testing.assert_allclose(got[[40, 120, 200, 280]], 0.02)


@pytest.mark.parametrize("t0,mult", [(10, 1), (3, 2), (4, 3)])
def test_warm_restarts_fractional_epochs(t0, mult):
    epochs = [k / 7 for k in range(1, 2100)]
    expected, _ = T.run(
        lambda o: tls.CosineAnnealingWarmRestarts(o, t0, mult, eta_min=0.001), None, epochs=epochs
    )
    got = ours(S.cosine_annealing_warm_restarts(BASE_LR, t0, mult, 0.001), [0.0, *epochs])
    close(got, expected)


SEQ_CASES = [
    (
        "warmup-cosine",
        [lambda o: tls.LinearLR(o, 0.1, 1.0, 20), lambda o: tls.CosineAnnealingLR(o, 280)],
        [20],
        S.sequential(
            [
                lambda t: BASE_LR * S.linear_factor(0.1, 1.0, 20)(t),
                S.cosine_annealing(BASE_LR, 280),
            ],
            [20],
        ),
    ),
    (
        "const-exp-step",
        [
            lambda o: tls.ConstantLR(o, 0.5, 10),
            lambda o: tls.ExponentialLR(o, 0.99),
            lambda o: tls.StepLR(o, 25, 0.5),
        ],
        [50, 170],
        S.sequential(
            [
                lambda t: BASE_LR * S.constant_factor(0.5, 10)(t),
                S.exponential(BASE_LR, 0.99),
                S.step(BASE_LR, 25, 0.5),
            ],
            [50, 170],
        ),
    ),
    (
        "multistep-poly",
        [lambda o: tls.MultiStepLR(o, [10, 20], 0.5), lambda o: tls.PolynomialLR(o, 100, 2.0)],
        [100],
        S.sequential(
            [S.multistep(BASE_LR, [10, 20], 0.5), S.polynomial_decay(BASE_LR, 100, 2.0)], [100]
        ),
    ),
]


@pytest.mark.parametrize(
    "makers,milestones,fn", [c[1:] for c in SEQ_CASES], ids=[c[0] for c in SEQ_CASES]
)
def test_sequential_matches_torch(makers, milestones, fn):
    close(ours(fn), T.sequential(makers, milestones, N))


CHAIN_CASES = [
    (
        "const-exp",
        [lambda o: tls.ConstantLR(o, 0.1, 20), lambda o: tls.ExponentialLR(o, 0.99)],
        S.chained(S.constant_factor(0.1, 20), S.exponential(1.0, 0.99)),
    ),
    (
        "linear-step-multistep",
        [
            lambda o: tls.LinearLR(o, 0.2, 1.0, 50),
            lambda o: tls.StepLR(o, 40, 0.7),
            lambda o: tls.MultiStepLR(o, [100, 250], 0.5),
        ],
        S.chained(
            S.linear_factor(0.2, 1.0, 50), S.step(1.0, 40, 0.7), S.multistep(1.0, [100, 250], 0.5)
        ),
    ),
    (
        "poly-multiplicative",
        [
            lambda o: tls.PolynomialLR(o, 310, 1.5),
            lambda o: tls.MultiplicativeLR(o, lambda e: 0.999),
        ],
        S.chained(S.polynomial_decay(1.0, 310, 1.5), S.multiplicative(lambda e: 0.999, N)),
    ),
]


@pytest.mark.parametrize("makers,fn", [c[1:] for c in CHAIN_CASES], ids=[c[0] for c in CHAIN_CASES])
def test_chained_matches_torch(makers, fn):
    close(BASE_LR * ours(fn), T.chained(makers, N))
