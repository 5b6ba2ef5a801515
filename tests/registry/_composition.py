"""Registry entries for composition: partition, masking, accumulation, robustness, averaging."""

import jax.numpy as jnp

import optimlab as ol

from ._types import Case, ErrorCase

# "b/**" has one literal segment and beats the catch-all "**".
_LABELS = {"**": "adam", "b/**": "plain"}


def _two_groups():
    return ol.partition(
        {"adam": ol.adam(0.05), "plain": ol.chain(ol.clip_by_global_norm(1.0), ol.scale(-0.1))},
        _LABELS,
    )


def _decay(t):
    return 0.999 ** t.astype(jnp.float32)


CASES = [
    Case(
        "accumulate_adam",
        lambda: ol.accumulate(ol.adam(0.05), every=2),
        converge_steps=600,
        complex_ok=True,
    ),
    Case(
        "accumulate_sum_sgd",
        lambda: ol.accumulate(ol.sgd(0.05, momentum=0.5), every=3, mode="sum"),
        complex_ok=True,
    ),
    Case(
        "skip_nonfinite_sgd",
        lambda: ol.skip_nonfinite(ol.sgd(0.1), max_consecutive=3),
        complex_ok=True,
    ),
    Case("partition_two_groups", _two_groups, complex_ok=True),
    Case(
        "partition_overrides_adamw",
        lambda: ol.partition_overrides(
            ol.adamw, {"adam": {}, "plain": {"weight_decay": 0.0}}, _LABELS, learning_rate=0.05
        ),
        lr_name=None,
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
    Case(
        "masked_adam",
        lambda: ol.chain(
            ol.masked(ol.adam(0.05), {"**": True, "d": False}), ol.masked(ol.scale(-0.1), ["d"])
        ),
        complex_ok=True,
    ),
    Case(
        "adamw_pattern_mask",
        lambda: ol.adamw(0.05, mask={"**": True, "**/c": False}),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
    Case(
        "zero_nans_clip_block_rms_sgd",
        lambda: ol.chain(ol.zero_nans(), ol.clip_by_block_rms(1.0), ol.sgd(0.1)),
        complex_ok=True,
    ),
    Case(
        "agc_sgd",
        lambda: ol.chain(ol.adaptive_grad_clip(0.5), ol.sgd(0.1)),
        needs_params=True,
        converge_steps=600,
        complex_ok=True,
    ),
    Case(
        "ema_adam",
        lambda: ol.chain(ol.adam(0.05), ol.ema_params(0.9)),
        needs_params=True,
        complex_ok=True,
    ),
    Case(
        "swa_sgd",
        lambda: ol.chain(ol.sgd(0.1), ol.swa_params()),
        needs_params=True,
        complex_ok=True,
    ),
    Case(
        "lookahead_adam",
        lambda: ol.lookahead(ol.adam(0.05), sync_period=5, slow_step_size=0.5),
        needs_params=True,
        converge_steps=600,
        complex_ok=True,
        rosenbrock=(lambda: ol.lookahead(ol.adam(0.02), 5, 0.5), 5000, 1e-2),
    ),
    # centralize is left out: removing the mean of a 2-D leaf stops it reaching zero.
    Case(
        "schedule_sgd",
        lambda: ol.chain(ol.scale_by_schedule(_decay), ol.sgd(0.1)),
        lr_name=None,
        complex_ok=True,
    ),
    Case(
        "conditional_named_monitor",
        lambda: ol.monitor(
            ol.named_chain(
                ("warm", ol.conditionally_transform(ol.scale(0.5), lambda t: t < 10)),
                ("opt", ol.sgd(0.1)),
            )
        ),
        complex_ok=True,
    ),
]


def _init(tx, params):
    return tx.init(params)


def _update(tx, params, grads):
    return tx.update(grads, tx.init(params), params)


_P = {"enc": {"w": jnp.ones(2), "bias": jnp.ones(1)}, "head": {"w": jnp.ones(2)}}

ERROR_CASES = [
    ErrorCase(
        "accumulate_every_zero",
        lambda: ol.accumulate(ol.sgd(0.1), every=0),
        "construct",
        ValueError,
        r"accumulate: every must be an integer >= 1, got 0",
    ),
    ErrorCase(
        "accumulate_every_float",
        lambda: ol.accumulate(ol.sgd(0.1), every=2.0),
        "construct",
        TypeError,
        r"accumulate: every must be an integer >= 1, got 2.0",
    ),
    ErrorCase(
        "accumulate_mode",
        lambda: ol.accumulate(ol.sgd(0.1), every=2, mode="avg"),
        "construct",
        ValueError,
        r"accumulate: mode must be 'mean' or 'sum', got 'avg'",
    ),
    ErrorCase(
        "accumulate_not_a_transform",
        lambda: ol.accumulate(3, every=2),
        "construct",
        TypeError,
        r"accumulate: opt is int",
    ),
    ErrorCase(
        "accumulate_update_shape",
        lambda: _update(ol.accumulate(ol.sgd(0.1), 2), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        "update",
        ValueError,
        r"accumulate: the update at \['a'\] has shape \(3,\)",
    ),
    ErrorCase(
        "skip_nonfinite_negative",
        lambda: ol.skip_nonfinite(ol.sgd(0.1), -1),
        "construct",
        ValueError,
        r"skip_nonfinite: max_consecutive must be an integer >= 0 or None",
    ),
    ErrorCase(
        "partition_unmatched_leaf",
        lambda: _init(ol.partition({"a": ol.sgd(0.1)}, {"enc/**": "a"}), _P),
        "init",
        ValueError,
        r"partition: no pattern matches the leaf at 'head/w'",
    ),
    ErrorCase(
        "partition_ambiguous_leaf",
        lambda: _init(
            ol.partition(
                {"a": ol.sgd(0.1), "b": ol.sgd(0.2)}, {"enc/**": "a", "**/bias": "b", "head": "a"}
            ),
            _P,
        ),
        "init",
        ValueError,
        r"partition: the leaf at 'enc/bias' is matched by 2 patterns",
    ),
    ErrorCase(
        "partition_unknown_label",
        lambda: _init(ol.partition({"a": ol.sgd(0.1)}, {"**": "a", "head/*": "c"}), _P),
        "init",
        ValueError,
        r"partition: the leaf at 'head/w' has label 'c', which is not",
    ),
    ErrorCase(
        "partition_label_tree_structure",
        lambda: _init(ol.partition({"a": ol.sgd(0.1)}, {"enc": "a"}), _P),
        "init",
        ValueError,
        r"partition: the tree given does not have the params' structure",
    ),
    ErrorCase(
        "partition_empty",
        lambda: ol.partition({}, {"**": "a"}),
        "construct",
        TypeError,
        r"partition: transforms must be a non-empty dict",
    ),
    ErrorCase(
        "partition_not_a_transform",
        lambda: ol.partition({"a": 3}, {"**": "a"}),
        "construct",
        TypeError,
        r"partition: the transformation of group 'a' is int",
    ),
    ErrorCase(
        "partition_state_from_other_groups",
        lambda: ol.partition({"a": ol.sgd(0.1)}, {"**": "a"}).update(
            _P, _init(ol.partition({"b": ol.sgd(0.1)}, {"**": "b"}), _P), _P
        ),
        "update",
        ValueError,
        r"partition: expected a PartitionState with groups \['a'\]",
    ),
    ErrorCase(
        "partition_overrides_not_dict",
        lambda: ol.partition_overrides(ol.adamw, {"a": 1e-3}, {"**": "a"}),
        "construct",
        TypeError,
        r"partition_overrides: the overrides of group 'a' must be a dict",
    ),
    ErrorCase(
        "partition_overrides_bad_value",
        lambda: ol.partition_overrides(ol.adamw, {"a": {"learning_rate": -1.0}}, {"**": "a"}),
        "construct",
        ValueError,
        r"^partition_overrides: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "masked_array_mask",
        lambda: _init(ol.masked(ol.sgd(0.1), {"w": jnp.array(True)}), {"w": jnp.ones(1)}),
        "init",
        TypeError,
        r"masked: the mask value at 'w' is ArrayImpl, not a Python bool",
    ),
    ErrorCase(
        "masked_unmatched_pattern_dict",
        lambda: _init(ol.masked(ol.sgd(0.1), {"enc/*": True}), _P),
        "init",
        ValueError,
        r"masked: no pattern matches the leaf at 'head/w'",
    ),
    ErrorCase(
        "masked_not_a_transform",
        lambda: ol.masked(None, ["**"]),
        "construct",
        TypeError,
        r"masked: inner is NoneType",
    ),
    ErrorCase(
        "decay_mask_unmatched",
        lambda: _update(ol.add_decayed_weights(0.1, {"enc/**": True}), _P, _P),
        "update",
        ValueError,
        r"add_decayed_weights: no pattern matches the leaf at 'head/w'",
    ),
    ErrorCase(
        "ema_decay_range",
        lambda: ol.ema_params(1.5),
        "construct",
        ValueError,
        r"Invalid decay value: 1.5",
    ),
    ErrorCase(
        "ema_params_none",
        lambda: ol.ema_params().update(jnp.zeros(1), ol.ema_params().init(jnp.zeros(1))),
        "update",
        ValueError,
        r"ema_params: params is None",
    ),
    ErrorCase(
        "averaged_params_missing",
        lambda: ol.averaged_params(ol.sgd(0.1).init(jnp.zeros(1))),
        "load",
        ValueError,
        r"averaged_params: the state holds 0 averaging states",
    ),
    ErrorCase(
        "lookahead_sync_zero",
        lambda: ol.lookahead(ol.sgd(0.1), 0, 0.5),
        "construct",
        ValueError,
        r"lookahead: sync_period must be an integer >= 1, got 0",
    ),
    ErrorCase(
        "lookahead_step_size",
        lambda: ol.lookahead(ol.sgd(0.1), 5, 1.5),
        "construct",
        ValueError,
        r"Invalid slow_step_size value: 1.5",
    ),
    ErrorCase(
        "lookahead_params_none",
        lambda: ol.lookahead(ol.sgd(0.1), 2, 0.5).update(
            jnp.zeros(1), ol.lookahead(ol.sgd(0.1), 2, 0.5).init(jnp.zeros(1))
        ),
        "update",
        ValueError,
        r"lookahead: params is None",
    ),
    ErrorCase(
        "block_rms_threshold",
        lambda: ol.clip_by_block_rms(0.0),
        "construct",
        ValueError,
        r"Invalid threshold value: 0.0",
    ),
    ErrorCase(
        "agc_clipping",
        lambda: ol.adaptive_grad_clip(-0.1),
        "construct",
        ValueError,
        r"Invalid clipping value: -0.1",
    ),
    ErrorCase(
        "agc_eps",
        lambda: ol.adaptive_grad_clip(0.1, eps=-1.0),
        "construct",
        ValueError,
        r"Invalid eps value: -1.0",
    ),
    ErrorCase(
        "agc_params_none",
        lambda: ol.adaptive_grad_clip(0.1).update(jnp.zeros(1), ol.EmptyState()),
        "update",
        ValueError,
        r"adaptive_grad_clip: params is None",
    ),
    ErrorCase(
        "per_example_clip_negative",
        lambda: ol.per_example_global_norm_clip([jnp.ones((2, 1))], -1.0),
        "construct",
        ValueError,
        r"Invalid l2_norm_clip value: -1.0",
    ),
    ErrorCase(
        "per_example_clip_batch",
        lambda: ol.per_example_global_norm_clip([jnp.ones((2, 1)), jnp.ones((3,))], 1.0),
        "construct",
        ValueError,
        r"per_example_global_norm_clip: every leaf needs the same",
    ),
    ErrorCase(
        "scale_by_schedule_not_callable",
        lambda: ol.scale_by_schedule(0.5),
        "construct",
        TypeError,
        r"scale_by_schedule: step_size_fn must be callable",
    ),
    ErrorCase(
        "conditionally_transform_not_callable",
        lambda: ol.conditionally_transform(ol.sgd(0.1), True),
        "construct",
        TypeError,
        r"conditionally_transform: should_transform_fn must be callable",
    ),
    ErrorCase(
        "named_chain_repeated",
        lambda: ol.named_chain(("a", ol.sgd(0.1)), ("a", ol.sgd(0.1))),
        "construct",
        ValueError,
        r"named_chain: repeated names \['a'\]",
    ),
    ErrorCase(
        "named_chain_not_pair",
        lambda: ol.named_chain(ol.sgd(0.1)),
        "construct",
        TypeError,
        r"named_chain: argument 0 must be a \(name, transformation\) pair",
    ),
    ErrorCase(
        "monitor_not_a_transform",
        lambda: ol.monitor("adam"),
        "construct",
        TypeError,
        r"monitor: inner is str",
    ),
    ErrorCase(
        "monitored_missing",
        lambda: ol.monitored(ol.sgd(0.1).init(jnp.zeros(1))),
        "load",
        ValueError,
        r"monitored: this state holds no monitor",
    ),
]
