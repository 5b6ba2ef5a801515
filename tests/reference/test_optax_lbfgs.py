"""optimlab.lbfgs, scale_by_lbfgs and both line searches against optax's, step by step.

Both run optax's own usage pattern (``value_and_grad_from_state``, then
``update(grad, state, params, value=..., grad=..., value_fn=...)``) in float64
(x64 on); the params, the L-BFGS memory and the line search's state must agree at
every step to 1e-10 relative (1e-12 absolute floor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol

TOL = dict(rtol=1e-10, atol=1e-12)


def rosenbrock(p):
    x = p["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


_A = np.random.default_rng(0).normal(size=(6, 6))
_H = _A @ _A.T + 0.5 * np.eye(6)
_B = np.random.default_rng(1).normal(size=6)


def quadratic(p):
    w = jnp.concatenate([p["w"].reshape(-1), p["b"]])
    return 0.5 * w @ jnp.asarray(_H) @ w + jnp.asarray(_B) @ w


def _start(name):
    if name == "rosenbrock":
        return rosenbrock, {"x": jnp.asarray([-1.2, 1.0, -0.5, 0.8])}
    return quadratic, {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.asarray([0.3, -1.0])}


def _close(ours, theirs, where):
    lo, lt = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(lo) == len(lt), where
    for a, b in zip(lo, lt, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), err_msg=where, **TOL)


def _run(lib, tx, fun, params, steps, jit):
    state = tx.init(params)
    vg = lib.value_and_grad_from_state(fun)

    def one(params, state):
        value, grad = vg(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return lib.apply_updates(params, updates), state

    if jit:
        one = jax.jit(one)
    out = []
    for _ in range(steps):
        params, state = one(params, state)
        out.append((params, state))
    return out


CASES = {
    "defaults": lambda lib: lib.lbfgs(),
    "memory_3": lambda lib: lib.lbfgs(memory_size=3),
    "no_precond_scale": lambda lib: lib.lbfgs(scale_init_precond=False),
    "learning_rate": lambda lib: lib.lbfgs(learning_rate=0.7),
    "keep_guess": lambda lib: lib.lbfgs(
        linesearch=lib.scale_by_zoom_linesearch(max_linesearch_steps=15)
    ),
    "capped_step": lambda lib: lib.lbfgs(
        linesearch=lib.scale_by_zoom_linesearch(
            max_linesearch_steps=10, max_learning_rate=0.5, approx_dec_rtol=None
        )
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("problem", ["rosenbrock", "quadratic"])
def test_lbfgs_matches_optax(problem, case):
    _compare(problem, case, steps=25 if problem == "rosenbrock" else 12, jit=True)


def test_lbfgs_matches_optax_eager():
    _compare("quadratic", "defaults", steps=4, jit=False)


def _compare(problem, case, steps, jit):
    with jax.enable_x64(True):
        fun, params = _start(problem)
        ours = _run(ol, CASES[case](ol), fun, params, steps, jit)
        with jax.numpy_dtype_promotion("standard"):
            theirs = _run(optax, CASES[case](optax), fun, params, steps, jit)
        assert float(fun(ours[-1][0])) < float(fun(params))
    for k, ((p, s), (rp, rs)) in enumerate(zip(ours, theirs, strict=True)):
        where = f"{problem}/{case} step {k}"
        _close(p, rp, f"{where}: params")
        lb, rlb = s[0], rs[0]
        assert int(lb.count) == int(rlb.count), where
        for field in ("params", "updates", "diff_params_memory", "diff_updates_memory"):
            _close(getattr(lb, field), getattr(rlb, field), f"{where}: {field}")
        _close(lb.weights_memory, rlb.weights_memory, f"{where}: weights_memory")
        ls, rls = s[-1], rs[-1]
        _close(ls.learning_rate, rls.learning_rate, f"{where}: learning_rate")
        _close(ls.value, rls.value, f"{where}: value")
        _close(ls.grad, rls.grad, f"{where}: grad")
        assert int(ls.info.num_linesearch_steps) == int(rls.info.num_linesearch_steps), where
        _close(ls.info.decrease_error, rls.info.decrease_error, f"{where}: decrease_error")
        _close(ls.info.curvature_error, rls.info.curvature_error, f"{where}: curvature_error")


def _line_problems():
    def bowl(x):
        return jnp.sum((x - 2.0) ** 2)

    def quartic(x):
        return jnp.sum(x**4) - jnp.sum(x**2) + 0.1 * jnp.sum(x)

    def wavy(x):
        return jnp.sum(jnp.sin(3.0 * x) + 0.5 * x**2)

    def steep(x):
        return jnp.sum(jnp.exp(x)) - 3.0 * jnp.sum(x)

    x0 = jnp.asarray([0.3, -0.7, 1.1])
    return {"bowl": bowl, "quartic": quartic, "wavy": wavy, "steep": steep}, x0


LINE_OPTIONS = {
    "defaults": dict(max_linesearch_steps=20),
    "one": dict(max_linesearch_steps=20, initial_guess_strategy="one"),
    "few_steps": dict(max_linesearch_steps=2),
    "tight": dict(max_linesearch_steps=30, curv_rtol=0.1, approx_dec_rtol=None),
    "grow_fast": dict(max_linesearch_steps=20, increase_factor=5.0, max_learning_rate=40.0),
}


@pytest.mark.parametrize("scale", [0.01, 30.0])
@pytest.mark.parametrize("options", sorted(LINE_OPTIONS))
@pytest.mark.parametrize("fn", ["bowl", "quartic", "wavy", "steep"])
def test_zoom_linesearch_alone_matches_optax(fn, options, scale):
    """Gradient descent directions (times ``scale``) with the search alone, 6 steps."""
    results = []
    with jax.enable_x64(True):
        problems, x0 = _line_problems()
        fun = problems[fn]
        for lib in (ol, optax):
            tx = lib.scale_by_zoom_linesearch(**LINE_OPTIONS[options])
            params, state = x0, tx.init(x0)
            vg = lib.value_and_grad_from_state(fun)

            @jax.jit
            def one(params, state, tx=tx, lib=lib, vg=vg):
                value, grad = vg(params, state=state)
                direction = jax.tree.map(lambda g: -scale * g, grad)
                updates, state = tx.update(
                    direction, state, params, value=value, grad=grad, value_fn=fun
                )
                return lib.apply_updates(params, updates), state

            out = []
            for _ in range(6):
                with jax.numpy_dtype_promotion("standard"):
                    params, state = one(params, state)
                out.append((params, state.learning_rate, state.value, state.grad, state.info))
            results.append(out)
    for k, (ours, theirs) in enumerate(zip(*results, strict=True)):
        where = f"{fn}/{options}/x{scale} step {k}"
        _close(ours[:4], theirs[:4], where)
        assert int(ours[4].num_linesearch_steps) == int(theirs[4].num_linesearch_steps), where
        _close(ours[4][1:], theirs[4][1:], f"{where}: info")


def test_scale_by_lbfgs_alone_matches_optax():
    with jax.enable_x64(True):
        fun, params = _start("quadratic")
        runs = []
        for lib in (ol, optax):
            tx = lib.scale_by_lbfgs(memory_size=4)
            p, s, out = params, tx.init(params), []
            for _ in range(9):
                with jax.numpy_dtype_promotion("standard"):
                    u, s = tx.update(jax.grad(fun)(p), s, p)
                p = jax.tree.map(lambda a, b: a - 0.05 * b, p, u)
                out.append((u, p, s))
            runs.append(out)
    for k, ((u, p, s), (ru, rp, rs)) in enumerate(zip(*runs, strict=True)):
        _close((u, p), (ru, rp), f"step {k}")
        _close(tuple(s)[1:], tuple(rs)[1:], f"step {k}: state")


def test_extra_args_reach_value_fn():
    def fun(x, shift):
        return jnp.sum((x - shift) ** 2)

    with jax.enable_x64(True):
        res = []
        for lib in (ol, optax):
            tx = lib.lbfgs()
            x, s = jnp.zeros(3), tx.init(jnp.zeros(3))
            vg = lib.value_and_grad_from_state(fun)
            for _ in range(3):
                with jax.numpy_dtype_promotion("standard"):
                    v, g = vg(x, jnp.ones(3), state=s)
                    u, s = tx.update(g, s, x, value=v, grad=g, value_fn=fun, shift=jnp.ones(3))
                x = lib.apply_updates(x, u)
            res.append(x)
    _close(res[0], res[1], "shift")
    with pytest.raises(TypeError, match="not taken by value_fn"):
        tx = ol.lbfgs()
        tx.update(
            jnp.ones(3),
            tx.init(jnp.zeros(3)),
            jnp.zeros(3),
            value=0.0,
            grad=jnp.ones(3),
            value_fn=lambda x: jnp.sum(x),
            other=1,
        )


def test_state_types_and_float32():
    tx = ol.lbfgs()
    params = {"a": jnp.ones((2, 3)), "b": jnp.ones(3)}
    state = tx.init(params)
    assert state[0].count.dtype == jnp.int32
    assert state[0].diff_params_memory["a"].shape == (10, 2, 3)
    assert state[-1].info.num_linesearch_steps.dtype == jnp.int32
    vg = ol.value_and_grad_from_state(lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 4))
    v, g = vg(params, state=state)
    fun = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 4)
    step = jax.jit(lambda p, s, v, g: tx.update(g, s, p, value=v, grad=g, value_fn=fun))
    u, new = step(params, state, v, g)
    assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(lambda x: x.dtype, state)
    assert float(fun(ol.apply_updates(params, u))) < float(v)


def test_memory_size_checked():
    with pytest.raises(ValueError, match="memory_size"):
        ol.scale_by_lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="initial_guess_strategy"):
        ol.scale_by_zoom_linesearch(5, initial_guess_strategy="two")


BACKTRACKING_OPTIONS = {
    "defaults": dict(max_backtracking_steps=15),
    "store_grad": dict(max_backtracking_steps=15, store_grad=True),
    "few_steps": dict(max_backtracking_steps=2, store_grad=True),
    "slack": dict(
        max_backtracking_steps=20,
        decrease_factor=0.5,
        increase_factor=3.0,
        max_learning_rate=8.0,
        rtol=1e-3,
        atol=1e-8,
    ),
}


@pytest.mark.parametrize("scale", [0.01, 30.0])
@pytest.mark.parametrize("options", sorted(BACKTRACKING_OPTIONS))
@pytest.mark.parametrize("fn", ["bowl", "quartic", "wavy", "steep"])
def test_backtracking_linesearch_matches_optax(fn, options, scale):
    """Gradient descent directions (times ``scale``) with the backtracking search, 6 steps."""
    results = []
    with jax.enable_x64(True):
        problems, x0 = _line_problems()
        fun = problems[fn]
        for lib in (ol, optax):
            tx = lib.scale_by_backtracking_linesearch(**BACKTRACKING_OPTIONS[options])

            @jax.jit
            def one(params, state, tx=tx, lib=lib):
                value, grad = jax.value_and_grad(fun)(params)
                direction = jax.tree.map(lambda g: -scale * g, grad)
                updates, state = tx.update(
                    direction, state, params, value=value, grad=grad, value_fn=fun
                )
                return lib.apply_updates(params, updates), state

            params, state, out = x0, tx.init(x0), []
            for _ in range(6):
                with jax.numpy_dtype_promotion("standard"):
                    params, state = one(params, state)
                out.append((params, state))
            results.append(out)
    for k, ((p, s), (rp, rs)) in enumerate(zip(*results, strict=True)):
        where = f"{fn}/{options}/x{scale} step {k}"
        _close(p, rp, f"{where}: params")
        _close((s.learning_rate, s.value, s.grad), (rs.learning_rate, rs.value, rs.grad), where)
        assert (s.grad is None) == (rs.grad is None), where
        assert int(s.info.num_linesearch_steps) == int(rs.info.num_linesearch_steps), where
        _close(s.info.decrease_error, rs.info.decrease_error, f"{where}: info")


def test_backtracking_with_value_and_grad_from_state():
    def fun(x):
        return jnp.sum((x - 1.0) ** 4) + jnp.sum(x**2)

    with jax.enable_x64(True):
        res = []
        for lib in (ol, optax):
            tx = lib.chain(
                lib.sgd(1.0),
                lib.scale_by_backtracking_linesearch(max_backtracking_steps=15, store_grad=True),
            )
            x, s = jnp.asarray([3.0, -2.0, 0.5]), None
            s = tx.init(x)
            vg = lib.value_and_grad_from_state(fun)
            for _ in range(8):
                with jax.numpy_dtype_promotion("standard"):
                    v, g = vg(x, state=s)
                    u, s = tx.update(g, s, x, value=v, grad=g, value_fn=fun)
                x = lib.apply_updates(x, u)
                res.append((x, s[-1].learning_rate, s[-1].value, s[-1].grad))
    half = len(res) // 2
    for k, (ours, theirs) in enumerate(zip(res[:half], res[half:], strict=True)):
        _close(ours, theirs, f"step {k}")
    tx = ol.scale_by_backtracking_linesearch(max_backtracking_steps=3)
    with pytest.raises(ValueError, match="store_grad"):
        ol.value_and_grad_from_state(fun)(jnp.zeros(3), state=tx.init(jnp.zeros(3)))
