"""Bad inputs across construction, init, update, set, load and schedules (reliability)."""

import json
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol
from optimlab import checkpoint
from optimlab import schedules as S
from optimlab.checkpoint._archive import manifest_digest

from ._types import ErrorCase

P = {"a": jnp.ones(3), "b": {"c": jnp.ones((2, 2))}}


def _tmp(name):
    return pathlib.Path(tempfile.mkdtemp()) / name


def _update(tx, grads, state=None, params=P):
    return tx.update(grads, tx.init(params) if state is None else state, params)


def _saved(state=None):
    return checkpoint.save(_tmp("ck.npz"), ol.adam().init(P) if state is None else state)


def _rewrite(path, edit):
    """Rewrites a checkpoint's arrays (and manifest) through ``edit(arrays, manifest)``."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays["__manifest__"].tobytes())
    edit(arrays, manifest)
    if isinstance(manifest, dict) and "digest" in manifest:
        manifest["digest"] = manifest_digest(manifest)  # re-signed, as in _hostile._write
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def _restore(path, template=None):
    return checkpoint.restore(path, ol.adam().init(P) if template is None else template)


def _garbage():
    path = _saved()
    path.write_bytes(b"\x00\x01not a zip archive" * 10)
    _restore(path)


def _empty():
    path = _saved()
    path.write_bytes(b"")
    _restore(path)


def _bad_manifest():
    path = _saved()
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["__manifest__"] = np.frombuffer(b"{not json", np.uint8)
    np.savez(path, **arrays)
    _restore(path)


def _no_manifest():
    path = _tmp("plain.npz")
    np.savez(path, a0=np.zeros(3))
    _restore(path)


def _missing_array():
    _restore(_rewrite(_saved(), lambda arrays, m: arrays.pop("a5")))


def _damaged_shape():
    _restore(
        _rewrite(_saved(), lambda arrays, m: arrays.__setitem__("a5", np.zeros(7, np.float32)))
    )


def _unknown_format():
    _restore(_rewrite(_saved(), lambda arrays, m: m.__setitem__("format", "orbax")))


def _pickled():
    path = _tmp("evil.npz")
    np.savez(path, __manifest__=np.array([{"format": "optimlab-state"}], dtype=object))
    _restore(path)


def _save_unserialisable_metadata():
    checkpoint.save(_tmp("m.npz"), ol.adam().init(P), metadata={"fn": print})


def _state_into_tree():
    checkpoint.load_tree(_saved())


def _other_params_shape():
    _restore(_saved(), ol.adam().init({"a": jnp.ones(4), "b": {"c": jnp.ones((2, 2))}}))


def _other_dtype():
    _restore(_saved(), ol.adam(mu_dtype=jnp.bfloat16).init(P))


def _adam_into_amsgrad():
    _restore(_saved(), ol.amsgrad().init(P))


def _adam_into_adamw():
    _restore(_saved(), ol.adamw().init(P))


ERROR_CASES = [
    # ---------------------------------------------------------------- construction
    ErrorCase(
        "rel_adam_b2_vector",
        lambda: ol.adam(b2=np.array([0.9, 0.99])),
        "construct",
        ValueError,
        r"hyperparameter 'b2' must be a scalar, got an array of shape \(2,\)",
    ),
    ErrorCase(
        "rel_sgd_lr_1x1",
        lambda: ol.sgd(jnp.ones((1, 1))),
        "construct",
        ValueError,
        r"hyperparameter 'learning_rate' must be a scalar, got an array of shape \(1, 1\)",
    ),
    ErrorCase(
        "rel_adamw_lr_complex",
        lambda: ol.adamw(1j),
        "construct",
        TypeError,
        r"'learning_rate' must be a real number .* got complex",
    ),
    ErrorCase(
        "rel_adam_lr_none",
        lambda: ol.adam(None),
        "construct",
        TypeError,
        r"'learning_rate' must be a real number .* got NoneType",
    ),
    ErrorCase(
        "rel_rmsprop_lr_bool",
        lambda: ol.rmsprop(True),
        "construct",
        TypeError,
        r"'learning_rate' must be a number or a schedule, got a bool",
    ),
    ErrorCase(
        "rel_clip_global_norm_nan",
        lambda: ol.clip_by_global_norm(float("nan")),
        "construct",
        ValueError,
        r"^clip_by_global_norm: Invalid max_norm value: nan \(must be > 0\)$",
    ),
    ErrorCase(
        "rel_clip_global_norm_zero",
        lambda: ol.clip_by_global_norm(0.0),
        "construct",
        ValueError,
        r"^clip_by_global_norm: Invalid max_norm value: 0.0 \(must be > 0\)$",
    ),
    ErrorCase(
        "rel_clip_nan",
        lambda: ol.clip(float("nan")),
        "construct",
        ValueError,
        r"^clip: Invalid max_delta value: nan",
    ),
    ErrorCase(
        "rel_clip_block_rms_negative",
        lambda: ol.clip_by_block_rms(-1.0),
        "construct",
        ValueError,
        r"^clip_by_block_rms: Invalid threshold value: -1.0",
    ),
    ErrorCase(
        "rel_accumulate_every_negative",
        lambda: ol.accumulate(ol.sgd(0.1), every=-1),
        "construct",
        ValueError,
        r"every must be an integer >= 1, got -1",
    ),
    ErrorCase(
        "rel_accumulate_every_bool",
        lambda: ol.accumulate(ol.sgd(0.1), every=True),
        "construct",
        TypeError,
        r"every must be an integer >= 1, got True",
    ),
    ErrorCase(
        "rel_skip_nonfinite_inner_none",
        lambda: ol.skip_nonfinite(None),
        "construct",
        TypeError,
        r"skip_nonfinite: inner is NoneType, not a gradient transformation",
    ),
    ErrorCase(
        "rel_skip_nonfinite_max_float",
        lambda: ol.skip_nonfinite(ol.sgd(0.1), max_consecutive=1.5),
        "construct",
        TypeError,
        r"max_consecutive must be an integer >= 0 or None, got 1.5",
    ),
    ErrorCase(
        "rel_schedule_returns_vector",
        lambda: ol.adam(lambda step: jnp.ones(2)).init(P),
        "init",
        ValueError,
        r"hyperparameter 'learning_rate' must be a scalar",
    ),
    # ---------------------------------------------------------------- init
    ErrorCase(
        "rel_adam_integer_params",
        lambda: ol.adam().init({"w": jnp.arange(3)}),
        "init",
        TypeError,
        r"params must be floating-point or complex, but the leaf at "
        r"\['w'\] is int32",
    ),
    ErrorCase(
        "rel_sgd_bool_params",
        lambda: ol.sgd(0.1).init({"w": jnp.ones(2), "mask": jnp.ones(2, bool)}),
        "init",
        TypeError,
        r"the leaf at \['mask'\] is bool",
    ),
    ErrorCase(
        "rel_lion_python_int_leaf",
        lambda: ol.lion(1e-3).init({"n": 3}),
        "init",
        TypeError,
        r"the leaf at \['n'\] is int",
    ),
    ErrorCase(
        "rel_adamw_string_leaf",
        lambda: ol.adamw().init({"name": "x"}),
        "init",
        TypeError,
        r"the leaf at \['name'\] is <U1",
    ),
    ErrorCase(
        "rel_accumulate_integer_params",
        lambda: ol.accumulate(ol.adam(), every=2).init([jnp.ones(2), jnp.arange(2)]),
        "init",
        TypeError,
        r"the leaf at \[1\] is int32",
    ),
    ErrorCase(
        "rel_partition_integer_leaf",
        lambda: ol.partition({"t": ol.sgd(0.1)}, {"**": "t"}).init({"x": {"n": jnp.arange(2)}}),
        "init",
        TypeError,
        r"x/n'\] is int32",
    ),
    ErrorCase(
        "rel_zero1_unknown_axis",
        lambda: ol.zero1_state_shardings(ol.adam(), P, jax.make_mesh((1,), ("dp",))),
        "init",
        ValueError,
        r"data_axis 'data' is not an axis of the mesh",
    ),
    # ---------------------------------------------------------------- update
    ErrorCase(
        "rel_adam_state_into_amsgrad",
        lambda: _update(ol.amsgrad(), P, ol.adam().init(P)),
        "update",
        ValueError,
        r"state from another optimizer: it was built with amsgrad=False",
    ),
    ErrorCase(
        "rel_amsgrad_state_into_adam",
        lambda: _update(ol.adam(), P, ol.amsgrad().init(P)),
        "update",
        ValueError,
        r"built with amsgrad=True but this optimizer has amsgrad=False",
    ),
    ErrorCase(
        "rel_sgd_state_into_adam",
        lambda: _update(ol.adam(), P, ol.sgd(0.1).init(P)),
        "update",
        ValueError,
        r"state from another optimizer: its hyperparameters are "
        r"\['learning_rate'\]",
    ),
    ErrorCase(
        "rel_chain_state_into_alias",
        lambda: _update(ol.adam(), P, ol.chain(ol.clip(1.0)).init(P)),
        "update",
        ValueError,
        r"expected a HyperparamsState, got tuple",
    ),
    ErrorCase(
        "rel_state_none",
        lambda: ol.adam().update(P, None, P),
        "update",
        ValueError,
        r"expected a HyperparamsState, got NoneType",
    ),
    ErrorCase(
        "rel_chain_state_too_short",
        lambda: ol.chain(ol.clip(1.0), ol.sgd(0.1)).update(P, (ol.clip(1.0).init(P),), P),
        "update",
        ValueError,
        r"chain: expected a state tuple of length 2",
    ),
    ErrorCase(
        "rel_skip_nonfinite_wrong_state",
        lambda: ol.skip_nonfinite(ol.sgd(0.1)).update(P, ol.sgd(0.1).init(P), P),
        "update",
        ValueError,
        r"expected a SkipNonfiniteState, got HyperparamsState",
    ),
    ErrorCase(
        "rel_adam_grads_missing_leaf",
        lambda: _update(ol.adam(), {"a": jnp.ones(3)}),
        "update",
        ValueError,
        r"the state has an extra entry at \['b'\]\['c'\]",
    ),
    ErrorCase(
        "rel_adam_grads_extra_leaf",
        lambda: _update(ol.adam(), dict(P, z=jnp.ones(1))),
        "update",
        ValueError,
        r"the updates have an extra entry at \['z'\]",
    ),
    ErrorCase(
        "rel_adam_grads_list_for_dict",
        lambda: _update(ol.adam(), [jnp.ones(3)]),
        "update",
        ValueError,
        r"differs from the state at \[0\] \(the state has \['a'\]\)",
    ),
    ErrorCase(
        "rel_adam_grads_shape",
        lambda: _update(ol.adam(), {"a": jnp.ones(4), "b": {"c": jnp.ones((2, 2))}}),
        "update",
        ValueError,
        r"the update at \['a'\] has shape \(4,\) but the state "
        r"expects \(3,\)",
    ),
    ErrorCase(
        "rel_lion_grads_shape",
        lambda: _update(ol.lion(1e-3), {"a": jnp.ones(3), "b": {"c": jnp.ones((2, 3))}}),
        "update",
        ValueError,
        r"scale_by_lion: the update at \['b'\]\['c'\] has shape",
    ),
    ErrorCase(
        "rel_state_for_other_params",
        lambda: _update(ol.adam(), P, ol.adam().init({"a": jnp.ones(3)})),
        "update",
        ValueError,
        r"the updates have an extra entry at \['b'\]\['c'\]",
    ),
    ErrorCase(
        "rel_sgd_weight_decay_params_none",
        lambda: ol.sgd(0.1, weight_decay=0.1).update(
            P, ol.sgd(0.1, weight_decay=0.1).init(P), None
        ),
        "update",
        ValueError,
        r"add_decayed_weights: params is None",
    ),
    ErrorCase(
        "rel_lion_weight_decay_params_none",
        lambda: ol.lion(1e-3, weight_decay=0.1).update(P, ol.lion(1e-3, weight_decay=0.1).init(P)),
        "update",
        ValueError,
        r"params is None",
    ),
    # ---------------------------------------------------------------- set
    ErrorCase(
        "rel_set_string",
        lambda: ol.set_hyperparams(ol.adam().init(P), eps="tiny"),
        "set",
        TypeError,
        r"set_hyperparams: 'eps' must be a real number, got str",
    ),
    ErrorCase(
        "rel_set_complex",
        lambda: ol.set_hyperparams(ol.adam().init(P), b1=0.9j),
        "set",
        TypeError,
        r"'b1' must be a real number, got complex",
    ),
    ErrorCase(
        "rel_set_vector_b1",
        lambda: ol.set_hyperparams(ol.adam().init(P), b1=np.full(2, 0.9)),
        "set",
        ValueError,
        r"'b1' must have shape \(\) \(the shape stored in the state\), got "
        r"\(2,\)",
    ),
    ErrorCase(
        "rel_set_unknown_group",
        lambda: ol.set_hyperparams(ol.adam().init(P), group="head", learning_rate=0.1),
        "set",
        ValueError,
        r"unknown group 'head'",
    ),
    ErrorCase(
        "rel_set_schedule",
        lambda: ol.set_hyperparams(ol.adam().init(P), learning_rate=lambda s: 0.1),
        "set",
        TypeError,
        r"must be a value, not a schedule",
    ),
    ErrorCase(
        "rel_hyperparams_of_stateless",
        lambda: ol.hyperparams(ol.clip(1.0).init(P)),
        "set",
        ValueError,
        r"this state holds no hyperparameters",
    ),
    # ---------------------------------------------------------------- load
    ErrorCase(
        "rel_ckpt_garbage",
        _garbage,
        "load",
        checkpoint.CheckpointError,
        r"not a readable optimlab checkpoint \(corrupted or truncated",
    ),
    ErrorCase(
        "rel_ckpt_empty", _empty, "load", checkpoint.CheckpointError, r"corrupted or truncated"
    ),
    ErrorCase(
        "rel_ckpt_bad_manifest",
        _bad_manifest,
        "load",
        checkpoint.CheckpointError,
        r"the manifest is corrupted",
    ),
    ErrorCase(
        "rel_ckpt_no_manifest",
        _no_manifest,
        "load",
        checkpoint.CheckpointError,
        r"has no manifest: it was not written by optimlab.checkpoint",
    ),
    ErrorCase(
        "rel_ckpt_missing_array",
        _missing_array,
        "load",
        checkpoint.CheckpointError,
        r"the array for .* is missing \(truncated file\?\)",
    ),
    ErrorCase(
        "rel_ckpt_damaged_shape",
        _damaged_shape,
        "load",
        checkpoint.CheckpointError,
        r"is damaged: shape \(7,\) but the manifest says",
    ),
    ErrorCase(
        "rel_ckpt_unknown_format",
        _unknown_format,
        "load",
        checkpoint.CheckpointError,
        r"unknown checkpoint format 'orbax'",
    ),
    ErrorCase(
        "rel_ckpt_pickled_object",
        _pickled,
        "load",
        checkpoint.CheckpointError,
        r"corrupted or truncated: ValueError: Object arrays cannot be loaded",
    ),
    ErrorCase(
        "rel_ckpt_metadata_not_json",
        _save_unserialisable_metadata,
        "load",
        TypeError,
        r"save: metadata\[.fn.\] is a builtin_function_or_method; metadata holds only str",
    ),
    ErrorCase(
        "rel_ckpt_state_into_load_tree",
        _state_into_tree,
        "load",
        checkpoint.CheckpointError,
        r"holds an optimizer state \(use restore\)",
    ),
    ErrorCase(
        "rel_ckpt_other_params_shape",
        _other_params_shape,
        "load",
        checkpoint.CheckpointError,
        r"\['a'\] has shape \(3,\) in the checkpoint but "
        r"\(4,\) in the template",
    ),
    ErrorCase(
        "rel_ckpt_other_moment_dtype",
        _other_dtype,
        "load",
        checkpoint.CheckpointError,
        r"has dtype float32 in the checkpoint but bfloat16 in the template",
    ),
    ErrorCase(
        "rel_ckpt_adam_into_amsgrad",
        _adam_into_amsgrad,
        "load",
        checkpoint.CheckpointError,
        r"(does not match the template|leaves but the "
        r"template has)",
    ),
    ErrorCase(
        "rel_ckpt_adam_into_adamw",
        _adam_into_adamw,
        "load",
        checkpoint.CheckpointError,
        r"does not match the template \(another optimizer or other params\?\)",
    ),
    # ---------------------------------------------------------------- schedules
    ErrorCase(
        "rel_schedule_warmup_cosine_zero_decay",
        lambda: S.warmup_cosine_decay(0.0, 1.0, 0, 0),
        "schedule",
        ValueError,
        r"^warmup_cosine_decay: Invalid decay_steps value: 0 \(must be > 0\)$",
    ),
    ErrorCase(
        "rel_schedule_linear_onecycle_zero",
        lambda: S.linear_onecycle(0, 1.0),
        "schedule",
        ValueError,
        r"^linear_onecycle: Invalid transition_steps value: 0",
    ),
    ErrorCase(
        "rel_schedule_warmup_exponential_zero_steps",
        lambda: S.warmup_exponential_decay(0.0, 1.0, 0, 0, 0.5),
        "schedule",
        ValueError,
        r"^warmup_exponential_decay: Invalid transition_steps value: 0 \(must be > 0\)$",
    ),
    ErrorCase(
        "rel_schedule_sequential_empty",
        lambda: S.sequential([], []),
        "schedule",
        ValueError,
        r"^sequential: Invalid schedules value: \[\] \(must hold at least one schedule\)",
    ),
]
