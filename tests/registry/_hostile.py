"""Error cases for hostile and damaged input: checkpoints, loads, edits, gradients, helpers.

Each damaged or hostile file raises ``CheckpointError`` naming the file and, where
it applies, the key path; every other bad input raises ``ValueError``/``TypeError``
naming the argument, key path or param-group entry.
"""

import io
import json
import pathlib
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol
from optimlab import checkpoint, optim
from optimlab.checkpoint._archive import manifest_digest

from ._types import ErrorCase

P = {"w": jnp.ones(3)}
CE = checkpoint.CheckpointError


def _tmp(name):
    return pathlib.Path(tempfile.mkdtemp()) / name


def _read(path):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(arrays.pop("__manifest__").tobytes())


def _write(path, arrays, manifest):
    if isinstance(manifest, dict) and "digest" in manifest:
        # Re-signed: a manifest consistent with itself but wrong about the file, so
        # that the check under test is the field's own, not the digest's.
        manifest["digest"] = manifest_digest(manifest)
    if not isinstance(manifest, bytes):
        manifest = json.dumps(manifest).encode()
    np.savez(path, **arrays, __manifest__=np.frombuffer(manifest, np.uint8))
    return path


def _tampered(edit_arrays=None, edit_manifest=None, state=None):
    """A checkpoint of adam (trained one step) with its arrays or manifest edited."""
    tx = ol.adam(0.1)
    if state is None:
        state = tx.update(P, tx.init(P), P)[1]
    path = checkpoint.save(_tmp("ck.npz"), state)
    arrays, manifest = _read(path)
    if edit_arrays is not None:
        edit_arrays(arrays, manifest)
    if edit_manifest is not None:
        manifest = edit_manifest(manifest)
    return _write(path, arrays, manifest)


def _restore(path):
    return checkpoint.restore(path, ol.adam(0.1).init(P))


def _key_of(manifest, suffix):
    return next(e["key"] for e in manifest["leaves"] if e["path"].endswith(suffix))


def _set_hparam(name, value):
    def edit(arrays, manifest):
        key = _key_of(manifest, ".hyperparams.packed")
        packed = arrays[key].copy()
        packed[("learning_rate", "b1", "b2", "eps").index(name)] = value
        arrays[key] = packed

    return lambda: _restore(_tampered(edit))


def _set_count(value):
    def edit(arrays, manifest):
        arrays[_key_of(manifest, ".count")] = np.asarray(value, np.int32)

    return lambda: _restore(_tampered(edit))


def _manifest_edit(fn):
    def edit(manifest):
        fn(manifest)
        return manifest

    return lambda: _restore(_tampered(edit_manifest=edit))


def _deep_manifest():
    _restore(_tampered(edit_manifest=lambda m: ("[" * 100_000 + "]" * 100_000).encode()))


def _npy_instead():
    path = _tmp("x.npz")
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    _restore(path)


def _extra_member():
    path = _tampered()
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.npy", bytes(1 << 20))
    _restore(path)


def _compressed_bomb():
    # One listed member replaced by a deflated one: a header declaring 16 MiB, all zeros.
    path = _tampered()
    arrays, manifest = _read(path)
    key = _key_of(manifest, "[0].mu['w']")
    bomb = _npy(np.zeros(0, np.float32)).replace(b"(0,)", b"(4194304,)") + bytes(1 << 24)
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            if k == key:
                zf.writestr(f"{k}.npy", bomb, compress_type=zipfile.ZIP_DEFLATED)
            else:
                zf.writestr(f"{k}.npy", _npy(v))
        zf.writestr(
            "__manifest__.npy", _npy(np.frombuffer(json.dumps(manifest).encode(), np.uint8))
        )
    _restore(path)


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _header_bigger_than_manifest():
    def edit(arrays, manifest):
        arrays[_key_of(manifest, "[0].mu['w']")] = np.zeros(1 << 16, np.float32)

    _restore(_tampered(edit))


def _tree_tampered_dtype():
    path = checkpoint.save_tree(_tmp("t.npz"), {"x": np.arange(4, dtype=np.float32)})
    arrays, manifest = _read(path)
    manifest["tree"]["__dict__"][0][1]["dtype"] = "int32"
    _write(path, arrays, manifest)
    checkpoint.load_tree(path)


def _tree_tampered_shape():
    path = checkpoint.save_tree(_tmp("t.npz"), {"x": np.arange(4, dtype=np.float32)})
    arrays, manifest = _read(path)
    manifest["tree"]["__dict__"][0][1]["shape"] = [2, 2]
    _write(path, arrays, manifest)
    checkpoint.load_tree(path)


def _tree_repeated_array():
    path = checkpoint.save_tree(_tmp("t.npz"), {"x": np.zeros(4)})
    arrays, manifest = _read(path)
    entry = manifest["tree"]["__dict__"][0][1]
    manifest["tree"] = [entry] * 1000
    _write(path, arrays, manifest)
    checkpoint.load_tree(path)


def _trained_optim(cls="Adam"):
    opt = getattr(optim, cls)({"w": jnp.ones(3)}, lr=0.1)
    opt.step({"w": jnp.ones(3)})
    return opt


def _edit_group(key, value, cls="Adam"):
    """Sets a group option of a trained ``cls``, then steps (where the edit is checked)."""

    def run():
        opt = _trained_optim(cls)
        opt.param_groups[0][key] = value
        opt.step({"w": jnp.ones(3)})

    return run


def _load_group(cls, key, value):
    def run():
        opt = _trained_optim(cls)
        sd = opt.state_dict()
        sd["param_groups"][0][key] = value
        opt.load_state_dict(sd)

    return run


def _load_step(value):
    def run():
        opt = _trained_optim()
        sd = opt.state_dict()
        sd["state"][0]["step"] = np.float32(value)
        opt.load_state_dict(sd)

    return run


def _sharding_other_mesh():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = np.array(jax.devices()[:1])
    placed = jax.device_put(jnp.ones(4), NamedSharding(Mesh(devices, ("data",)), PartitionSpec()))
    ol.state_shardings(ol.adam(), {"w": placed}, Mesh(devices, ("model",)))


def _e(id_, fn, stage, exc, match):
    return ErrorCase(f"hostile_{id_}", fn, stage, exc, match)


NAN = float("nan")
INF = float("inf")

ERROR_CASES = [
    # ------------------------------------------------ well-formed files, values the API refuses
    _e("ckpt_nan_lr", _set_hparam("learning_rate", NAN), "load", CE, r"learning_rate.*NaN"),
    _e("ckpt_negative_lr", _set_hparam("learning_rate", -0.1), "load", CE, r"learning rate: -0\.1"),
    _e("ckpt_inf_lr", _set_hparam("learning_rate", INF), "load", CE, r"learning_rate value: inf"),
    _e("ckpt_b1_above_one", _set_hparam("b1", 1.5), "load", CE, r"beta parameter at index 0: 1\.5"),
    _e("ckpt_negative_eps", _set_hparam("eps", -1.0), "load", CE, r"ck\.npz: hyperparameter eps"),
    _e("ckpt_negative_count", _set_count(-5), "load", CE, r"\.count is a step count .* got -5"),
    _e(
        "ckpt_manifest_step",
        _manifest_edit(lambda m: m.__setitem__("step", -3)),
        "load",
        CE,
        r"'step' must be a non-negative int or null, got -3",
    ),
    # ------------------------------------------------ damaged manifests
    _e(
        "ckpt_entry_missing_field",
        _manifest_edit(lambda m: m["leaves"][2].pop("dtype")),
        "load",
        CE,
        r"ck\.npz: manifest\['leaves'\]\[2\] has no 'dtype' field",
    ),
    _e(
        "ckpt_entry_wrong_type",
        _manifest_edit(lambda m: m["leaves"][2].__setitem__("shape", "3")),
        "load",
        CE,
        r"manifest\['leaves'\]\[2\]\['shape'\] must be a list of non-negative ints",
    ),
    _e(
        "ckpt_entry_bool_shape",
        _manifest_edit(lambda m: m["leaves"][2].__setitem__("shape", [True])),
        "load",
        CE,
        r"\['shape'\] must be a list of non-negative ints",
    ),
    _e(
        "ckpt_entry_bad_dtype",
        _manifest_edit(lambda m: m["leaves"][2].__setitem__("dtype", "object")),
        "load",
        CE,
        r"is not a dtype a checkpoint holds",
    ),
    _e(
        "ckpt_leaves_not_a_list",
        _manifest_edit(lambda m: m.__setitem__("leaves", {"a": 1})),
        "load",
        CE,
        r"\['leaves'\] must be a list, got dict",
    ),
    _e(
        "ckpt_manifest_is_a_list",
        lambda: _restore(_tampered(edit_manifest=lambda m: b"[1, 2]")),
        "load",
        CE,
        r"ck\.npz: the manifest is corrupted \(a list, not an object\)",
    ),
    _e("ckpt_manifest_deep", _deep_manifest, "load", CE, r"the manifest is corrupted"),
    _e("ckpt_npy_not_archive", _npy_instead, "load", CE, r"x\.npz is not a readable"),
    # ------------------------------------------------ archives that would allocate
    _e("ckpt_extra_member", _extra_member, "load", CE, r"members the manifest does not list"),
    _e("ckpt_compressed_bomb", _compressed_bomb, "load", CE, r"is compressed or declares"),
    _e(
        "ckpt_header_bigger",
        _header_bigger_than_manifest,
        "load",
        CE,
        r"\['w'\] is damaged: shape \(65536,\) but the manifest says \(3,\)",
    ),
    _e("tree_tampered_dtype", _tree_tampered_dtype, "load", CE, r"damaged: dtype float32"),
    _e("tree_tampered_shape", _tree_tampered_shape, "load", CE, r"damaged: shape \(4,\)"),
    _e("tree_repeated_array", _tree_repeated_array, "load", CE, r"more than once"),
    # ------------------------------------------------ saving
    _e(
        "save_string_leaf",
        lambda: checkpoint.save(_tmp("s.npz"), {"s": np.array(["abc"])}),
        "load",
        TypeError,
        r"save: the leaf at \['s'\] has dtype <U3",
    ),
    # ------------------------------------------------ set_hyperparams
    _e(
        "set_inf_lr",
        lambda: ol.set_hyperparams(ol.adam().init(P), learning_rate=INF),
        "set",
        ValueError,
        r"learning_rate value: inf \(must be >= 0.0 and finite\)",
    ),
    _e(
        "set_rmsprop_negative_decay",
        lambda: ol.set_hyperparams(ol.rmsprop(0.1).init(P), decay=-0.5),
        "set",
        ValueError,
        r"Invalid decay value: -0\.5 \(must be >= 0\.0",
    ),
    # ------------------------------------------------ optimlab.optim edits and loads
    _e("optim_edit_nan_lr", _edit_group("lr", NAN), "set", ValueError, r"\['lr'\].*nan"),
    # An alias's own range (SparseAdam: lr > 0) and order (Rprop: min <= max step size).
    _e(
        "optim_edit_sparse_adam_zero_lr",
        _edit_group("lr", 0.0, "SparseAdam"),
        "set",
        ValueError,
        r"^param_groups\[0\]\['lr'\]: Invalid learning rate: 0\.0",
    ),
    _e(
        "optim_edit_rprop_inverted_step_sizes",
        _edit_group("step_sizes", (1.0, 0.5), "Rprop"),
        "set",
        ValueError,
        r"\['step_sizes'\]: min_step_size must be <= max_step_size, got 1\.0 > 0\.5",
    ),
    _e(
        "optim_load_rprop_inverted_step_sizes",
        _load_group("Rprop", "step_sizes", (1.0, 0.5)),
        "load",
        ValueError,
        r"loaded parameter group 0 is invalid for Rprop: .*step_sizes",
    ),
    _e("optim_edit_inf_lr", _edit_group("lr", INF), "set", ValueError, r"\['lr'\].*inf"),
    _e(
        "optim_edit_string_lr",
        _edit_group("lr", "x"),
        "set",
        TypeError,
        r"param_groups\[0\]\['lr'\] must be a real number, got str",
    ),
    _e(
        "optim_edit_nan_beta",
        _edit_group("betas", (NAN, 0.999)),
        "set",
        ValueError,
        r"param_groups\[0\]\['betas'\]\[0\]",
    ),
    _e("optim_load_negative_step", _load_step(-1), "load", ValueError, r"'step' must be a whole"),
    _e("optim_load_nan_step", _load_step(NAN), "load", ValueError, r"'step' .* got nan"),
    _e("optim_load_fractional_step", _load_step(2.5), "load", ValueError, r"got 2\.5"),
    _e("optim_load_inf_step", _load_step(INF), "load", ValueError, r"got inf"),
    _e(
        "optim_load_nan_option",
        _load_group("Adam", "eps", float("nan")),
        "load",
        ValueError,
        r"Invalid epsilon value: nan",
    ),
    _e(
        "optim_complex_grad",
        lambda: _trained_optim().step({"w": jnp.ones(3, jnp.complex64)}),
        "update",
        TypeError,
        r"the gradient of parameter 0 \('w'\) is complex",
    ),
    # ------------------------------------------------ gradients and apply_updates
    _e(
        "complex_grad_real_param",
        lambda: ol.adam(0.1).update({"w": jnp.ones(3, jnp.complex64)}, ol.adam(0.1).init(P), P),
        "update",
        TypeError,
        r"update: the gradient at \['w'\] is complex \(complex64\) but its parameter is real",
    ),
    _e(
        "apply_updates_broadcast",
        lambda: ol.apply_updates({"a": jnp.ones(3)}, {"a": jnp.ones((2, 3))}),
        "update",
        ValueError,
        r"apply_updates: the update at \['a'\] has shape \(2, 3\) but the parameter has shape",
    ),
    _e(
        "apply_updates_complex",
        lambda: ol.apply_updates({"a": jnp.ones(3)}, {"a": jnp.ones(3, jnp.complex64)}),
        "update",
        TypeError,
        r"apply_updates: the update at \['a'\] is complex",
    ),
    _e(
        "apply_updates_missing_entry",
        lambda: ol.apply_updates({"a": jnp.ones(3), "b": jnp.ones(2)}, {"a": jnp.ones(3)}),
        "update",
        ValueError,
        r"apply_updates: the updates' tree structure differs from the params: the params "
        r"have an extra entry at \['b'\]",
    ),
    _e(
        "apply_updates_other_keys",
        lambda: ol.apply_updates({"a": jnp.ones(3)}, {"z": jnp.ones(3)}),
        "update",
        ValueError,
        r"apply_updates: the updates' tree structure differs from the params at \['z'\] "
        r"\(the params have \['a'\]\)",
    ),
    _e(
        "apply_updates_string_leaf",
        lambda: ol.apply_updates({"a": jnp.ones(3)}, {"a": "0.1"}),
        "update",
        TypeError,
        r"apply_updates: the update at \['a'\] is a str, not an array or a number",
    ),
    # ------------------------------------------------ helpers
    _e("sharding_other_mesh", _sharding_other_mesh, "update", ValueError, r"not the mesh given"),
    # ------------------------------------------------ construction
    _e("asgd_lambd_nan", lambda: ol.asgd(0.1, lambd=NAN), "construct", ValueError, r"lambd.*nan"),
    _e("asgd_alpha_nan", lambda: ol.asgd(0.1, alpha=NAN), "construct", ValueError, r"alpha.*nan"),
    _e("asgd_t0_nan", lambda: ol.asgd(0.1, t0=NAN), "construct", ValueError, r"t0 value: nan"),
    _e("muon_eps_nan", lambda: ol.muon(0.1, eps=NAN), "construct", ValueError, r"eps value: nan"),
    _e("galore_scale", lambda: ol.galore(0.1, scale=NAN), "construct", ValueError, r"scale.*nan"),
    _e(
        "adafactor_decay_offset_nan",
        lambda: ol.adafactor(decay_offset=NAN),
        "construct",
        ValueError,
        r"decay_offset value: nan",
    ),
    _e(
        "sgd_dampening_nan",
        lambda: ol.sgd(0.1, momentum=0.9, dampening=NAN),
        "construct",
        ValueError,
        r"dampening value: nan",
    ),
    _e(
        "sgd_dampening_string_without_momentum",
        lambda: ol.sgd(0.1, dampening="x"),
        "construct",
        TypeError,
        r"dampening value: 'x' \(must be a real number\)",
    ),
    _e("muon_ns_steps_neg", lambda: ol.muon(0.1, ns_steps=-1), "construct", ValueError, "ns_steps"),
    _e(
        "muon_ns_steps_bool",
        lambda: ol.muon(0.1, ns_steps=True),
        "construct",
        TypeError,
        "ns_steps",
    ),
    _e(
        "adafactor_min_dim_negative",
        lambda: ol.adafactor(min_dim_size_to_factor=-1),
        "construct",
        ValueError,
        r"min_dim_size_to_factor value: -1",
    ),
    _e(
        "adafactor_min_dim_float",
        lambda: ol.adafactor(min_dim_size_to_factor=2.5),
        "construct",
        TypeError,
        r"min_dim_size_to_factor value: 2\.5",
    ),
    _e(
        "adafactor_min_dim_bool",
        lambda: ol.adafactor(min_dim_size_to_factor=True),
        "construct",
        TypeError,
        r"min_dim_size_to_factor value: True",
    ),
    _e(
        "muon_adam_b1_nan",
        lambda: ol.muon(0.1, adam_b1=NAN),
        "construct",
        ValueError,
        r"^muon: Invalid adam_b1 value: nan",
    ),
    _e(
        "sm3_momentum_negative",
        lambda: ol.sm3(0.1, momentum=-0.5),
        "construct",
        ValueError,
        r"^sm3: Invalid momentum value: -0\.5",
    ),
    _e(
        "trace_decay_nan",
        lambda: ol.trace(decay=NAN),
        "construct",
        ValueError,
        r"^trace: Invalid decay",
    ),
    _e(
        "with_hyperparams_rule_table",
        lambda: ol.with_hyperparams(lambda s, h: ol.scale(-h["eps"]), eps=-1.0),
        "construct",
        ValueError,
        r"Invalid epsilon value: -1\.0",
    ),
]
