"""optimlab.checkpoint: exact round trips, validation against a template, atomic writes."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from optimlab import checkpoint
from tests import problems


def _bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(
            np.atleast_1d(np.asarray(x)).view(np.uint8), np.atleast_1d(np.asarray(y)).view(np.uint8)
        )


def _trained(tx, steps=3):
    params = problems.quadratic_params()
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(jax.grad(problems.quadratic_loss)(params), state, params)
        params = ol.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize(
    "make",
    [
        lambda: ol.adam(1e-2, amsgrad=True, mu_dtype=jnp.bfloat16),
        lambda: ol.chain(ol.clip_by_global_norm(1.0), ol.sgd(0.1, momentum=0.9)),
    ],
    ids=["adam_bf16_moments", "clip_sgd"],
)
def test_round_trip_is_bitwise_with_eval_shape_template(tmp_path, make):
    tx = make()
    params, state = _trained(tx)
    path = checkpoint.save(tmp_path / "ck.npz", state, metadata={"run": "a"})
    template = jax.eval_shape(tx.init, params)
    _bitwise_equal(checkpoint.restore(path, template), state)
    manifest = checkpoint.read_manifest(path)
    assert manifest["schema_version"] == 2 and manifest["step"] == 3
    assert manifest["metadata"] == {"run": "a"}
    assert {e["dtype"] for e in manifest["leaves"]} == {
        str(x.dtype) for x in jax.tree.leaves(state)
    }


def test_save_restore_continue_equals_uninterrupted(tmp_path):
    tx = ol.adamw(1e-2)
    params, state = _trained(tx, 2)
    checkpoint.save(tmp_path / "ck.npz", state)
    restored = checkpoint.restore(tmp_path / "ck.npz", tx.init(params))
    g = jax.grad(problems.quadratic_loss)(params)
    u1, s1 = tx.update(g, state, params)
    u2, s2 = tx.update(g, restored, params)
    _bitwise_equal(u1, u2)
    _bitwise_equal(s1, s2)


def test_a_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    tx = ol.adam(1e-2)
    params, state = _trained(tx, 1)
    path = checkpoint.save(tmp_path / "ck.npz", state)
    _, newer = _trained(tx, 2)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, newer)
    monkeypatch.undo()
    _bitwise_equal(checkpoint.restore(path, tx.init(params)), state)
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_files_are_refused(tmp_path, damage):
    tx = ol.adam()
    params, state = _trained(tx, 1)
    path = checkpoint.save(tmp_path / "ck.npz", state)
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": os.urandom(len(data)), "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(checkpoint.CheckpointError, match="corrupted or truncated"):
        checkpoint.restore(path, tx.init(params))


def test_checkpoint_of_another_optimizer_is_refused(tmp_path):
    params = problems.quadratic_params()
    checkpoint.save(tmp_path / "sgd.npz", ol.sgd(0.1, momentum=0.9).init(params))
    # Leaf 0 is the count and leaf 1 the packed hyperparameters (one path in both
    # states); leaf 2 is the first moment: sgd's trace, adam's mu.
    with pytest.raises(checkpoint.CheckpointError, match=r"another optimizer.*leaf 2 is "):
        checkpoint.restore(tmp_path / "sgd.npz", ol.adam().init(params))


def test_other_hyperparameter_names_with_the_same_leaves_are_refused(tmp_path):
    # The names are the packed array's static part: same key paths, other tree structure.
    params = problems.quadratic_params()
    build = lambda step, h: ol.scale(-h[next(iter(h))])
    checkpoint.save(tmp_path / "a.npz", ol.with_hyperparams(build, a=0.1).init(params))
    with pytest.raises(checkpoint.CheckpointError, match=r"hyperparameters are \('a',\) in the"):
        checkpoint.restore(tmp_path / "a.npz", ol.with_hyperparams(build, b=0.1).init(params))


@pytest.mark.parametrize(
    ("tx", "name", "value", "message"),
    [
        (ol.sm3(1.0), "momentum", 1.0, r"hyperparameter momentum: Invalid momentum value: 1\.0"),
        (ol.rprop(0.1), "max_step_size", 1e-9, r"min_step_size must be <= max_step_size"),
    ],
)
def test_an_aliases_own_ranges_hold_on_restore(tmp_path, tx, name, value, message):
    """A value the alias refuses (sm3's momentum of 1, an inverted rprop range) is
    refused in a checkpoint too, though the name's own rule would take it."""
    state = tx.init(problems.quadratic_params())
    hp = state.hyperparams
    packed = hp.packed.at[hp.names.index(name)].set(value)
    checkpoint.save(
        tmp_path / "ck.npz", state._replace(hyperparams=ol.Hyperparams(hp.names, packed))
    )
    with pytest.raises(checkpoint.CheckpointError, match=message):
        checkpoint.restore(tmp_path / "ck.npz", state)


def test_shape_and_dtype_mismatches_name_the_leaf(tmp_path):
    tx = ol.adam()
    params = problems.quadratic_params()
    checkpoint.save(tmp_path / "ck.npz", tx.init(params))
    other = dict(params, a=jnp.zeros(4))
    with pytest.raises(checkpoint.CheckpointError, match=r"\['a'\] has shape \(3,\) .* \(4,\)"):
        checkpoint.restore(tmp_path / "ck.npz", tx.init(other))
    with pytest.raises(checkpoint.CheckpointError, match=r"dtype float32 .* bfloat16"):
        checkpoint.restore(tmp_path / "ck.npz", ol.adam(mu_dtype=jnp.bfloat16).init(params))


def test_newer_schema_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "ck.npz", {"x": jnp.ones(2)})
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays["__manifest__"].tobytes())
    manifest["schema_version"] = 99
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="schema version 99"):
        checkpoint.restore(path, {"x": jnp.ones(2)})


def _rewrite_manifest(path, edit):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = edit(json.loads(arrays["__manifest__"].tobytes()))
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)


def test_an_edited_manifest_is_refused_by_its_digest(tmp_path):
    # Deleting an entry leaves a manifest that describes another valid tree (here one
    # without "lr"): only the digest over the manifest tells it from the written one.
    path = checkpoint.save_tree(tmp_path / "ck.npz", {"w": np.arange(3.0), "lr": 0.1})

    def drop_lr(manifest):
        manifest["tree"]["__dict__"] = [
            item for item in manifest["tree"]["__dict__"] if item[0] != "lr"
        ]
        return manifest

    _rewrite_manifest(path, drop_lr)
    with pytest.raises(checkpoint.CheckpointError, match="digest does not match"):
        checkpoint.load_tree(path)
    path = checkpoint.save_tree(tmp_path / "ck2.npz", {"lr": 0.1})
    _rewrite_manifest(path, lambda m: {k: v for k, v in m.items() if k != "digest"})
    with pytest.raises(checkpoint.CheckpointError, match="digest does not match"):
        checkpoint.load_tree(path)


def test_schema_1_files_without_a_digest_still_load(tmp_path):
    path = checkpoint.save_tree(tmp_path / "ck.npz", {"w": np.arange(3.0), "lr": 0.1})

    def as_schema_1(manifest):
        del manifest["digest"]
        manifest["schema_version"] = 1
        return manifest

    _rewrite_manifest(path, as_schema_1)
    out = checkpoint.load_tree(path)
    assert out["lr"] == 0.1
    np.testing.assert_array_equal(out["w"], np.arange(3.0), strict=True)


def test_pickled_payloads_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __manifest__=np.array([{"format": "optimlab-state"}], dtype=object))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.restore(path, {"x": jnp.ones(2)})


def test_tree_round_trip_keeps_int_keys_tuples_and_nonfinite_floats(tmp_path):
    sd = {
        "state": {
            0: {"step": np.float32(3.0), "exp_avg": np.arange(3.0)},
            2: {"step": np.float32(1.0)},
        },
        "param_groups": [
            {
                "lr": float("nan"),
                "betas": (0.9, 0.999),
                "params": [0, 2],
                "name": None,
                "foreach": False,
            }
        ],
    }
    checkpoint.save_tree(tmp_path / "sd.npz", sd)
    back = checkpoint.load_tree(tmp_path / "sd.npz")
    assert set(back["state"]) == {0, 2}
    np.testing.assert_array_equal(back["state"][0]["exp_avg"], np.arange(3.0))
    assert back["state"][0]["step"].dtype == np.float32
    group = back["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and np.isnan(group["lr"]) and group["params"] == [0, 2]
    assert group["name"] is None and group["foreach"] is False


def test_tree_refuses_unsupported_values(tmp_path):
    with pytest.raises(TypeError, match=r"unsupported value of type object at <root>\['x'\]"):
        checkpoint.save_tree(tmp_path / "x.npz", {"x": object()})
    assert not (tmp_path / "x.npz").exists()


def test_typed_prng_keys_round_trip(tmp_path):
    tx = ol.noisy_sgd(0.1)
    params, state = _trained(tx, 2)
    path = checkpoint.save(tmp_path / "ck.npz", state)
    restored = checkpoint.restore(path, jax.eval_shape(tx.init, params))
    key = restored.inner_state[0].rng_key
    assert jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
        jax.random.key_data(key), jax.random.key_data(state.inner_state[0].rng_key)
    )
    g = jax.grad(problems.quadratic_loss)(params)
    _bitwise_equal(tx.update(g, restored, params)[0], tx.update(g, state, params)[0])
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"is a PRNG key \(key<fry>\) in the "
        r"checkpoint but float32 in the template",
    ):
        checkpoint.restore(
            path,
            jax.tree.map(
                lambda x: (
                    jnp.zeros(x.shape, jnp.float32)
                    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                    else x
                ),
                restored,
            ),
        )


def test_save_checks_step_metadata_and_path(tmp_path):
    state = ol.adam(0.1).init({"w": jnp.ones(2)})
    path = tmp_path / "s.npz"
    for step in (np.int64(3), jnp.asarray(3), 3):
        checkpoint.save(path, state, step=step)
        assert checkpoint.read_manifest(path)["step"] == 3
    for bad, exc in [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="save: step must be a non-negative integer"):
            checkpoint.save(tmp_path / "bad.npz", state, step=bad)
    for bad, exc, match in [
        ([1], TypeError, "save: metadata must be a dict, got list"),
        ({1: 2}, TypeError, "save: the key 1 in metadata is a int"),
        ({"a": {"b": float("nan")}}, ValueError, r"save: metadata\['a'\]\['b'\] is nan"),
        ({"a": [object()]}, TypeError, r"save: metadata\['a'\]\[0\] is a object"),
    ]:
        with pytest.raises(exc, match=match):
            checkpoint.save(tmp_path / "bad.npz", state, metadata=bad)
        with pytest.raises(exc, match=match.replace("save:", "save_tree:")):
            checkpoint.save_tree(tmp_path / "bad.npz", {}, metadata=bad)
    cyclic: dict = {}
    cyclic["me"] = cyclic
    with pytest.raises(
        ValueError, match=r"save: metadata contains a reference cycle at metadata\['me'\]"
    ):
        checkpoint.save(tmp_path / "bad.npz", state, metadata=cyclic)
    assert not (tmp_path / "bad.npz").exists()
    for fn, call in [
        ("save", lambda p: checkpoint.save(p, state)),
        ("save_tree", lambda p: checkpoint.save_tree(p, {})),
        ("restore", lambda p: checkpoint.restore(p, state)),
        ("load_tree", checkpoint.load_tree),
    ]:
        for bad in (5, None):
            with pytest.raises(TypeError, match=f"{fn}: path must be a str or os.PathLike, got"):
                call(bad)
        with pytest.raises(ValueError, match=f"{fn}: path is empty"):
            call("")
        with pytest.raises(IsADirectoryError, match=f"{fn}: .*{tmp_path.name}.* is a directory"):
            call(tmp_path)
    shared = [1.0]
    x: list = [shared, shared]  # a shared (acyclic) reference is fine
    checkpoint.save_tree(tmp_path / "t.npz", x)
    x.append(x)
    with pytest.raises(
        ValueError, match=r"save_tree: the tree contains a reference cycle at <root>\[2\]"
    ):
        checkpoint.save_tree(tmp_path / "t.npz", x)
