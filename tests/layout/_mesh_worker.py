"""Sharding checks on 8 host devices, run in a subprocess by tests/layout/test_sharding.py.

The device count is fixed when JAX's backend starts, so these checks cannot share
the test process. Each check runs in isolation; the results are printed as one
JSON object ``{check name: "ok" | traceback}`` on the last line of stdout.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import traceback
import warnings

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
warnings.simplefilter("error")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")

import optimlab as ol  # noqa: E402
from optimlab import checkpoint  # noqa: E402
from tests.layout._workers import JIT_CASES  # noqa: E402
from tests.registry import CASES  # noqa: E402


def _mesh(explicit: bool):
    kind = AxisType.Explicit if explicit else AxisType.Auto
    return jax.make_mesh((2, 4), ("data", "model"), axis_types=(kind, kind))


def _sharded_params(mesh):
    # Distinct shapes, so a state leaf with a parameter's shape belongs to that parameter.
    return {
        "a": jax.device_put(jnp.linspace(-1.0, 1.0, 24), NamedSharding(mesh, P("model"))),
        "b": {
            "c": jax.device_put(
                jnp.linspace(-2.0, 2.0, 128).reshape(16, 8), NamedSharding(mesh, P("data", "model"))
            )
        },
        "d": jax.device_put(jnp.linspace(0.5, 1.5, 10), NamedSharding(mesh, P())),
    }


def _grads(params):
    return jax.tree.map(lambda p: jnp.cos(p) + 0.1, params)


def _by_shape(params):
    return {p.shape: p.sharding for p in jax.tree.leaves(params)}


def _is_packed_hyperparams(path) -> bool:
    return any(getattr(k, "name", None) == "packed" for k in path)


def _check_follows(params, state, label):
    """Every state leaf with a parameter's shape has that parameter's sharding."""
    want = _by_shape(params)
    matched = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        shape = jnp.shape(leaf)
        if isinstance(leaf, jax.Array) and _is_packed_hyperparams(path):
            continue  # replicated, as every hyperparameter: its length may equal a param's
        if shape in want and shape != ():
            got = leaf.sharding
            assert got.is_equivalent_to(want[shape], len(shape)), (
                f"{label}: {jax.tree_util.keystr(path)} is {got}, the param is {want[shape]}"
            )
            matched += 1
    return matched


def check_inherit(case):
    mesh = _mesh(explicit=False)
    params = _sharded_params(mesh)
    tx = case.make()
    # Eager init: every per-param leaf keeps its parameter's sharding.
    state = tx.init(params)
    matched = _check_follows(params, state, "eager init")
    # state_shardings: the same placement, computed abstractly, for jit's out_shardings.
    shardings = ol.state_shardings(tx, params, mesh)
    assert jax.tree.structure(shardings) == jax.tree.structure(jax.eval_shape(tx.init, params))
    abstract = jax.tree.map(
        lambda s, x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        shardings,
        jax.eval_shape(tx.init, params),
    )
    if case.id != "lbfgs_single":  # flat history: documented as replicated
        _check_follows(params, abstract, "state_shardings")
    return matched


def check_jit(case, explicit=True):
    tx = case.make()
    # Explicit mesh axes: sharding is part of the type, jit(init) and jit(update) follow it.
    mesh = _mesh(explicit=True)
    params = _sharded_params(mesh)
    with jax.set_mesh(mesh):
        if not explicit:
            return _check_explicit_refusal(tx, params)
        state = jax.jit(tx.init)(params)
        _check_follows(params, state, "explicit jit init")
        _, state = jax.jit(tx.update)(_grads(params), state, params)
        _check_follows(params, state, "explicit jit update")
    # Auto mesh axes: jit(init) needs out_shardings, and then the update keeps them.
    mesh = _mesh(explicit=False)
    params = _sharded_params(mesh)
    shardings = ol.state_shardings(tx, params, mesh)
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    _check_follows(params, state, "auto jit init")
    step = jax.jit(tx.update, out_shardings=(None, shardings))
    _, state = step(_grads(params), state, params)
    _check_follows(params, state, "auto jit update")


def _check_explicit_refusal(tx, params):
    # muon's Newton-Schulz iteration multiplies a matrix by its transpose; with the
    # contracted dimension sharded over an Explicit axis, JAX asks for an explicit output
    # sharding (docs/multihost.md). Auto axes (checked next) need nothing.
    state = jax.jit(tx.init)(params)
    try:
        jax.jit(tx.update)(_grads(params), state, params)
    except Exception as e:
        assert "Contracting dimensions are sharded" in str(e), e
    else:
        raise AssertionError("muon on Explicit axes now works: test it like the others")


def check_auto_jit_without_out_shardings_replicates():
    # Documents why state_shardings exists: zeros made under jit do not follow the params.
    mesh = _mesh(explicit=False)
    params = _sharded_params(mesh)
    state = jax.jit(ol.adam().init)(params)
    mu = state.inner_state[0].mu["b"]["c"]
    assert not mu.sharding.is_equivalent_to(params["b"]["c"].sharding, 2), mu.sharding


def _replicated_params(mesh):
    return jax.tree.map(
        lambda p: jax.device_put(p, NamedSharding(mesh, P())),
        {
            "w1": jnp.linspace(-0.5, 0.5, 32).reshape(4, 8),
            "b1": jnp.zeros(8),
            "w2": jnp.linspace(0.3, -0.3, 8).reshape(8, 1),
            "b2": jnp.zeros(1),
        },
    )


def _mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def _zero1_tx():
    return ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(1e-2, weight_decay=1e-2))


def check_zero1_layout():
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    params = _replicated_params(mesh)
    tx = _zero1_tx()
    shardings = ol.zero1_state_shardings(tx, params, mesh)
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    mu = state[1].inner_state[0].mu
    assert mu["w1"].sharding.spec == P("data", None), mu["w1"].sharding
    assert mu["w2"].sharding.spec == P("data", None), mu["w2"].sharding
    assert mu["b1"].sharding.spec == P("data"), mu["b1"].sharding
    assert mu["b2"].sharding.is_fully_replicated, mu["b2"].sharding  # size 1: not divisible
    assert mu["w1"].addressable_shards[0].data.shape == (1, 8)  # a quarter per data rank
    assert state[1].count.sharding.is_fully_replicated
    assert state[1].hyperparams.packed.sharding.is_fully_replicated
    # Packed hyperparameters stay whole even when the data axis divides their number.
    adam_shardings = ol.zero1_state_shardings(ol.adam(1e-2), params, mesh)
    assert adam_shardings.hyperparams.packed.spec == P(), adam_shardings.hyperparams.packed
    # An FSDP-style param already split over "data" keeps its placement.
    fsdp = dict(params, w1=jax.device_put(params["w1"], NamedSharding(mesh, P(None, "data"))))
    s2 = ol.zero1_state_shardings(tx, fsdp, mesh)
    assert s2[1].inner_state[0].mu["w1"].spec == P(None, "data")
    try:
        ol.zero1_state_shardings(tx, params, mesh, data_axis="batch")
    except ValueError as e:
        assert "data_axis 'batch' is not an axis" in str(e), e
    else:
        raise AssertionError("an unknown data_axis was accepted")


def _train(tx, params, state, x, y, steps, step_fn):
    losses = []
    for _ in range(steps):
        params, state, loss = step_fn(params, state, x, y)
        losses.append(loss)
    return params, state, losses


def _make_step(tx, **jit_kwargs):
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(_mlp_loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return ol.apply_updates(params, updates), state, loss

    return jax.jit(step, **jit_kwargs)


def check_zero1_training_matches_single_device():
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    tx = _zero1_tx()
    x = jnp.linspace(-1.0, 1.0, 64 * 4).reshape(64, 4)
    y = jnp.sin(3 * x[:, :1])
    # Single device, nothing sharded.
    cpu0 = jax.devices()[0]
    p0 = jax.device_put(_replicated_params(mesh), cpu0)
    p0 = jax.tree.map(lambda a: jax.device_put(np.asarray(a), cpu0), p0)
    ref_p, ref_s, ref_l = _train(
        tx, p0, tx.init(p0), jax.device_put(x, cpu0), jax.device_put(y, cpu0), 5, _make_step(tx)
    )
    # 8 devices: params replicated, batch split over "data", state ZeRO-1 sharded.
    params = _replicated_params(mesh)
    shardings = ol.zero1_state_shardings(tx, params, mesh)
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    rep = jax.tree.map(lambda p: p.sharding, params)
    step = _make_step(tx, out_shardings=(rep, shardings, NamedSharding(mesh, P())))
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    ys = jax.device_put(y, NamedSharding(mesh, P("data")))
    got_p, got_s, got_l = _train(tx, params, state, xs, ys, 5, step)
    assert got_s[1].inner_state[0].nu["w1"].sharding.spec == P("data", None)
    # The batch mean and the global norm are sums over devices in another order than on
    # one device, so equal up to float32 rounding, not bitwise; Adam's m / sqrt(v) then
    # turns a rounding difference in a near-zero gradient into ~1e-7 of an O(1e-2) step:
    # an absolute 1e-6 on O(1) params and losses is 10x that.
    np.testing.assert_allclose(np.asarray(got_l), np.asarray(ref_l), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(got_p), jax.tree.leaves(ref_p), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(got_s), jax.tree.leaves(ref_s), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert float(ref_l[-1]) < float(ref_l[0])


def check_checkpoint_restore_on_mesh():
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    params = _replicated_params(mesh)
    tx = _zero1_tx()
    shardings = ol.zero1_state_shardings(tx, params, mesh)
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    grads = jax.grad(_mlp_loss)(params, jnp.ones((8, 4)), jnp.ones((8, 1)))
    _, state = jax.jit(tx.update, out_shardings=(None, shardings))(grads, state, params)
    path = pathlib.Path(tempfile.mkdtemp()) / "zero1.npz"
    checkpoint.save(path, state)
    template = jax.tree.map(
        lambda s, x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        shardings,
        jax.eval_shape(tx.init, params),
    )
    restored = checkpoint.restore(path, template)
    for a, b, s in zip(
        jax.tree.leaves(restored), jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True
    ):
        assert a.sharding == s, (a.sharding, s)
        np.testing.assert_array_equal(
            np.asarray(a).view(np.uint8) if a.ndim else np.asarray(a),
            np.asarray(b).view(np.uint8) if b.ndim else np.asarray(b),
        )
    # A concrete sharded template works the same way.
    restored2 = checkpoint.restore(path, state)
    assert all(
        a.sharding == b.sharding
        for a, b in zip(jax.tree.leaves(restored2), jax.tree.leaves(state), strict=True)
    )


def checks():
    out = {}
    for case in CASES:
        out[f"inherit/{case.id}"] = lambda c=case: check_inherit(c)
    by_id = {c.id: c for c in CASES}
    for cid in JIT_CASES:
        out[f"jit/{cid}"] = lambda c=by_id[cid]: check_jit(c, explicit=c.id != "muon")
    out["auto_jit_without_out_shardings_replicates"] = (
        check_auto_jit_without_out_shardings_replicates
    )
    out["zero1_layout"] = check_zero1_layout
    out["zero1_training_matches_single_device"] = check_zero1_training_matches_single_device
    out["checkpoint_restore_on_mesh"] = check_checkpoint_restore_on_mesh
    return out


def main():
    assert jax.device_count() == 8, jax.devices()
    results = {}
    for name, fn in checks().items():
        try:
            fn()
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
