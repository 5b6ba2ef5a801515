"""Wrappers and small transformations: exactness, optax/torch parity, memory."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optimlab as ol
from tests import problems


def _grad_seq(params, n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        for _ in range(n)
    ]


def _bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def _drive(tx, params, grads):
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    outs = []
    for g in grads:
        updates, state = step(g, state, params)
        params = ol.apply_updates(params, updates)
        outs.append(updates)
    return params, state, outs


def test_accumulate_every_1_is_bitwise_the_inner_optimizer():
    params = problems.quadratic_params()
    grads = _grad_seq(params, 5)
    grads[0] = jax.tree.map(lambda g: g.at[..., 0].set(-0.0) if g.ndim else g, grads[0])
    p1, s1, _ = _drive(ol.accumulate(ol.adamw(0.1), every=1), params, grads)
    p2, s2, _ = _drive(ol.adamw(0.1), params, grads)
    assert _bits(p1) == _bits(p2)
    assert _bits(s1.inner_state) == _bits(s2)


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_accumulate_equals_inner_on_the_window_mean(mode):
    k = 3
    params = problems.quadratic_params()
    grads = _grad_seq(params, 2 * k)
    final, state, outs = _drive(ol.accumulate(ol.adam(0.1), every=k, mode=mode), params, grads)
    windows = []
    for w in range(2):
        total = grads[w * k]
        for g in grads[w * k + 1 : (w + 1) * k]:
            total = jax.tree.map(jnp.add, total, g)
        windows.append(jax.tree.map(lambda t: t / k, total) if mode == "mean" else total)
    ref_params, ref_state, _ = _drive(ol.adam(0.1), params, windows)
    if mode == "sum":
        assert _bits(final) == _bits(ref_params)
        assert _bits(state.inner_state) == _bits(ref_state)
    else:
        # The division by k fuses into the optimizer's arithmetic, where XLA may contract
        # multiply-adds differently from the reference that receives the mean: 1 ulp.
        close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
        jax.tree.map(close, final, ref_params)
        jax.tree.map(close, state.inner_state, ref_state)
    for i, u in enumerate(outs):
        if i % k != k - 1:
            assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))


def test_accumulate_keeps_one_accumulator_and_beats_multisteps_on_memory():
    from benchmarks.accumulate_memory import measure

    params = problems.quadratic_params()
    state = ol.accumulate(ol.adam(), every=4).init(params)
    # mini_step, count, and the inner optimizer's hyperparameters packed into one array
    scalars = 2 + 1
    # mu, nu and exactly one accumulator per parameter leaf
    assert len(jax.tree.leaves(state)) == 3 * len(jax.tree.leaves(params)) + scalars
    ours, theirs = measure(n_params=200_000, n_leaves=4).values()
    assert abs(ours["state"] - theirs["state"]) < 64  # the same buffers, up to a few scalars
    assert ours["peak"] < theirs["peak"]


def test_accumulate_donated_step_has_no_parameter_sized_temporary():
    from benchmarks.accumulate_memory import measure

    n_params = 2_000_000
    ours, _ = measure(n_params=n_params, n_leaves=8).values()
    params_and_grads = 2 * 4 * n_params
    assert ours["temp"] < 0.05 * (params_and_grads + ours["state"])


@pytest.mark.parametrize(
    ("grad_dtype", "acc_dtype"),
    [(jnp.float32, None), (jnp.bfloat16, jnp.float32), (jnp.float32, jnp.bfloat16)],
    ids=["same", "wider_accumulator", "narrower_accumulator"],
)
def test_accumulate_holds_the_inner_state_between_boundaries(grad_dtype, acc_dtype):
    # A narrower accumulator cannot hold the update exactly, so the update then takes
    # a buffer of its own; the results obey the same rules either way.
    k = 3
    params = {"w": jnp.linspace(-1.0, 1.0, 7, dtype=grad_dtype)}
    tx = ol.accumulate(ol.adam(0.1), every=k, accumulator_dtype=acc_dtype)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    state = tx.init(params)
    for t, g in enumerate(_grad_seq(params, 2 * k)):
        updates, new_state = step(g, state, params)
        assert all(x.dtype == grad_dtype for x in jax.tree.leaves(updates))
        if t % k != k - 1:
            assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(updates))
            assert _bits(new_state.inner_state) == _bits(state.inner_state)
        else:
            assert int(new_state.inner_state.count) == t // k + 1
            assert all(bool(jnp.any(x != 0)) for x in jax.tree.leaves(updates))
        params = ol.apply_updates(params, updates)
        state = new_state


def test_accumulate_update_with_a_narrower_accumulator():
    tx = ol.accumulate(ol.sgd(1.0), every=2, accumulator_dtype=jnp.bfloat16)
    state = tx.init(jnp.zeros(2))
    u1, state = tx.update(jnp.array([1.0, -0.5]), state)
    u2, state = tx.update(jnp.array([3.0, 2.5]), state)
    assert u1.dtype == u2.dtype == jnp.float32
    assert _bits([u1, u2]) == _bits([jnp.zeros(2), jnp.array([-2.0, -1.0])])


def test_masked_all_false_is_identity():
    params = problems.quadratic_params()
    tx = ol.masked(ol.adam(0.1), jax.tree.map(lambda _: False, params))
    grads = _grad_seq(params, 2)
    _, state, outs = _drive(tx, params, grads)
    for g, u in zip(grads, outs, strict=True):
        assert _bits(g) == _bits(u)
    assert jax.tree.leaves(state.inner_state.inner_state) == []


def test_skipped_step_leaves_params_and_inner_state_bit_identical():
    params = problems.quadratic_params()
    tx = ol.skip_nonfinite(ol.adamw(0.1), max_consecutive=2)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    g = _grad_seq(params, 1)[0]
    updates, state = step(g, tx.init(params), params)
    params = ol.apply_updates(params, updates)
    bad = jax.tree.map(lambda x: x.at[..., 0].set(jnp.nan) if x.ndim else jnp.inf * x, g)
    updates, new_state = step(bad, state, params)
    assert _bits(ol.apply_updates(params, updates)) == _bits(params)
    assert _bits(new_state.inner_state) == _bits(state.inner_state)
    assert (int(new_state.notfinite_count), int(new_state.total_notfinite)) == (1, 1)


def test_skip_nonfinite_matches_optax_apply_if_finite():
    params = problems.quadratic_params()
    grads = _grad_seq(params, 7)
    for i in (1, 3, 4, 5):  # a lone NaN, then a run of three that exhausts max_consecutive=2
        grads[i] = jax.tree.map(lambda x: x * jnp.nan, grads[i])
    ours, ostate, _ = _drive(ol.skip_nonfinite(ol.sgd(0.1), 2), params, grads)
    with jax.numpy_dtype_promotion("standard"):
        ref, rstate, _ = _drive(optax.apply_if_finite(optax.sgd(0.1), 2), params, grads)
    jax.tree.map(np.testing.assert_array_equal, ours, ref)
    assert int(ostate.total_notfinite) == int(rstate.total_notfinite) == 4


def _optax_pair(ours, theirs, params, grads, rtol=1e-6):
    a = _drive(ours, params, grads)[0]
    with jax.numpy_dtype_promotion("standard"):
        b = _drive(theirs, params, grads)[0]
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7), a, b)


_MAT = {
    "w": jnp.arange(12.0).reshape(3, 4) / 7 - 0.5,
    "k": jnp.ones((2, 2, 3, 4)),
    "b": jnp.array([0.3, -0.2]),
}


@pytest.mark.parametrize(
    "name", ["block_rms", "agc", "zero_nans", "centralize", "schedule", "conditional", "lookahead"]
)
def test_optax_parity(name):
    pairs = {
        "block_rms": (ol.clip_by_block_rms(0.1), optax.clip_by_block_rms(0.1)),
        "agc": (ol.adaptive_grad_clip(0.05), optax.adaptive_grad_clip(0.05)),
        "zero_nans": (
            ol.chain(ol.zero_nans(), ol.scale(-0.1)),
            optax.chain(optax.zero_nans(), optax.scale(-0.1)),
        ),
        "centralize": (
            ol.chain(ol.centralize(), ol.scale(-0.1)),
            optax.chain(optax.centralize(), optax.scale(-0.1)),
        ),
        "schedule": (
            ol.scale_by_schedule(lambda t: -0.5 / (1.0 + t.astype(jnp.float32))),
            optax.scale_by_schedule(lambda t: -0.5 / (1.0 + t)),
        ),
        "conditional": (
            ol.conditionally_transform(ol.scale(0.5), lambda t: t % 2 == 0),
            optax.conditionally_transform(optax.scale(0.5), lambda t: t % 2 == 0),
        ),
    }
    grads = _grad_seq(_MAT, 6, seed=3)
    if name == "zero_nans":
        grads[2] = {**grads[2], "w": grads[2]["w"].at[0, 0].set(jnp.nan)}
    if name == "lookahead":
        ours = _drive(ol.lookahead(ol.adam(0.1), 3, 0.5), _MAT, grads)
        fast = optax.lookahead(optax.adam(0.1), 3, 0.5)
        lp = optax.LookaheadParams.init_synced(_MAT)
        with jax.numpy_dtype_promotion("standard"):
            state = fast.init(lp)
            for g in grads:
                u, state = fast.update(g, state, lp)
                lp = optax.apply_updates(lp, u)
        close = lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
        jax.tree.map(close, ours[0], lp.fast)
        jax.tree.map(close, ol.averaged_params(ours[1]), lp.slow)
        return
    _optax_pair(*pairs[name], _MAT, grads)


def test_per_example_global_norm_clip_matches_optax():
    grads = [jnp.array([[0.0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]]), jnp.ones((4, 2))]
    for c in (0.0, 1.25, jnp.inf):
        s1, n1 = ol.per_example_global_norm_clip(grads, c)
        with jax.numpy_dtype_promotion("standard"):
            s2, n2 = optax.per_example_global_norm_clip(grads, c)
        assert int(n1) == int(n2)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), s1, s2)


def _torch_average(multi_avg_fn, seq):
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(seq[0]))
    avg = torch.optim.swa_utils.AveragedModel(module, multi_avg_fn=multi_avg_fn)
    for x in seq:
        with torch.no_grad():
            module.weight.copy_(torch.tensor(x))
        avg.update_parameters(module)
    return avg.module.weight.detach().numpy()


@pytest.mark.parametrize("kind", ["ema", "swa"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_averaging_matches_torch_averaged_model(kind, dtype):
    rng = np.random.default_rng(0)
    seq = [rng.normal(size=(1, 1)).astype(dtype) for _ in range(12)]
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        fn = (
            torch.optim.swa_utils.get_ema_multi_avg_fn(0.8)
            if kind == "ema"
            else torch.optim.swa_utils.get_swa_multi_avg_fn()
        )
        ref = _torch_average(fn, seq)
    finally:
        torch.set_default_dtype(torch.float32)
    with jax.enable_x64(dtype == "float64"):
        tx = ol.ema_params(0.8) if kind == "ema" else ol.swa_params()
        params = jnp.asarray(seq[0])
        state = tx.init(params)
        for x in seq:  # updates that move the params to x, then averaged
            x = jnp.asarray(x)
            _, state = jax.jit(tx.update)(x - params, state, params)
            params = x
        got = np.asarray(ol.averaged_params(state))
        assert int(state.n_averaged) == len(seq)
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_ema_debias_matches_optax_ema_of_the_params():
    seq = [jnp.asarray(x) for x in np.random.default_rng(1).normal(size=(8, 3)).astype("f4")]
    tx = ol.ema_params(0.9, debias=True)
    params = jnp.zeros(3)
    state = tx.init(params)
    ref = optax.ema(0.9, debias=True)
    rstate = ref.init(params)
    for x in seq:
        _, state = tx.update(x - params, state, params)
        params = x
        with jax.numpy_dtype_promotion("standard"):
            expected, rstate = ref.update(x, rstate)
    np.testing.assert_allclose(ol.averaged_params(state), expected, rtol=1e-5)


def test_monitor_and_named_chain():
    params = {"w": jnp.array([3.0, 4.0])}
    tx = ol.monitor(ol.named_chain(("clip", ol.clip_by_global_norm(1.0)), ("opt", ol.sgd(0.5))))
    _, state = jax.jit(tx.update)({"w": jnp.array([6.0, 8.0])}, tx.init(params), params)
    got = {k: float(v) for k, v in ol.monitored(state).items()}
    assert got == pytest.approx({"grad_norm": 10.0, "update_norm": 0.5, "param_norm": 5.0})
    assert list(ol.hyperparams(state)) == ["learning_rate"]
    state = ol.set_hyperparams(state, group="opt", learning_rate=0.1)
    np.testing.assert_allclose(ol.hyperparams(state)["learning_rate"], 0.1)


def test_bf16_moments_with_f32_math():
    # Without x64 the hyperparameters are float32 (so is 1 - b1, 1 - b2**t...).
    b1, b2, eps, lr = (np.float32(x) for x in (0.9, 0.999, 1e-8, 1e-2))
    one = np.float32(1)
    params = jnp.array([0.5, -1.5, 2.0], jnp.float32)
    grads = _grad_seq(params, 4)
    tx = ol.adam(lr, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    state = tx.init(params)
    m = np.zeros(3, np.float32)
    v = np.zeros(3, np.float32)
    step = jax.jit(tx.update)
    for t, g in enumerate(grads, start=1):
        updates, state = step(g, state, params)
        adam = state.inner_state[0]
        assert adam.mu.dtype == adam.nu.dtype == jnp.bfloat16
        assert updates.dtype == jnp.float32
        # Reference: the bf16-stored moments read back, float32 math, rounded to bf16 to store.
        gn = np.asarray(g, np.float32)
        m_new = m + (one - b1) * (gn - m)
        v_new = v * b2 + gn * gn * (one - b2)
        denom = np.sqrt(v_new) / np.sqrt(one - b2 ** np.float32(t)) + eps
        expected = (m_new / denom) / (one - b1 ** np.float32(t)) * -lr
        np.testing.assert_allclose(updates, expected, rtol=2e-6)
        m = np.asarray(jnp.asarray(m_new).astype(jnp.bfloat16).astype(jnp.float32))
        v = np.asarray(jnp.asarray(v_new).astype(jnp.bfloat16).astype(jnp.float32))
        np.testing.assert_array_equal(np.asarray(adam.mu, np.float32), m)
        np.testing.assert_array_equal(np.asarray(adam.nu, np.float32), v)
        params = ol.apply_updates(params, updates)
