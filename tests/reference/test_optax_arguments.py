"""optax's arguments, side by side with optax where the two can run the same step.

Each test here gives one argument optimlab accepts under optax's name and meaning
(see ``SIGNATURE_DIFFERS`` in ``test_optax_defaults.py``) a non-default value, and
compares the result with optax's at float64.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol

TOL = dict(rtol=1e-10, atol=1e-12)


def _tree():
    rng = np.random.default_rng(1)
    return {"w": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal(size=(4,)))}


def _steps(tx, apply, params, grads_list, **extra):
    state, out = tx.init(params), []
    for g in grads_list:
        u, state = tx.update(g, state, params, **extra)
        params = apply(params, u)
        out.append((u, params))
    return out


def _compare(ours, theirs, tol=TOL):
    for (u, p), (ru, rp) in zip(ours, theirs, strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol), u, ru)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol), p, rp)


def _grads(params, n=4, seed=2):
    rng = np.random.default_rng(seed)
    return [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params) for _ in range(n)]


@pytest.mark.parametrize("flip_sign", [True, False])
def test_scale_by_learning_rate_none_is_no_scaling(flip_sign):
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)
        ours = ol.scale_by_learning_rate(flip_sign=flip_sign)
        theirs = optax.scale_by_learning_rate(None, flip_sign=flip_sign)
        _compare(
            _steps(ours, ol.apply_updates, params, grads),
            _steps(theirs, optax.apply_updates, params, grads),
        )
        u, _ = ours.update(grads[0], ours.init(params))
        _compare([(u, u)], [(grads[0], grads[0])], tol=dict(rtol=0, atol=0))


def _scale_by_tags(lib):
    """A stateless transformation multiplying the updates by the extra argument ``tags``."""

    def update_fn(updates, state, params=None, *, tags, **extra):
        del params, extra
        return jax.tree.map(lambda u, t: u * t, updates, tags), state

    if lib is optax:
        return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update_fn)
    return ol.GradientTransformation(lambda p: ol.EmptyState(), update_fn)


def test_masked_masks_compatible_extra_args_as_optax():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)
        tags = {"w": jnp.full((3, 4), 3.0), "b": jnp.full((4,), 5.0)}
        mask = {"w": True, "b": False}

        def run(lib):
            tx = lib.masked(_scale_by_tags(lib), mask, mask_compatible_extra_args=True)
            return _steps(tx, lib.apply_updates, params, grads, tags=tags)

        ours = run(ol)
        _compare(ours, run(optax))
        np.testing.assert_allclose(ours[0][0]["w"], 3.0 * grads[0]["w"])
        np.testing.assert_allclose(ours[0][0]["b"], grads[0]["b"])


def test_masked_passes_extra_args_unchanged_by_default():
    params = _tree()
    seen = {}

    def update_fn(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    inner = ol.GradientTransformation(lambda p: ol.EmptyState(), update_fn)
    tx = ol.masked(inner, {"w": True, "b": False})
    tx.update(params, tx.init(params), params, tags=params)
    assert jax.tree.structure(seen["tags"]) == jax.tree.structure(params)
    tx = ol.masked(inner, {"w": True, "b": False}, mask_compatible_extra_args=True)
    tx.update(params, tx.init(params), params, tags=params, value=jnp.float32(1.0))
    assert set(seen["tags"]) == {"w"}  # the selected leaves, as the inner sees the updates
    assert seen["value"].shape == ()  # not the updates' structure: unchanged


def test_partition_partitions_compatible_extra_args_as_optax():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)
        tags = {"w": jnp.full((3, 4), 3.0), "b": jnp.full((4,), 5.0)}

        def run(lib, labels):
            tx = lib.partition(
                {"x": lib.chain(_scale_by_tags(lib), lib.sgd(0.1)), "y": lib.sgd(0.3)},
                labels,
                mask_compatible_extra_args=True,
            )
            return _steps(tx, lib.apply_updates, params, grads, tags=tags)

        labels = {"w": "x", "b": "y"}
        theirs = run(optax, labels)
        _compare(run(ol, labels), theirs)
        # optax's function form: params -> label tree.
        _compare(run(ol, lambda p: jax.tree.map(lambda _: "x", p) | {"b": "y"}), theirs)


def test_partition_takes_param_labels_in_optax_forms():
    params = _tree()
    transforms = {"x": ol.sgd(0.1), "y": ol.set_to_zero()}
    expected = {"w": -0.1 * params["w"], "b": jnp.zeros(4)}
    for labels in (
        {"w": "x", "b": "y"},  # a label tree
        lambda p: {"w": "x", "b": "y"},  # optax's function params -> label tree
        lambda path, leaf: "y" if path == "b" else "x",  # optimlab's per-leaf function
    ):
        for tx in (
            ol.partition(transforms, labels),
            ol.partition(transforms, param_labels=labels),
        ):
            u, _ = tx.update(params, tx.init(params), params)
            jax.tree.map(np.testing.assert_allclose, u, expected)


def test_partition_labels_keyword_is_deprecated():
    params = _tree()
    with pytest.warns(DeprecationWarning, match="'labels' is renamed 'param_labels'"):
        tx = ol.partition({"x": ol.sgd(0.1)}, labels={"w": "x", "b": "x"})
    u, _ = tx.update(params, tx.init(params), params)
    np.testing.assert_allclose(u["w"], -0.1 * params["w"], rtol=1e-6)
    with pytest.raises(TypeError, match="both 'param_labels' and its deprecated name 'labels'"):
        ol.partition({"x": ol.sgd(0.1)}, {"w": "x"}, labels={"w": "x"})
    with pytest.raises(TypeError, match="missing the argument 'param_labels'"):
        ol.partition({"x": ol.sgd(0.1)})


@pytest.mark.parametrize("name", ["masked", "partition"])
def test_mask_compatible_extra_args_must_be_a_bool(name):
    make = {
        "masked": lambda v: ol.masked(ol.sgd(0.1), {"w": True}, mask_compatible_extra_args=v),
        "partition": lambda v: ol.partition(
            {"x": ol.sgd(0.1)}, {"w": "x"}, mask_compatible_extra_args=v
        ),
    }[name]
    with pytest.raises(TypeError, match=f"{name}: mask_compatible_extra_args must be a bool"):
        make(1)


def _optax_lookahead(tx, params, grads):
    """optax's lookahead on ``LookaheadParams``: the fast and the slow params at each step."""
    lp = optax.LookaheadParams.init_synced(params)
    state, out = tx.init(lp), []
    for g in grads:
        u, state = tx.update(g, state, lp)
        lp = optax.apply_updates(lp, u)
        out.append((lp.fast, lp.slow))
    return out


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_takes_optax_arguments(reset_state):
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=7)
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            theirs = _optax_lookahead(
                optax.lookahead(optax.adam(0.1), 3, 0.5, reset_state), params, grads
            )
        for tx in (
            ol.lookahead(ol.adam(0.1), 3, 0.5, reset_state),  # optax's positions
            ol.lookahead(
                fast_optimizer=ol.adam(0.1),
                sync_period=3,
                slow_step_size=0.5,
                reset_state=reset_state,
            ),
        ):
            p, state = params, tx.init(params)
            for g, (fast, slow) in zip(grads, theirs, strict=True):
                u, state = tx.update(g, state, p)
                p = ol.apply_updates(p, u)
                _compare([(p, ol.averaged_params(state))], [(fast, slow)])


def test_lookahead_fast_keyword_is_deprecated():
    params = _tree()
    with pytest.warns(DeprecationWarning, match="'fast' is renamed 'fast_optimizer'"):
        tx = ol.lookahead(fast=ol.sgd(0.1), sync_period=2, slow_step_size=0.5)
    ref = ol.lookahead(ol.sgd(0.1), 2, 0.5)
    u, _ = tx.update(params, tx.init(params), params)
    ru, _ = ref.update(params, ref.init(params), params)
    jax.tree.map(np.testing.assert_array_equal, u, ru)
    with pytest.raises(TypeError, match="both 'fast_optimizer' and its deprecated name 'fast'"):
        ol.lookahead(ol.sgd(0.1), 2, 0.5, fast=ol.sgd(0.1))
    with pytest.raises(TypeError, match="lookahead: missing the argument 'slow_step_size'"):
        ol.lookahead(ol.sgd(0.1), 2)
    with pytest.raises(TypeError, match="lookahead: reset_state must be a bool"):
        ol.lookahead(ol.sgd(0.1), 2, 0.5, 1)


def test_scale_by_factored_rms_takes_optax_decay_rate_fn():
    def decay_rate_fn(i, c):  # a constant-then-growing decay, the same on both sides
        return 0.5 + 0.4 * (1 - (jnp.asarray(i, jnp.float64) + 1) ** (-c))

    with jax.enable_x64(True):
        params = {"m": jnp.asarray(np.random.default_rng(3).normal(size=(4, 3))), **_tree()}
        grads = _grads(params, n=5)
        kw = dict(decay_rate=0.7, step_offset=1, min_dim_size_to_factor=2, epsilon=1e-12)
        ours = _steps(
            ol.scale_by_factored_rms(decay_rate_fn=decay_rate_fn, **kw),
            ol.apply_updates,
            params,
            grads,
        )
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            theirs = _steps(
                optax.scale_by_factored_rms(decay_rate_fn=decay_rate_fn, **kw),
                optax.apply_updates,
                params,
                grads,
            )
        _compare(ours, theirs)
        default = _steps(ol.scale_by_factored_rms(**kw), ol.apply_updates, params, grads)
        assert not np.allclose(default[-1][0]["m"], ours[-1][0]["m"])


def test_scale_by_factored_rms_refuses_a_decay_rate_fn_that_is_not_a_function():
    with pytest.raises(TypeError, match="scale_by_factored_rms: decay_rate_fn must be a function"):
        ol.scale_by_factored_rms(decay_rate_fn=0.8)  # type: ignore[arg-type]


def _noise(lib, name, **kw):
    if name == "add_noise":
        return lib.add_noise(0.01, 0.55, **kw)
    return lib.noisy_sgd(0.05, **kw)


@pytest.mark.parametrize("name", ["add_noise", "noisy_sgd"])
def test_noise_seed_and_missing_key_draw_optax_noise(name):
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)
        with pytest.warns(DeprecationWarning, match="'seed' is deprecated"):
            ours_seed = _steps(_noise(ol, name, seed=7), ol.apply_updates, params, grads)
        with pytest.warns(DeprecationWarning, match="seed"), jax.numpy_dtype_promotion("standard"):
            theirs_seed = _steps(_noise(optax, name, seed=7), optax.apply_updates, params, grads)
        _compare(ours_seed, theirs_seed)
        _compare(ours_seed, _steps(_noise(ol, name, key=7), ol.apply_updates, params, grads))
        ours_none = _steps(_noise(ol, name, key=None), ol.apply_updates, params, grads)
        with pytest.warns(UserWarning, match="Specifying a key"):
            with jax.numpy_dtype_promotion("standard"):
                theirs_none = _steps(_noise(optax, name), optax.apply_updates, params, grads)
        _compare(ours_none, theirs_none)  # key=None is seed 0 on both sides
        assert not np.allclose(ours_none[0][0]["w"], ours_seed[0][0]["w"])


@pytest.mark.parametrize("name", ["add_noise", "noisy_sgd"])
def test_noise_refuses_both_seed_and_key(name):
    with pytest.raises(ValueError, match=f"{name}: only one of seed or key"):
        _noise(ol, name, key=1, seed=2)


def _sophia_run(lib, params, grads, **kw):
    """Sophia steps with optax's Hutchinson estimator, given the loss through ``obj_fn``."""
    make = lib.sophia if lib is ol else optax.contrib.sophia
    tx = make(0.05, update_interval=2, **kw)
    state, out = tx.init(params), []
    for g in grads:
        obj_fn = lambda p, g=g: sum(jnp.sum(g[k] * p[k] + p[k] ** 2 * (1 + p[k] ** 2)) for k in p)
        u, state = tx.update(jax.grad(obj_fn)(params), state, params, obj_fn=obj_fn)
        params = lib.apply_updates(params, u)
        out.append((u, params))
    return out, state


def test_sophia_takes_optax_hessian_diagonal_fn():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=5)
        estimator = optax.contrib.hutchinson_estimator_diag_hessian
        ours, state = _sophia_run(ol, params, grads, hessian_diagonal_fn=estimator())
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            theirs, ref = _sophia_run(optax, params, grads, hessian_diagonal_fn=estimator())
        _compare(ours, theirs)
        # the estimator's state (its key) is kept, and advances, as optax's
        ours_state = [
            x
            for x in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ol.SophiaState))
            if isinstance(x, ol.SophiaState)
        ]
        np.testing.assert_array_equal(
            jax.random.key_data(ours_state[0].hessian_fn_state.key),
            jax.random.key_data(ref[0].hessian_fn_state.key),
        )


def test_sophia_verbose_prints_optax_win_rate(capfd):
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=4)
        kw = dict(
            hessian_diagonal_fn=optax.contrib.hutchinson_estimator_diag_hessian(),
            verbose=True,
            print_win_rate_every_n_steps=2,
        )
        _sophia_run(ol, params, grads, **kw)
        jax.effects_barrier()
        ours = capfd.readouterr().out
        with jax.numpy_dtype_promotion("standard"):
            _sophia_run(optax, params, grads, **kw)
        jax.effects_barrier()
        theirs = capfd.readouterr().out
        _sophia_run(ol, params, grads, **{**kw, "verbose": False})
        jax.effects_barrier()
        assert capfd.readouterr().out == ""
    lines = ours.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("Sophia optimizer win rate: ") for x in lines)
    rates = [float(x.rsplit(" ", 1)[1]) for x in lines]
    ref = [float(x.rsplit(" ", 1)[1]) for x in theirs.strip().splitlines()]
    np.testing.assert_allclose(rates, ref, **TOL)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(hessian_diagonal_fn=lambda p: p), "hessian_diagonal_fn is function"),
        (dict(verbose=1), "verbose must be a bool"),
        (dict(print_win_rate_every_n_steps=-1), "print_win_rate_every_n_steps"),
    ],
)
def test_sophia_refuses_bad_options(kw, match):
    with pytest.raises((TypeError, ValueError), match=f"sophia: .*{match}"):
        ol.sophia(0.1, **kw)


def test_optimistic_adam_takes_optax_first_interface():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=5)
        ours = _steps(ol.optimistic_adam(0.05, 0.2, 0.8, 0.99), ol.apply_updates, params, grads)
        with warnings.catch_warnings(), jax.numpy_dtype_promotion("standard"):
            warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in optax
            tx = optax.optimistic_adam(0.05, 0.2, 0.8, 0.99)
            theirs = _steps(tx, optax.apply_updates, params, grads)
        _compare(ours, theirs)
        v2 = ol.optimistic_adam_v2(1.0, alpha=0.05, beta=0.2, b1=0.8, b2=0.99)
        _compare(_steps(v2, ol.apply_updates, params, grads), theirs)


def test_optimistic_adam_with_v2_keywords_is_deprecated():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=3)
        with pytest.warns(DeprecationWarning, match="use optimistic_adam_v2"):
            old = ol.optimistic_adam(0.05, alpha=0.5, beta=0.3)
        new = ol.optimistic_adam_v2(0.05, alpha=0.5, beta=0.3)
        _compare(
            _steps(old, ol.apply_updates, params, grads),
            _steps(new, ol.apply_updates, params, grads),
            tol=dict(rtol=0, atol=0),
        )


def test_monitor_takes_optax_measures():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params, n=4)

        def solver(lib):
            measures = {
                "norm_before_clip": optax.tree.norm,
                "is_clipped_ema": optax.measure_with_ema(
                    lambda x: optax.tree.norm(x) > 1.0, decay=0.9
                ),
            }
            return lib.chain(
                lib.sgd(0.5, momentum=0.9), lib.monitor(measures), lib.clip_by_global_norm(1.0)
            )

        def run(lib):
            tx = solver(lib)
            p, state, out = params, tx.init(params), []
            for g in grads:
                u, state = tx.update(g, state, p)
                p = lib.apply_updates(p, u)
                out.append(
                    (
                        u,
                        p,
                        [optax.tree.get(state, k) for k in ("norm_before_clip", "is_clipped_ema")],
                    )
                )
            return out

        with jax.numpy_dtype_promotion("standard"):  # optax's measures need standard promotion
            ours = run(ol)
            theirs = run(optax)
        _compare([(u, p) for u, p, _ in ours], [(u, p) for u, p, _ in theirs])
        for (_, _, m), (_, _, rm) in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(np.asarray(m), np.asarray(rm), **TOL)
        assert 0 < float(ours[-1][2][1]) < 1  # the ema moved: some steps were clipped


def test_monitor_measures_state_keeps_its_structure():
    params = _tree()
    tx = ol.monitor({"norm": optax.tree.norm})
    state = tx.init(params)
    assert isinstance(state, ol.MonitorMeasuresState)
    u, new_state = jax.jit(tx.update)(params, state, params)
    jax.tree.map(np.testing.assert_array_equal, u, params)  # the updates pass through
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    np.testing.assert_allclose(new_state.measurements["norm"], optax.tree.norm(params), rtol=1e-6)
    with pytest.raises(TypeError, match="monitor: the measure 'x' is int"):
        ol.monitor({"x": 1})
    with pytest.raises(TypeError, match="monitor: give a dict of measures or inner, not both"):
        ol.monitor({"norm": optax.tree.norm}, inner=ol.sgd(0.1))
    tx = ol.monitor(inner=ol.sgd(0.1))  # optimlab's form, by keyword
    assert isinstance(tx.init(params), ol.MonitorState)


def test_partition_takes_optax_hashable_labels():
    with jax.enable_x64(True):
        params = _tree()
        grads = _grads(params)

        def run(lib):
            tx = lib.partition({0: lib.adam(0.1), 1: lib.sgd(0.3)}, {"w": 0, "b": 1})
            return _steps(tx, lib.apply_updates, params, grads)

        ours = run(ol)
        with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
            theirs = run(optax)
        _compare(ours, theirs)
