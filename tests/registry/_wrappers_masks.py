"""Error entries for wrappers given a mask, label tree or state that does not fit."""

import jax.numpy as jnp

import optimlab as ol

from ._types import ErrorCase

_P = {"enc": {"w": jnp.ones(2), "bias": jnp.ones(1)}, "head": jnp.ones(2)}
_MISSING = {"enc": {"w": True}, "head": False}
_EXTRA = {"enc": {"w": True, "bias": False, "scale": True}, "head": False}


def _update(tx, params, state=None):
    return tx.update(params, tx.init(params) if state is None else state, params)


ERROR_CASES = [
    ErrorCase(
        "masked_mask_missing_leaf",
        lambda: ol.masked(ol.sgd(0.1), _MISSING).init(_P),
        "init",
        ValueError,
        r"masked: the tree given does not have the params' structure .*leaves at \['enc/bias'\] "
        r"have no entry in the mask",
    ),
    ErrorCase(
        "masked_mask_extra_leaf",
        lambda: ol.masked(ol.sgd(0.1), _EXTRA).init(_P),
        "init",
        ValueError,
        r"masked: the tree given .* the mask's entries at \['enc/scale'\] match no leaf",
    ),
    ErrorCase(
        "masked_mask_extra_leaf_update",
        lambda: _update(ol.masked(ol.sgd(0.1), _EXTRA), _P, ol.MaskedState(ol.EmptyState())),
        "update",
        ValueError,
        r"masked: .*\['enc/scale'\] match no leaf",
    ),
    ErrorCase(
        "freeze_mask_missing_leaf",
        lambda: ol.freeze(_MISSING).init(_P),
        "init",
        ValueError,
        r"masked: .*\['enc/bias'\] have no entry in the mask",
    ),
    ErrorCase(
        "adamw_mask_extra_leaf",
        lambda: _update(ol.adamw(0.1, mask=_EXTRA), _P),
        "update",
        ValueError,
        r"add_decayed_weights: .*\['enc/scale'\] match no leaf",
    ),
    ErrorCase(
        "partition_labels_extra_leaf",
        lambda: ol.partition({"a": ol.sgd(0.1)}, {"enc": "a", "head": "a", "tail": "a"}).init(_P),
        "init",
        ValueError,
        r"partition: .*the label tree's entries at \['tail'\] match no leaf",
    ),
    ErrorCase(
        "masked_updates_params_differ",
        lambda: ol.masked(ol.sgd(0.1), ["enc"]).update(
            {"enc": _P["enc"]}, ol.masked(ol.sgd(0.1), ["enc"]).init(_P), _P
        ),
        "update",
        ValueError,
        r"masked: the updates' tree structure differs from the params",
    ),
    ErrorCase(
        "lookahead_foreign_state",
        lambda: _update(ol.lookahead(ol.sgd(0.1), 2, 0.5), _P, ol.sgd(0.1).init(_P)),
        "update",
        ValueError,
        r"lookahead: expected a LookaheadState, got HyperparamsState",
    ),
]
ERROR_CASES.append(
    ErrorCase(
        "partition_label_function_of_neither_form",
        lambda: ol.partition({"a": ol.sgd(0.1)}, lambda a, b, c: "a").init(_P),
        "init",
        TypeError,
        r"partition: calling the labels function as fn\(path, leaf\) failed at 'enc/bias'.*"
        r"or \(optax's form, tried first\) the params, returning a label tree",
    )
)


def _foreign(tx):
    return _update(tx, _P, ol.sgd(0.1).init(_P))


ERROR_CASES += [
    ErrorCase(
        f"{case}_foreign_state",
        lambda make=make: _foreign(make()),
        "update",
        ValueError,
        rf"{name}: expected a {cls}, got HyperparamsState; pass the state returned by",
    )
    for case, name, cls, make in [
        ("zero_nans", "zero_nans", "ZeroNansState", ol.zero_nans),
        (
            "conditionally_transform",
            "conditionally_transform",
            "ConditionallyTransformState",
            lambda: ol.conditionally_transform(ol.sgd(0.1), lambda step: step < 2),
        ),
        ("sam", "sam", "SAMState", lambda: ol.sam(ol.sgd(0.1), ol.sgd(0.05))),
        (
            "sam_opaque",
            "sam",
            "SAMState",
            lambda: ol.sam(ol.sgd(0.1), ol.sgd(0.05), opaque_mode=True),
        ),
        (
            "schedule_free",
            "schedule_free",
            "ScheduleFreeState",
            lambda: ol.schedule_free(ol.sgd(0.1), 0.1),
        ),
    ]
]
