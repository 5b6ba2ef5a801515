"""optax set: the same values as optax's schedules (float64 and float32)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimlab import schedules as S

STEPS = np.arange(-3, 330)

CASES = [
    ("constant", S.constant(0.3), optax.constant_schedule(0.3)),
    ("linear", S.linear(0.1, 1.0, 100, 20), optax.linear_schedule(0.1, 1.0, 100, 20)),
    ("linear-0", S.linear(0.1, 1.0, 0), optax.linear_schedule(0.1, 1.0, 0)),
    (
        "polynomial",
        S.polynomial(1.0, 0.01, 2.0, 250, 10),
        optax.polynomial_schedule(1.0, 0.01, 2.0, 250, 10),
    ),
    (
        "polynomial-sqrt",
        S.polynomial(1.0, 0.0, 0.5, 300),
        optax.polynomial_schedule(1.0, 0.0, 0.5, 300),
    ),
    ("exponential", S.exponential_decay(1.0, 30, 0.5), optax.exponential_decay(1.0, 30, 0.5)),
    (
        "exponential-staircase-end",
        S.exponential_decay(1.0, 25, 0.7, 40, True, 0.05),
        optax.exponential_decay(1.0, 25, 0.7, 40, True, 0.05),
    ),
    (
        "exponential-growth-end",
        S.exponential_decay(0.1, 20, 1.5, end_value=2.0),
        optax.exponential_decay(0.1, 20, 1.5, end_value=2.0),
    ),
    ("cosine", S.cosine_decay(1.0, 200), optax.cosine_decay_schedule(1.0, 200)),
    (
        "cosine-alpha-exp",
        S.cosine_decay(0.5, 250, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(0.5, 250, alpha=0.1, exponent=2.0),
    ),
    (
        "piecewise_constant",
        S.piecewise_constant(1.0, {50: 0.5, 120: 0.1, 200: 2.0}),
        optax.piecewise_constant_schedule(1.0, {50: 0.5, 120: 0.1, 200: 2.0}),
    ),
    ("piecewise_constant-none", S.piecewise_constant(0.7), optax.piecewise_constant_schedule(0.7)),
    (
        "piecewise_linear",
        S.piecewise_interpolate("linear", 1.0, {60: 0.5, 61: 2.0, 200: 0.1}),
        optax.piecewise_interpolate_schedule("linear", 1.0, {60: 0.5, 61: 2.0, 200: 0.1}),
    ),
    (
        "piecewise_cosine",
        S.piecewise_interpolate("cosine", 2.0, {0: 0.5, 100: 0.1, 300: 0.0}),
        optax.piecewise_interpolate_schedule("cosine", 2.0, {0: 0.5, 100: 0.1, 300: 0.0}),
    ),
    (
        "piecewise_empty",
        S.piecewise_interpolate("linear", 2.0),
        optax.piecewise_interpolate_schedule("linear", 2.0),
    ),
    (
        "warmup_constant",
        S.warmup_constant(0.0, 1.0, 50),
        optax.warmup_constant_schedule(0.0, 1.0, 50),
    ),
    (
        "warmup_cosine",
        S.warmup_cosine_decay(0.0, 1.0, 30, 280, 0.01),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 30, 280, 0.01),
    ),
    (
        "warmup_cosine-exp-nowarmup",
        S.warmup_cosine_decay(0.5, 1.0, 0, 300, 0.1, 1.5),
        optax.warmup_cosine_decay_schedule(0.5, 1.0, 0, 300, 0.1, 1.5),
    ),
    (
        "warmup_cosine-zero-peak",
        S.warmup_cosine_decay(0.5, 0.0, 10, 100, 0.1),
        optax.warmup_cosine_decay_schedule(0.5, 0.0, 10, 100, 0.1),
    ),
    (
        "warmup_exponential",
        S.warmup_exponential_decay(0.0, 1.0, 40, 20, 0.8, 10, True, 0.1),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 40, 20, 0.8, 10, True, 0.1),
    ),
    (
        "sgdr",
        S.sgdr(
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100),
                dict(
                    init_value=0.1, peak_value=0.5, warmup_steps=5, decay_steps=150, end_value=0.01
                ),
            ]
        ),
        optax.sgdr_schedule(
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100),
                dict(
                    init_value=0.1, peak_value=0.5, warmup_steps=5, decay_steps=150, end_value=0.01
                ),
            ]
        ),
    ),
    (
        "join",
        S.join([S.linear(0.0, 1.0, 50), S.cosine_decay(1.0, 100), S.constant(0.2)], [50, 150]),
        optax.join_schedules(
            [
                optax.linear_schedule(0.0, 1.0, 50),
                optax.cosine_decay_schedule(1.0, 100),
                optax.constant_schedule(0.2),
            ],
            [50, 150],
        ),
    ),
    ("cosine_onecycle", S.cosine_onecycle(300, 1.0), optax.cosine_onecycle_schedule(300, 1.0)),
    (
        "cosine_onecycle-args",
        S.cosine_onecycle(250, 0.4, 0.1, 10.0, 100.0),
        optax.cosine_onecycle_schedule(250, 0.4, 0.1, 10.0, 100.0),
    ),
    ("linear_onecycle", S.linear_onecycle(300, 1.0), optax.linear_onecycle_schedule(300, 1.0)),
    (
        "linear_onecycle-args",
        S.linear_onecycle(280, 0.3, 0.2, 0.7, 5.0, 50.0),
        optax.linear_onecycle_schedule(280, 0.3, 0.2, 0.7, 5.0, 50.0),
    ),
]


@pytest.mark.parametrize("ours,theirs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_optax(ours, theirs):
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(STEPS)))
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):  # optax needs it
        want = np.array(
            jax.jit(jax.vmap(lambda s: jnp.asarray(theirs(s), jnp.float64)))(jnp.asarray(STEPS))
        )
        # Jitted, XLA's reciprocal can make optax's 1 - t/T slightly negative at the end
        # (a fractional power of it is NaN); optax's eager value is the reference there.
        # optimlab computes (T - t)/T, exact under jit.
        for i in np.flatnonzero(np.isnan(want)):
            want[i] = float(theirs(jnp.asarray(STEPS[i])))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)  # same closed forms, f64
    with jax.enable_x64(False):
        got32 = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(STEPS, jnp.int32)))
        assert got32.dtype == np.float32
    # float32: a few ulps of the steps' and values' rounding
    np.testing.assert_allclose(got32, want, rtol=2e-6, atol=1e-7)
