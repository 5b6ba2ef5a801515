"""Boundary table per schedule: edges, transitions, 2**31 and 10**10; jit/vmap and int32/int64.

Expected values come from plain-Python reference formulas written out below.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import schedules as S

BIG = [2**31 - 1, 2**31, 10**10]


def cos_between(start, end, p):
    return end + (start - end) / 2 * (1 + math.cos(math.pi * p))


def cawr_ref(t, t0, mult):
    start, ti = 0, t0
    while start + ti <= t:
        start, ti = start + ti, ti * mult
    return (1 + math.cos(math.pi * (t - start) / ti)) / 2


def one_cycle_ref(t, total, pct, lo, peak, end):
    t = min(max(t, 0), total)
    e1 = pct * total - 1
    if t <= e1:
        return cos_between(lo, peak, t / e1)
    return cos_between(peak, end, (t - e1) / (total - 1 - e1))


def cyclic_ref(t, up):
    x = (t % (2 * up)) / (2 * up)  # torch's 1 + t/L - floor(1 + t/L), in exact integers
    return x / 0.5 if x <= 0.5 else (x - 1) / (0.5 - 1)


def wcd_ref(t, init, peak, warm, decay, end):
    if t < warm:
        return init + (peak - init) * t / warm
    s = min(t - warm, decay - warm)
    return end + (peak - end) * (1 + math.cos(math.pi * s / (decay - warm))) / 2


# id -> (schedule, reference, steps besides 0 and the BIG ones)
TABLE = {
    "constant": (S.constant(0.3), lambda t: 0.3, [-1, 1]),
    "linear": (
        S.linear(1.0, 0.0, 100, 10),
        lambda t: 1 - min(max(t - 10, 0), 100) / 100,
        [-1, 9, 10, 11, 60, 109, 110, 111],
    ),
    "polynomial": (
        S.polynomial(1.0, 0.1, 2, 100),
        lambda t: 0.9 * (1 - min(max(t, 0), 100) / 100) ** 2 + 0.1,
        [-1, 1, 50, 99, 100, 101],
    ),
    "exponential_decay": (
        S.exponential_decay(1.0, 10, 0.5, 5, True, 0.01),
        lambda t: 1.0 if t <= 5 else max(0.5 ** ((t - 5) // 10), 0.01),
        [-1, 5, 6, 14, 15, 16, 25, 75, 76],
    ),
    "cosine_decay": (
        S.cosine_decay(1.0, 100, 0.1),
        lambda t: 0.9 * (1 + math.cos(math.pi * min(t, 100) / 100)) / 2 + 0.1,
        [1, 50, 99, 100, 101],
    ),
    "piecewise_constant": (
        S.piecewise_constant(1.0, {10: 0.5, 20: 0.5}),
        lambda t: 0.5 ** ((t >= 10) + (t >= 20)),
        [-1, 9, 10, 19, 20, 21],
    ),
    "piecewise_interpolate": (
        S.piecewise_interpolate("cosine", 1.0, {10: 0.5, 20: 0.0}),
        lambda t: (
            0.0
            if t < 0
            else (
                cos_between(1.0, 0.5, t / 10)
                if t < 10
                else (cos_between(0.5, 0.0, (t - 10) / 10) if t < 20 else 0.0)
            )
        ),
        [-1, 5, 9, 10, 15, 19, 20, 21],
    ),
    "warmup_constant": (
        S.warmup_constant(0.0, 1.0, 10),
        lambda t: min(max(t, 0), 10) / 10,
        [-1, 5, 10, 11],
    ),
    "warmup_cosine_decay": (
        S.warmup_cosine_decay(0.0, 1.0, 10, 110, 0.1),
        lambda t: wcd_ref(t, 0.0, 1.0, 10, 110, 0.1),
        [5, 9, 10, 11, 60, 109, 110, 111],
    ),
    "warmup_exponential_decay": (
        S.warmup_exponential_decay(0.0, 1.0, 10, 10, 0.5),
        lambda t: t / 10 if t < 10 else 0.5 ** ((t - 10) / 10),
        [5, 10, 11, 20, 30],
    ),
    "sgdr": (
        S.sgdr([dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=50)] * 2),
        lambda t: wcd_ref(t if t < 50 else t - 50, 0.0, 1.0, 10, 50, 0.0),
        [9, 10, 49, 50, 51, 60, 99, 100, 101],
    ),
    "join": (
        S.join([S.constant(1.0), S.linear(1.0, 0.0, 10)], [5]),
        lambda t: 1.0 if t < 5 else 1 - min(t - 5, 10) / 10,
        [-1, 4, 5, 6, 15, 16],
    ),
    "cosine_onecycle": (
        S.cosine_onecycle(100, 1.0),
        lambda t: (
            0.0
            if t < 0
            else (
                cos_between(0.04, 1.0, t / 30)
                if t < 30
                else (cos_between(1.0, 4e-6, (t - 30) / 70) if t < 100 else 4e-6)
            )
        ),
        [-1, 29, 30, 31, 99, 100, 101],
    ),
    "linear_onecycle": (
        S.linear_onecycle(100, 1.0),
        lambda t: (
            0.0
            if t < 0
            else (
                0.04 + 0.96 * t / 30
                if t < 30
                else (
                    1.0 - 0.96 * (t - 30) / 55
                    if t < 85
                    else (0.04 + (4e-6 - 0.04) * (t - 85) / 15 if t < 100 else 4e-6)
                )
            )
        ),
        [-1, 29, 30, 31, 84, 85, 86, 99, 100, 101],
    ),
    "step": (S.step(1.0, 10, 0.5), lambda t: 0.5 ** (t // 10), [9, 10, 11, 19, 20]),
    "multistep": (
        S.multistep(1.0, [10, 20, 20], 0.5),
        lambda t: 0.5 ** ((t >= 10) + 2 * (t >= 20)),
        [9, 10, 11, 19, 20, 21],
    ),
    "constant_factor": (S.constant_factor(0.5, 10), lambda t: 0.5 if t < 10 else 1.0, [9, 10, 11]),
    "linear_factor": (
        S.linear_factor(0.5, 1.0, 10),
        lambda t: 0.5 + 0.5 * min(t, 10) / 10,
        [5, 9, 10, 11],
    ),
    "exponential": (S.exponential(1.0, 0.9), lambda t: 0.9**t, [1, 10, 300]),
    "cosine_annealing": (
        S.cosine_annealing(1.0, 10, 0.1),
        lambda t: 0.1 + 0.9 * (1 + math.cos(math.pi * (t % 20) / 10)) / 2,
        [5, 9, 10, 11, 19, 20, 21],
    ),
    "cosine_annealing_warm_restarts": (
        S.cosine_annealing_warm_restarts(1.0, 10, 2),
        lambda t: cawr_ref(t, 10, 2),
        [9, 10, 11, 29, 30, 31, 69, 70],
    ),
    "cyclic": (
        S.cyclic(0.1, 1.0, 10),
        lambda t: 0.1 + 0.9 * cyclic_ref(t, 10),
        [5, 10, 15, 20, 21],
    ),
    "cyclic_momentum": (
        S.cyclic_momentum(0.8, 0.9, 10),
        lambda t: 0.9 - 0.1 * cyclic_ref(t, 10),
        [5, 10, 15, 20, 21],
    ),
    "one_cycle": (
        S.one_cycle(1.0, 100),
        lambda t: one_cycle_ref(t, 100, 0.3, 0.04, 1.0, 4e-6),
        [28, 29, 30, 98, 99, 100, 101],
    ),
    "one_cycle_momentum": (
        S.one_cycle_momentum(100),
        lambda t: one_cycle_ref(t, 100, 0.3, 0.95, 0.85, 0.95),
        [28, 29, 30, 99, 100, 101],
    ),
    "polynomial_decay": (
        S.polynomial_decay(1.0, 10, 2.0),
        lambda t: (1 - min(t, 10) / 10) ** 2,
        [5, 9, 10, 11],
    ),
    "lambda_factor": (S.lambda_factor(lambda t: 1 / (1 + t)), lambda t: 1 / (1 + t), [1, 10]),
    "multiplicative": (
        S.multiplicative(lambda k: 0.5, num_steps=20),
        lambda t: 0.5 ** min(max(t, 0), 20),
        [-1, 1, 19, 20, 21],
    ),
    "swa_anneal": (
        S.swa_anneal(1.0, 0.1, 10, "linear"),
        lambda t: 1.0 - 0.9 * min(t, 10) / 10,
        [5, 9, 10, 11],
    ),
    "sequential": (
        S.sequential([S.constant(0.5), S.exponential(1.0, 0.5)], [10]),
        lambda t: 0.5 if t < 10 else 0.5 ** (t - 10),
        [9, 10, 11],
    ),
    "chained": (
        S.chained(S.constant_factor(0.5, 10), S.step(1.0, 5, 0.5)),
        lambda t: (0.5 if t < 10 else 1.0) * 0.5 ** (t // 5),
        [4, 5, 9, 10, 11],
    ),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_boundary_table(name):
    fn, ref, extra = TABLE[name]
    steps = sorted({0, *extra, *BIG})
    expected = np.asarray([ref(t) for t in steps], np.float64)
    with jax.enable_x64(True):
        eager = np.asarray([fn(jnp.asarray(t, jnp.int64)) for t in steps])
        assert eager.dtype == np.float64
        np.testing.assert_allclose(eager, expected, rtol=1e-9, atol=1e-15)
        steps64 = jnp.asarray(steps, jnp.int64)
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(steps64), eager, rtol=1e-12, atol=1e-15)
        i = steps.index(2**31 - 1)  # an int32 step gives the int64 step's value
        np.testing.assert_allclose(fn(jnp.asarray(2**31 - 1, jnp.int32)), eager[i], rtol=1e-12)
    with jax.enable_x64(False):  # int32 steps, float32 values: no wrap-around at the maximum
        small = [t for t in steps if t < 2**31]
        got = np.asarray(jax.jit(jax.vmap(fn))(jnp.asarray(small, jnp.int32)))
        assert got.dtype == np.float32 and np.all(np.isfinite(got))
        exact = [i for i, t in enumerate(small) if abs(t) < 2**20]
        np.testing.assert_allclose(got[exact], expected[exact], rtol=2e-5, atol=1e-6)


def test_traced_step_inside_a_scan():
    fn = S.warmup_cosine_decay(0.0, 1.0, 10, 110)

    def body(carry, t):
        return carry, fn(t)

    _, values = jax.lax.scan(body, 0, jnp.arange(120))
    np.testing.assert_allclose(
        values, [wcd_ref(t, 0.0, 1.0, 10, 110, 0.0) for t in range(120)], rtol=1e-5, atol=1e-6
    )


def test_multiplicative_loop_is_exact_beyond_the_table_and_vmaps():
    fn = S.multiplicative(lambda k: 1.0 - 1.0 / (k + 10.0))  # telescopes to 10 / (t + 10)
    with jax.enable_x64(True):
        got = jax.jit(jax.vmap(fn))(jnp.asarray([-1, 0, 1, 5, 1000], jnp.int64))
    np.testing.assert_allclose(got, [1.0, 1.0, 10 / 11, 10 / 15, 10 / 1010], rtol=1e-12)
