"""Invalid inputs found by the hostile-input review of the functional core.

Storage dtypes, integer counts given as floats or strings, ``set_hyperparams`` on
a scheduled value or with a non-str group, ``adaptive_grad_clip``'s axis,
``bucketed``'s tx, the schedules' exponents, powers and boundaries, and the
arguments of ``schedule_free_eval_params``, ``reduce_on_plateau``'s metric and
``hutchinson_estimator``'s key.
"""

import pickle

import jax
import jax.numpy as jnp
import numpy as np

import optimlab as ol
from optimlab import schedules

from ._types import ErrorCase

P = {"w": jnp.ones(3), "b": jnp.ones(2)}
_SCHEDULED_MESSAGE = (
    r"^set_hyperparams: 'learning_rate' follows a schedule given when the optimizer was "
    r"built; its value is recomputed at every step\. Build the optimizer with a number to "
    r"set it\.$"
)


def _scheduled_state(how):
    tx = ol.sgd(lambda count: 0.1)
    state = tx.init(P)
    if how == "jit":
        state = jax.jit(tx.update)(P, state, P)[1]
    elif how == "pickle":
        state = pickle.loads(pickle.dumps(state))
    return state


def _set_scheduled(how):
    return ol.set_hyperparams(_scheduled_state(how), learning_rate=5.0)


def _update(tx):
    return tx.update(P, tx.init(P), P)


ERROR_CASES = [
    # 1. storage dtypes: checked by annotation before the factory runs
    ErrorCase(
        "review_accumulate_int_accumulator",
        lambda: ol.accumulate(ol.sgd(1.0), 2, accumulator_dtype=jnp.int32),
        "construct",
        TypeError,
        r"^accumulate: accumulator_dtype must be a floating dtype .*got int32\.$",
    ),
    ErrorCase(
        "review_accumulate_bool_accumulator",
        lambda: ol.accumulate(ol.sgd(1.0), 2, accumulator_dtype=jnp.bool_),
        "construct",
        TypeError,
        r"^accumulate: accumulator_dtype must be a floating dtype .*got bool\.$",
    ),
    ErrorCase(
        "review_sgd_int_accumulator",
        lambda: ol.sgd(1.0, momentum=0.9, accumulator_dtype=jnp.int32),
        "construct",
        TypeError,
        r"^sgd: accumulator_dtype must be a floating dtype",
    ),
    ErrorCase(
        "review_adam_int8_mu",
        lambda: ol.adam(1.0, mu_dtype=jnp.int8),
        "construct",
        TypeError,
        r"^adam: mu_dtype must be a floating dtype .*got int8\.$",
    ),
    ErrorCase(
        "review_adam_unknown_dtype_name",
        lambda: ol.adam(0.1, mu_dtype="blah"),
        "construct",
        TypeError,
        r"^adam: mu_dtype must be a floating dtype .*got str 'blah'\.$",
    ),
    ErrorCase(
        "review_adafactor_int_momentum",
        lambda: ol.adafactor(0.1, momentum=0.9, dtype_momentum=jnp.int32),
        "construct",
        TypeError,
        r"^adafactor: dtype_momentum must be a floating dtype",
    ),
    ErrorCase(
        "review_newton_schulz_complex",
        lambda: ol.newton_schulz(jnp.ones((3, 3)), ns_dtype=jnp.complex64),
        "construct",
        TypeError,
        r"^newton_schulz: ns_dtype must be a floating dtype, got complex64\.$",
    ),
    # 2. integer counts: NumPy integers pass, other types are TypeError
    ErrorCase(
        "review_accumulate_every_str",
        lambda: ol.accumulate(ol.sgd(0.1), "3"),
        "construct",
        TypeError,
        r"^accumulate: every must be an integer >= 1, got '3'\.$",
    ),
    ErrorCase(
        "review_accumulate_every_numpy_zero",
        lambda: ol.accumulate(ol.sgd(0.1), np.int64(0)),
        "construct",
        ValueError,
        r"^accumulate: every must be an integer >= 1, got 0\.$",
    ),
    ErrorCase(
        "review_lookahead_sync_float",
        lambda: ol.lookahead(ol.sgd(0.1), 2.0, 0.5),
        "construct",
        TypeError,
        r"^lookahead: sync_period must be an integer >= 1, got 2\.0\.$",
    ),
    ErrorCase(
        "review_lookahead_sync_bool",
        lambda: ol.lookahead(ol.sgd(0.1), True, 0.5),
        "construct",
        TypeError,
        r"^lookahead: sync_period must be an integer >= 1, got True\.$",
    ),
    ErrorCase(
        "review_skip_nonfinite_str",
        lambda: ol.skip_nonfinite(ol.sgd(0.1), "3"),
        "construct",
        TypeError,
        r"^skip_nonfinite: max_consecutive must be an integer >= 0 or None, got '3'\.$",
    ),
    # 3. set_hyperparams on a value that follows a schedule
    ErrorCase(
        "review_set_scheduled", lambda: _set_scheduled(""), "set", ValueError, _SCHEDULED_MESSAGE
    ),
    ErrorCase(
        "review_set_scheduled_after_jit",
        lambda: _set_scheduled("jit"),
        "set",
        ValueError,
        _SCHEDULED_MESSAGE,
    ),
    ErrorCase(
        "review_set_scheduled_after_pickle",
        lambda: _set_scheduled("pickle"),
        "set",
        ValueError,
        _SCHEDULED_MESSAGE,
    ),
    ErrorCase(
        "review_set_scheduled_by_full_name",
        lambda: ol.set_hyperparams(
            ol.partition(
                {"a": ol.sgd(0.1), "b": ol.adam(lambda c: 0.1)}, {"w": "a", "b": "b"}
            ).init(P),
            **{"b/learning_rate": 0.2},
        ),
        "set",
        ValueError,
        r"^set_hyperparams: 'learning_rate' follows a schedule",
    ),
    # 4. set_hyperparams' group
    ErrorCase(
        "review_set_group_int",
        lambda: ol.set_hyperparams(ol.sgd(0.1).init(P), group=1, learning_rate=0.2),
        "set",
        TypeError,
        r"^set_hyperparams: group must be a str .*got int 1\.$",
    ),
    # 5. adaptive_grad_clip's axis
    ErrorCase(
        "review_agc_axis_str",
        lambda: ol.adaptive_grad_clip(0.1, axis="x"),
        "construct",
        TypeError,
        r"^adaptive_grad_clip: axis must be an int, a tuple of ints or None, got str 'x'\.$",
    ),
    ErrorCase(
        "review_agc_axis_float",
        lambda: ol.adaptive_grad_clip(0.1, axis=1.0),
        "construct",
        TypeError,
        r"^adaptive_grad_clip: axis must be an int, a tuple of ints or None, got float 1\.0\.$",
    ),
    ErrorCase(
        "review_agc_axis_out_of_range",
        lambda: _update(ol.adaptive_grad_clip(0.1, axis=5)),
        "update",
        ValueError,
        r"^adaptive_grad_clip: axis=5 is out of range for the leaf at \['b'\] of shape \(2,\)",
    ),
    # 6. bucketed's tx
    ErrorCase(
        "review_bucketed_not_a_transform",
        lambda: ol.bucketed(3),
        "construct",
        TypeError,
        r"^bucketed: tx must be a GradientTransformation, got int\.$",
    ),
    # 7. smaller ones
    ErrorCase(
        "review_newton_schulz_negative_steps",
        lambda: ol.newton_schulz(jnp.ones((3, 3)), ns_steps=-1),
        "construct",
        ValueError,
        r"^newton_schulz: Invalid ns_steps value: -1 \(must be an int >= 0\)$",
    ),
    ErrorCase(
        "review_newton_schulz_two_coefficients",
        lambda: ol.newton_schulz(jnp.ones((3, 3)), ns_coeffs=(1.0, 2.0)),
        "construct",
        ValueError,
        r"^newton_schulz: Coefficients must be a tuple of exactly 3 values$",
    ),
    ErrorCase(
        "review_plateau_min_scale_above_one",
        lambda: ol.reduce_on_plateau(min_scale=2.0),
        "construct",
        ValueError,
        r"^reduce_on_plateau: min_scale must be in \[0, 1\] .*got 2\.0\.$",
    ),
    ErrorCase(
        "review_plateau_min_scale_above_one_torch",
        lambda: ol.reduce_on_plateau(min_scale=1.5, rule="torch"),
        "construct",
        ValueError,
        r"^reduce_on_plateau: min_scale must be in \[0, 1\]",
    ),
    ErrorCase(
        "review_plateau_patience_shown_as_given",
        lambda: ol.reduce_on_plateau(patience=-1),
        "construct",
        ValueError,
        r"^reduce_on_plateau: Invalid patience value: -1 \(must be an integer >= 0\)$",
    ),
    ErrorCase(
        "review_partition_overrides_factory",
        lambda: ol.partition_overrides(3, {"a": {"learning_rate": 0.1}}, {"w": "a", "b": "a"}),
        "construct",
        TypeError,
        r"^partition_overrides: factory must be an optimizer factory .*got int 3\.$",
    ),
    ErrorCase(
        "review_scale_by_schedule_returns_str",
        lambda: _update(ol.scale_by_schedule(lambda count: "x")),
        "update",
        TypeError,
        r"^scale_by_schedule: the schedule returned a str \('x'\), not a number",
    ),
    ErrorCase(
        "review_scale_by_schedule_returns_none_jit",
        lambda: jax.jit(ol.scale_by_schedule(lambda count: None).update)(
            P, ol.scale_by_schedule(lambda count: None).init(P)
        ),
        "update",
        TypeError,
        r"^scale_by_schedule: the schedule returned None, not a number",
    ),
    # 8. schedules
    ErrorCase(
        "review_cosine_decay_negative_exponent",
        lambda: schedules.cosine_decay(1.0, 10, exponent=-1.0),
        "schedule",
        ValueError,
        r"^cosine_decay: Invalid exponent value: -1\.0 \(must be >= 0\)$",
    ),
    ErrorCase(
        "review_polynomial_negative_power",
        lambda: schedules.polynomial(1.0, 0.0, -1, 5),
        "schedule",
        ValueError,
        r"^polynomial: Invalid power value: -1 \(must be >= 0\)$",
    ),
    ErrorCase(
        "review_polynomial_decay_negative_power_same_wording",
        lambda: schedules.polynomial_decay(1.0, 5, -1),
        "schedule",
        ValueError,
        r"^polynomial_decay: Invalid power value: -1 \(must be >= 0\)$",
    ),
    ErrorCase(
        "review_piecewise_constant_list",
        lambda: schedules.piecewise_constant(1.0, [(2, 0.1)]),  # type: ignore[arg-type]
        "schedule",
        TypeError,
        r"^piecewise_constant: boundaries_and_scales must be a dict \{step: scale\}",
    ),
    ErrorCase(
        "review_constant_nan",
        lambda: schedules.constant(float("nan")),
        "schedule",
        ValueError,
        r"^constant: Invalid value: nan \(must be finite\)$",
    ),
    ErrorCase(
        "review_schedule_free_eval_params_shape",
        lambda: ol.schedule_free_eval_params(
            ol.schedule_free_adamw(0.1).init(P), {"w": jnp.ones(3), "b": jnp.ones(4)}
        ),
        "update",
        ValueError,
        r"^schedule_free_eval_params: the param at \['b'\] has shape \(4,\) but the state's z "
        r"expects \(2,\)\.$",
    ),
    ErrorCase(
        "review_schedule_free_eval_params_structure",
        lambda: ol.schedule_free_eval_params(
            ol.schedule_free_adamw(0.1).init(P), {"w": jnp.ones(3)}
        ),
        "update",
        ValueError,
        r"^schedule_free_eval_params: the params' tree structure differs from the state's z",
    ),
    ErrorCase(
        "review_plateau_metric_str",
        lambda: ol.reduce_on_plateau().update(P, ol.reduce_on_plateau().init(P), value="x"),
        "update",
        TypeError,
        r"^reduce_on_plateau: the metric \(value=\) must be a real number, got str 'x'\.$",
    ),
    ErrorCase(
        "review_hutchinson_key_int",
        lambda: ol.hutchinson_estimator(lambda x: jnp.sum(x**2), jnp.ones(3), 0),
        "update",
        TypeError,
        r"^hutchinson_estimator: key must be a PRNG key \(jax\.random\.key\(0\)\), got int 0",
    ),
    ErrorCase(
        "review_sam_batch_axis_name_int",
        lambda: ol.sam(ol.sgd(0.1), ol.sgd(0.1), opaque_mode=True, batch_axis_name=0),
        "construct",
        TypeError,
        r"^sam: batch_axis_name must be None or the name of a mapped axis .*got 0\.$",
    ),
]
