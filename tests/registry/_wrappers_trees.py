"""Every wrapper on unusual trees: ``{}``, a tree of only ``None`` leaves, a scalar param.

``TREE_CASES`` lists ``(id, make)``; ``tests/wrappers/test_trees.py`` runs each
on each tree: ``init`` and a jitted ``update`` must work and return the
updates' structure, as optax's counterparts do.
"""

import jax.numpy as jnp

import optimlab as ol

_MASK = ["**"]


def _sgd():
    return ol.sgd(0.1, momentum=0.9)


TREE_CASES = [
    ("masked_patterns", lambda: ol.masked(_sgd(), _MASK)),
    ("masked_fn", lambda: ol.masked(_sgd(), lambda p: True)),
    ("masked_bool", lambda: ol.masked(_sgd(), True)),
    ("masked_nested", lambda: ol.masked(ol.masked(_sgd(), True), lambda p: True)),
    ("freeze", lambda: ol.freeze(True)),
    ("set_to_zero", ol.set_to_zero),
    ("partition_label", lambda: ol.partition({"a": _sgd(), "b": ol.adam(0.1)}, "a")),
    ("partition_fn", lambda: ol.partition({"a": _sgd()}, lambda path, leaf: "a")),
    ("partition_patterns", lambda: ol.partition({"a": _sgd()}, {"**": "a"})),
    (
        "partition_overrides",
        lambda: ol.partition_overrides(ol.adamw, {"a": {}}, "a", learning_rate=0.1),
    ),
    ("accumulate", lambda: ol.accumulate(ol.adam(0.1), every=2)),
    ("accumulate_sum", lambda: ol.accumulate(_sgd(), every=2, mode="sum")),
    ("lookahead", lambda: ol.lookahead(ol.adam(0.1), 2, 0.5)),
    ("lookahead_reset", lambda: ol.lookahead(_sgd(), 2, 0.5, reset_state=True)),
    ("ema_params", lambda: ol.chain(_sgd(), ol.ema_params(0.9))),
    ("ema_params_debias", lambda: ol.chain(_sgd(), ol.ema_params(0.9, debias=True))),
    ("swa_params", lambda: ol.chain(_sgd(), ol.swa_params())),
    ("reduce_on_plateau", lambda: ol.chain(_sgd(), ol.reduce_on_plateau(patience=1))),
    ("skip_nonfinite", lambda: ol.skip_nonfinite(ol.adam(0.1), max_consecutive=2)),
    ("zero_nans", ol.zero_nans),
    (
        "conditionally_transform",
        lambda: ol.conditionally_transform(_sgd(), lambda step: step % 2 == 0),
    ),
    ("named_chain", lambda: ol.named_chain(("clip", ol.clip(1.0)), ("opt", ol.adam(0.1)))),
    ("chain", lambda: ol.chain(ol.clip_by_global_norm(1.0), ol.adam(0.1))),
    ("monitor", lambda: ol.monitor(ol.adam(0.1))),
    ("clip", lambda: ol.clip(1.0)),
    ("clip_by_global_norm", lambda: ol.clip_by_global_norm(1.0)),
    ("clip_by_block_rms", lambda: ol.clip_by_block_rms(1.0)),
    ("adaptive_grad_clip", lambda: ol.adaptive_grad_clip(0.1)),
    ("centralize", ol.centralize),
    ("with_hyperparams", lambda: ol.with_hyperparams(lambda step, h: ol.scale(-h["lr"]), lr=0.1)),
    ("bucketed", lambda: ol.bucketed(ol.adam(0.1))),
    ("sam", lambda: ol.sam(_sgd(), ol.sgd(0.05), sync_period=2)),
    ("schedule_free", lambda: ol.schedule_free(_sgd(), 0.1)),
    ("add_decayed_weights_mask", lambda: ol.add_decayed_weights(0.1, mask=_MASK)),
    ("adamw_mask", lambda: ol.adamw(0.1, mask=lambda p: True)),
]

TREES = {
    "empty_dict": {},
    "none_leaves": {"a": None, "b": (None, None)},
    "scalar": jnp.array(2.0, jnp.float32),
    "mixed_none": {"w": jnp.ones(2), "frozen": None},
}
