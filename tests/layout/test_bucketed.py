"""The multi-tensor path: every bucket-safe registry case through ``bucketed`` (the
conformance checks, and Rosenbrock on a point split into two leaves), equality with
the per-leaf path, state conversion, compile counts and memory bounds."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests import problems
from tests import test_conformance as conformance
from tests.registry import CASES


def _bucket_safe(make) -> bool:
    try:
        ol.bucketed(make())
    except ValueError as e:
        if "bucket-safe" in str(e):
            return False
        raise
    return True


SAFE = [
    dataclasses.replace(c, make=lambda c=c: ol.bucketed(c.make()), rosenbrock=None)
    for c in CASES
    if _bucket_safe(c.make)
]
IDS = [c.id for c in SAFE]

CHECKS = {
    "trains": conformance.test_trains_under_jit,
    "low_precision": conformance.test_low_precision_zero_gradients,
    "complex": conformance.test_complex_params,
}


def test_the_core_optimizers_are_bucket_safe():
    ids = set(IDS)
    for name in (
        "sgd",
        "sgd_momentum",
        "sgd_nesterov_wd",
        "adam",
        "adamw",
        "amsgrad",
        "clip_adamw",
        "lion",
        "rmsprop",
        "rmsprop_centered_momentum",
        "adagrad",
    ):
        assert name in ids


#: Every elementwise family of the registry, by its first case: each declares its
#: primitive bucket-safe, so it runs through every bucketed check above. A family
#: whose primitive stops declaring itself drops out of ``IDS`` and fails here.
ELEMENTWISE_FAMILIES = (
    "adabelief",
    "adadelta",
    "adamax",
    "adan",
    "ademamix",
    "adopt",
    "asgd",
    "nadam",
    "radam",
    "rprop",
    "sign_sgd",
    "signum",
    "yogi",
    "schedule_sgd",
)


@pytest.mark.parametrize("name", ELEMENTWISE_FAMILIES)
def test_every_elementwise_family_is_bucket_safe(name):
    assert name in set(IDS), f"{name} is elementwise but bucketed refuses it"


def test_bucket_safety_is_declared_not_guessed():
    # A transformation that declares nothing is refused, whatever its code does; the
    # same code declared elementwise is accepted.
    from optimlab._core import _elementwise

    def update(updates, state, params=None, **extra_args):
        return updates, state

    undeclared = ol.GradientTransformation(lambda p: ol.EmptyState(), update)
    with pytest.raises(ValueError, match=r"bucketed: .*update is not bucket-safe"):
        ol.bucketed(undeclared)
    declared = _elementwise.declare(ol.GradientTransformation(lambda p: ol.EmptyState(), update))
    ol.bucketed(ol.chain(ol.clip_by_global_norm(1.0), declared))


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("case", SAFE, ids=IDS)
def test_conformance_through_bucketed(case, check):
    CHECKS[check](case)


ROSENBROCK = [c for c in CASES if c.rosenbrock and _bucket_safe(c.rosenbrock[0])]


def _rosenbrock_two_leaves(params):
    return problems.rosenbrock({"xy": jnp.stack([params["x"], params["y"]])})


@pytest.mark.parametrize("case", ROSENBROCK, ids=[c.id for c in ROSENBROCK])
def test_converges_on_rosenbrock_through_bucketed(case):
    # The conformance problem's single leaf would stay per-leaf: the point is split
    # into two scalar leaves, which share one bucket of 2 elements.
    make, steps, tol = case.rosenbrock
    tx = ol.bucketed(make())
    xy = problems.rosenbrock_params()["xy"]
    params = {"x": xy[0], "y": xy[1]}
    state = tx.init(params)
    # Two leaves of one shape: one chunk, so one runtime offset.
    assert isinstance(state, ol.BucketedState) and len(state.offsets) == 1
    nodes = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ol.Buckets))
    buckets = [b for x in nodes if isinstance(x, ol.Buckets) for b in x.buckets]
    assert buckets and all(b.shape == (2,) for b in buckets)
    final, _, _ = problems.make_train(tx, _rosenbrock_two_leaves, steps)(params, state)
    err = max(float(jnp.abs(final["x"] - 1.0)), float(jnp.abs(final["y"] - 1.0)))
    assert err < tol, f"{case.id}: max(|x - 1|, |y - 1|) = {err}"


def _params():
    rng = np.random.default_rng(0)
    shapes = {"big": (40, 50), "w": (3, 4), "b": (5,), "s": (), "v": (7,)}
    p = {k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in shapes.items()}
    p["h"] = [
        jnp.asarray(rng.standard_normal(6), jnp.bfloat16),
        jnp.asarray(rng.standard_normal(3), jnp.bfloat16),
        None,
    ]
    return p


def _grads(params, k):
    return jax.tree.map(
        lambda p: (jnp.sin(p.astype(jnp.float32) * (k + 1)) * 3).astype(p.dtype), params
    )


INNER = {
    "sgd": lambda: ol.sgd(0.1),
    "sgd_momentum_nesterov_wd": lambda: ol.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam_amsgrad_wd": lambda: ol.adam(0.1, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda: ol.adamw(0.1),
    "lion": lambda: ol.lion(0.1, weight_decay=0.1),
    "rmsprop_centered_momentum": lambda: ol.rmsprop(0.1, momentum=0.9, centered=True),
    "adagrad": lambda: ol.adagrad(0.1, lr_decay=0.01, weight_decay=1e-2),
}


def _run(tx, params, steps=3):
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    out = []
    for k in range(steps):
        updates, state = step(_grads(params, k), state, params)
        params = ol.apply_updates(params, updates)
        out.append(updates)
    return params, state, out


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "clip"])
@pytest.mark.parametrize("name", list(INNER))
def test_bucketed_equals_per_leaf(name, clip):
    def make():
        inner = INNER[name]()
        return ol.chain(ol.clip_by_global_norm(1.0), inner) if clip else inner

    params = _params()
    tx = ol.bucketed(make(), min_leaf_size=100)
    p1, s1, u1 = _run(make(), params)
    p2, s2, u2 = _run(tx, params)
    back = ol.unbucket_state(tx, s2, params)
    assert jax.tree.structure(back) == jax.tree.structure(s1)
    # Elementwise rules match to an ulp, not bitwise: XLA:CPU vectorises a bucket's loop
    # and may lower a division or square root to another (equally accurate) instruction
    # sequence than a small leaf's scalar loop. With clipping, the global norm also sums
    # squares bucket by bucket instead of leaf by leaf (a last-ulp change of the factor),
    # and three steps of Adam-type rules can amplify it where moments are tiny.
    rtol, atol = (2e-5, 1e-6) if clip else (1e-6, 1e-7)

    def compare(a, b):
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(b, np.float64),
            rtol=rtol if a.dtype != jnp.bfloat16 else 1e-2,
            atol=atol,
        )

    for a, b in zip(jax.tree.leaves((p1, u1, s1)), jax.tree.leaves((p2, u2, back)), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        compare(a, b)


def test_state_is_bucketed_and_large_leaves_stay_per_leaf():
    params = _params()
    tx = ol.bucketed(ol.adamw(0.1), min_leaf_size=100)
    state = tx.init(params)
    mu = state.inner_state.inner_state[0].mu
    assert isinstance(mu, ol.Buckets)
    assert [x.shape for x in mu.leaves] == [(40, 50)]
    # f32: w, b, s, v (12 + 5 + 1 + 7 elements, in flattening order); bf16: h[0], h[1].
    assert sorted((x.shape, x.dtype) for x in mu.buckets) == sorted(
        [((25,), jnp.dtype(jnp.float32)), ((9,), jnp.dtype(jnp.bfloat16))]
    )
    assert len(state.offsets) == 6
    abstract = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(abstract) == jax.tree.structure(state)


def test_state_conversion_round_trips():
    params = _params()
    inner = ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(0.1, amsgrad=True))
    tx = ol.bucketed(inner, min_leaf_size=100)
    _, state, _ = _run(tx, params, steps=2)
    per_leaf = ol.unbucket_state(tx, state, params)
    again = ol.bucket_state(tx, per_leaf, params)
    assert jax.tree.structure(again) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The per-leaf form is the wrapped optimizer's own state: it can continue there.
    fresh = ol.unbucket_state(tx, tx.init(params), params)
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(inner.init(params)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert ol.hyperparams(again).keys() == ol.hyperparams(per_leaf).keys()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    assert jax.tree.structure(ol.bucket_state(tx, per_leaf, abstract)) == jax.tree.structure(state)


def test_conversion_errors():
    params = _params()
    tx = ol.bucketed(ol.adam(0.1))
    with pytest.raises(ValueError, match="not built by optimlab.bucketed"):
        ol.unbucket_state(ol.adam(0.1), tx.init(params), params)
    with pytest.raises(ValueError, match="bucket_state: the state does not have the structure"):
        ol.bucket_state(tx, ol.sgd(0.1).init(params), params)
    with pytest.raises(ValueError, match="expected a BucketedState"):
        tx.update(params, ol.adam(0.1).init(params), params)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ol.lamb(0.1), "scale_by_adam_root|scale_by_trust_ratio"),
        (lambda: ol.adafactor(0.1), "adafactor|factored"),
        (lambda: ol.chain(ol.clip_by_global_norm(1.0), optax.adam(0.1)), "optax"),
        (lambda: ol.clip_by_block_rms(1.0), "clip_by_block_rms"),
    ],
    ids=["lamb", "adafactor", "optax", "block_rms"],
)
def test_unsafe_transformations_raise(make, name):
    with pytest.raises(ValueError, match=rf"bucketed: .*({name}).* is not bucket-safe"):
        ol.bucketed(make())


def test_masked_weight_decay_raises():
    with pytest.raises(ValueError, match="add_decayed_weights with a mask is not bucket-safe"):
        ol.bucketed(ol.adamw(0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)))


def test_min_leaf_size_validated():
    with pytest.raises(ValueError, match="min_leaf_size must be at least 1"):
        ol.bucketed(ol.sgd(0.1), min_leaf_size=0)


def test_setting_hyperparams_never_recompiles():
    params = {f"p{i}": jnp.ones((3,)) for i in range(20)}
    tx = ol.bucketed(ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(1e-3)))
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(p, s, p), donate_argnums=(1,))
    _, state = step(params, state)
    for value in (
        0.5,
        np.float32(0.25),
        np.float64(0.125),
        jnp.asarray(0.1),
        np.asarray(0.2),
        jnp.asarray(0.3, jnp.bfloat16),
        1,
    ):
        state = ol.set_hyperparams(state, learning_rate=value, weight_decay=value)
        _, state = step(params, state)
    assert step._cache_size() == 1


def _kernels(text):
    """Fused computations of a compiled module, with names, ids and metadata removed."""
    out, body = [], None
    for line in text.splitlines():
        if line.lstrip("%").startswith("fused_computation"):
            body = [line.split("(", 1)[1]]
        elif body is not None:
            body.append(line)
            if line.startswith("}"):
                out.append(re.sub(r"[.]\d+|, metadata=\{[^}]*\}", "", "\n".join(body)))
                body = None
    return out


def test_many_leaves_compile_into_shared_kernels():
    # Leaves are sliced out of their bucket at runtime offsets, one per chunk of 18
    # leaves of one shape (about the square root of 300), so the 300 leaves run 18
    # distinct slicing kernels, one per position in a chunk, instead of 300 (XLA:CPU
    # compiles each distinct kernel separately), and the step passes 17 offsets.
    params = {f"p{i:03d}": jnp.ones((10,)) for i in range(300)}
    tx = ol.bucketed(ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(1e-3)))
    state = tx.init(params)
    assert len(state.offsets) == 17

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return ol.apply_updates(p, u), s

    text = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params).compile().as_text()
    kernels = _kernels(text)
    assert len(kernels) < 2 * 300 + 50
    assert len(set(kernels)) < 18 + 20
    # The update is materialised before it is sliced: each leaf's kernel is the slice
    # and the add of apply_updates (three parameters, an offset add, the slice, the
    # add), not a copy of the update rule's tail.
    slicing = [k for k in kernels if "dynamic-slice(" in k]
    assert len(slicing) == 300
    assert max(k.count("\n") for k in slicing) <= 8


MB = 2**20


def _temp_fraction(tx, params):
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return ol.apply_updates(p, u), s

    state = jax.eval_shape(tx.init, params)
    mem = (
        jax.jit(step, donate_argnums=(0, 1))
        .lower(params, state, params)
        .compile()
        .memory_analysis()
    )
    nbytes = lambda t: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(t))
    return mem.temp_size_in_bytes / (2 * nbytes(params) + nbytes(state))


@pytest.mark.parametrize("clip", [False, True], ids=["adamw", "clip_adamw"])
@pytest.mark.parametrize("wrap", [False, True], ids=["per_leaf", "bucketed"])
def test_donated_step_has_small_temporaries(clip, wrap):
    params = {"w": jax.ShapeDtypeStruct((2_000_000,), jnp.float32)}
    params.update({f"m{i}": jax.ShapeDtypeStruct((50_000,), jnp.float32) for i in range(10)})
    params.update({f"b{i}": jax.ShapeDtypeStruct((500,), jnp.float32) for i in range(30)})
    tx = ol.adamw(1e-3)
    if clip:
        tx = ol.chain(ol.clip_by_global_norm(1.0), tx)
    if wrap:
        tx = ol.bucketed(tx)
    assert _temp_fraction(tx, params) < 0.05


def test_conversions_refuse_params_the_state_was_not_built_for():
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    for min_leaf_size in (1, 100):  # every leaf per-leaf, every leaf bucketed
        tx = ol.bucketed(ol.adam(0.1), min_leaf_size=min_leaf_size)
        state = tx.init(params)
        by_hand = ol.BucketedState(state.offsets, state.inner_state)  # no recorded layout
        wrong = [
            ({"w": jnp.ones(3)}, r"unbucket_state: .*\['w'\]"),
            ({"x": jnp.ones(4), "y": jnp.ones(1)}, r"unbucket_state: .*\['x'\]"),
            ({"w": jnp.ones(2), "b": jnp.ones(3)}, r"unbucket_state: .*\['b'\].*\(3,\).*\(2,\)"),
            ({"w": jnp.ones(3), "b": jnp.ones(2, jnp.bfloat16)}, r"\['b'\].*bfloat16"),
        ]
        for bad, match in wrong:
            with pytest.raises(ValueError, match=match):
                ol.unbucket_state(tx, state, bad)
        for bad, _ in wrong[2:]:
            with pytest.raises(ValueError, match="unbucket_state: "):
                ol.unbucket_state(tx, by_hand, bad)
        per_leaf = ol.adam(0.1).init(params)
        with pytest.raises(ValueError, match=r"bucket_state: .*mu\['w'\].*\(3,\).*\(4,\)"):
            ol.bucket_state(tx, per_leaf, {"w": jnp.ones(4), "b": jnp.ones(2)})
        with pytest.raises(ValueError, match=r"bucket_state: .*mu\['w'\].*\(4,\).*\(3,\)"):
            ol.bucket_state(tx, ol.adam(0.1).init({"w": jnp.ones(4), "b": jnp.ones(2)}), params)
        with pytest.raises(ValueError, match="bucket_state: the state's tree structure"):
            ol.bucket_state(tx, per_leaf, {"w": jnp.ones(3)})
        with pytest.raises(TypeError, match="unbucket_state: state must be a BucketedState"):
            ol.unbucket_state(tx, per_leaf, params)
        # The right params still convert, and the recorded layout survives jit.
        _, stepped = jax.jit(tx.update)(params, state, params)
        assert stepped.params_layout == state.params_layout
        back = ol.unbucket_state(tx, stepped, params)
        assert back.inner_state[0].mu["w"].shape == (3,)
