"""Registry entries for the schedules, reduce_on_plateau and the optim schedulers: bad arguments."""

import jax.numpy as jnp

import optimlab as ol
from optimlab import schedules as S

from ._types import ErrorCase


def _e(id_, fn, exc, match, stage="schedule"):
    return ErrorCase(f"schedule_{id_}", fn, stage, exc, match)


def _sgd():
    return ol.optim.SGD([jnp.ones(2)], lr=0.1)


def _averaged():
    return ol.optim.swa_utils.AveragedModel({"w": jnp.ones(2), "b": jnp.ones(1)})


ERROR_CASES = [
    _e(
        "multistep_milestones_not_a_sequence",
        lambda: S.multistep(0.1, 5),
        TypeError,
        r"^multistep: milestones must be a list or a tuple, got int 5\.$",
    ),
    _e(
        "join_schedules_not_a_sequence",
        lambda: S.join(S.constant(1.0), [5]),
        TypeError,
        r"^join: schedules must be a list or a tuple, got function",
    ),
    _e(
        "sgdr_cycle_not_a_dict",
        lambda: S.sgdr([1]),
        TypeError,
        r"^sgdr: cosine_kwargs\[0\] must be a dict of warmup_cosine_decay arguments, got int 1\.$",
    ),
    _e(
        "sgdr_cycle_missing_argument",
        lambda: S.sgdr([{"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1}]),
        TypeError,
        r"^sgdr: cosine_kwargs\[0\]: warmup_cosine_decay\(\) missing 1 required .*'decay_steps'",
    ),
    _e(
        "sgdr_cycle_bad_value",
        lambda: S.sgdr([dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=0)]),
        ValueError,
        r"^sgdr: cosine_kwargs\[0\]: Invalid decay_steps value: 0",
    ),
    _e(
        "step_lr_zero_step_size_names_the_class",
        lambda: ol.optim.lr_scheduler.StepLR(_sgd(), 0),
        ValueError,
        r"^StepLR: Invalid step_size value: 0 \(must be > 0\)$",
    ),
    _e(
        "plateau_factor_nan",
        lambda: ol.optim.lr_scheduler.ReduceLROnPlateau(_sgd(), factor=float("nan")),
        ValueError,
        r"^ReduceLROnPlateau: factor must be finite, got nan$",
    ),
    _e(
        "scheduler_load_state_dict_not_a_dict",
        lambda: ol.optim.lr_scheduler.StepLR(_sgd(), 2).load_state_dict([("last_epoch", 3)]),
        TypeError,
        r"^StepLR.load_state_dict: state_dict must be a dict \(from state_dict\(\)\), got list\.$",
        stage="load",
    ),
    _e(
        "swalr_swa_lr_nan",
        lambda: ol.optim.swa_utils.SWALR(_sgd(), swa_lr=float("nan")),
        ValueError,
        r"^Invalid learning rate: nan$",
    ),
    _e(
        "ema_avg_fn_decay_nan",
        lambda: ol.optim.swa_utils.get_ema_avg_fn(float("nan")),
        ValueError,
        r"^Invalid decay value nan provided",
    ),
    _e(
        "averaged_model_params_not_arrays",
        lambda: ol.optim.swa_utils.AveragedModel({"w": jnp.ones(2), "name": "encoder"}),
        TypeError,
        r"^AveragedModel: params must be a tree of arrays, but the leaf at \['name'\] is str "
        r"'encoder'\.$",
    ),
    _e(
        "averaged_model_avg_fn_not_callable",
        lambda: ol.optim.swa_utils.AveragedModel({"w": jnp.ones(2)}, avg_fn=0.9),
        TypeError,
        r"^AveragedModel: avg_fn must be a function \(e.g. get_ema_avg_fn\(\)\), got float\.$",
    ),
    _e(
        "averaged_model_update_other_tree",
        lambda: _averaged().update_parameters({"w": jnp.ones(2)}),
        ValueError,
        r"^AveragedModel.update_parameters: the model's tree structure differs from the "
        r"averaged params at \['w'\] \(the averaged params have \['b'\]\)",
        stage="update",
    ),
    _e(
        "polynomial_negative_steps",
        lambda: S.polynomial(1.0, 0.0, 1.0, -1),
        ValueError,
        r"^polynomial: Invalid transition_steps value: -1 \(must be >= 0\)$",
    ),
    _e(
        "linear_negative_begin",
        lambda: S.linear(1.0, 0.0, 10, -5),
        ValueError,
        r"^linear: Invalid transition_begin value: -5",
    ),
    _e(
        "exponential_decay_zero_steps",
        lambda: S.exponential_decay(1.0, 0, 0.5),
        ValueError,
        r"^exponential_decay: Invalid transition_steps value: 0 \(must be > 0\)$",
    ),
    _e(
        "exponential_decay_zero_rate",
        lambda: S.exponential_decay(1.0, 10, 0.0),
        ValueError,
        r"^exponential_decay: Invalid decay_rate value: 0.0",
    ),
    _e(
        "cosine_decay_zero_steps",
        lambda: S.cosine_decay(1.0, 0),
        ValueError,
        r"^cosine_decay: Invalid decay_steps value: 0",
    ),
    _e(
        "piecewise_constant_negative_scale",
        lambda: S.piecewise_constant(1.0, {5: -0.5}),
        ValueError,
        r"boundaries_and_scales.*non-negative scale factors",
    ),
    _e(
        "piecewise_interpolate_type",
        lambda: S.piecewise_interpolate("quadratic", 1.0),
        ValueError,
        r"^piecewise_interpolate: Invalid interpolate_type value: 'quadratic'",
    ),
    _e(
        "piecewise_interpolate_negative_boundary",
        lambda: S.piecewise_interpolate("linear", 1.0, {-3: 0.5}),
        ValueError,
        r"^piecewise_interpolate: Invalid boundaries_and_scales value: -3",
    ),
    _e(
        "warmup_cosine_warmup_ge_decay",
        lambda: S.warmup_cosine_decay(0.0, 1.0, 100, 100),
        ValueError,
        r"^warmup_cosine_decay: Invalid decay_steps value: 100 \(must be > warmup_steps = 100\)$",
    ),
    _e(
        "warmup_exponential_negative_warmup",
        lambda: S.warmup_exponential_decay(0.0, 1.0, -1, 10, 0.5),
        ValueError,
        r"^warmup_exponential_decay: Invalid warmup_steps value: -1",
    ),
    _e("sgdr_empty", lambda: S.sgdr([]), ValueError, r"^sgdr: Invalid cosine_kwargs value"),
    _e(
        "join_boundaries_count",
        lambda: S.join([S.constant(1.0)] * 2, []),
        ValueError,
        r"^join: Invalid boundaries value: \[\] \(expected 1 boundaries for 2 schedules\)$",
    ),
    _e(
        "join_boundaries_not_increasing",
        lambda: S.join([S.constant(1.0)] * 3, [10, 10]),
        ValueError,
        r"^join: Invalid boundaries value: \[10, 10\] \(must be strictly increasing\)$",
    ),
    _e(
        "join_not_callable",
        lambda: S.join([1.0], []),
        TypeError,
        r"^join: schedules must be a schedule",
    ),
    _e(
        "cosine_onecycle_zero_steps",
        lambda: S.cosine_onecycle(0, 1.0),
        ValueError,
        r"^cosine_onecycle: Invalid transition_steps value: 0",
    ),
    _e(
        "cosine_onecycle_pct",
        lambda: S.cosine_onecycle(100, 1.0, pct_start=1.5),
        ValueError,
        r"^cosine_onecycle: Invalid pct_start value: 1.5",
    ),
    _e(
        "linear_onecycle_pct_order",
        lambda: S.linear_onecycle(100, 1.0, 0.6, 0.5),
        ValueError,
        r"^linear_onecycle: Invalid pct_final value: 0.5",
    ),
    _e(
        "step_zero_step_size",
        lambda: S.step(0.1, 0),
        ValueError,
        r"^step: Invalid step_size value: 0 \(must be > 0\)$",
    ),
    _e(
        "step_negative_gamma",
        lambda: S.step(0.1, 10, -0.5),
        ValueError,
        r"^step: Invalid gamma value: -0.5",
    ),
    _e(
        "multistep_decreasing",
        lambda: S.multistep(0.1, [30, 10]),
        ValueError,
        r"^multistep: Invalid milestones value: \[30, 10\] \(must be non-decreasing\)$",
    ),
    _e(
        "multistep_negative",
        lambda: S.multistep(0.1, [-1, 10]),
        ValueError,
        r"^multistep: Invalid milestones value: -1",
    ),
    _e(
        "constant_factor_above_one",
        lambda: S.constant_factor(1.5),
        ValueError,
        r"^constant_factor: Invalid factor value: 1.5 \(must be in \(0.0, 1.0\]\)$",
    ),
    _e(
        "constant_factor_zero_iters",
        lambda: S.constant_factor(0.5, 0),
        ValueError,
        r"^constant_factor: Invalid total_iters value: 0",
    ),
    _e(
        "linear_factor_start_zero",
        lambda: S.linear_factor(0.0),
        ValueError,
        r"^linear_factor: Invalid start_factor value: 0.0",
    ),
    _e(
        "linear_factor_end_above_one",
        lambda: S.linear_factor(0.5, 1.2),
        ValueError,
        r"^linear_factor: Invalid end_factor value: 1.2",
    ),
    _e(
        "exponential_zero_gamma",
        lambda: S.exponential(0.1, 0.0),
        ValueError,
        r"^exponential: Invalid gamma value: 0.0",
    ),
    _e(
        "cosine_annealing_zero_t_max",
        lambda: S.cosine_annealing(0.1, 0),
        ValueError,
        r"^cosine_annealing: Invalid T_max value: 0 \(must be > 0\)$",
    ),
    _e(
        "warm_restarts_zero_t0",
        lambda: S.cosine_annealing_warm_restarts(0.1, 0),
        ValueError,
        r"^cosine_annealing_warm_restarts: Invalid T_0 value: 0 \(must be an integer >= 1\)$",
    ),
    _e(
        "warm_restarts_fractional_t0",
        lambda: S.cosine_annealing_warm_restarts(0.1, 2.5),
        ValueError,
        r"^cosine_annealing_warm_restarts: Invalid T_0 value: 2.5",
    ),
    _e(
        "warm_restarts_t_mult",
        lambda: S.cosine_annealing_warm_restarts(0.1, 10, 0),
        ValueError,
        r"^cosine_annealing_warm_restarts: Invalid T_mult value: 0",
    ),
    _e(
        "cyclic_zero_step_size_up",
        lambda: S.cyclic(0.01, 0.1, 0),
        ValueError,
        r"^cyclic: Invalid step_size_up value: 0",
    ),
    _e(
        "cyclic_mode",
        lambda: S.cyclic(0.01, 0.1, mode="sawtooth"),
        ValueError,
        r"^cyclic: Invalid mode value: 'sawtooth'",
    ),
    _e(
        "cyclic_scale_mode",
        lambda: S.cyclic(0.01, 0.1, scale_fn=lambda x: x, scale_mode="epoch"),
        ValueError,
        r"^cyclic: Invalid scale_mode value: 'epoch'",
    ),
    _e(
        "cyclic_momentum_step_size_down",
        lambda: S.cyclic_momentum(step_size_down=-1),
        ValueError,
        r"^cyclic_momentum: Invalid step_size_down value: -1",
    ),
    _e(
        "one_cycle_zero_total",
        lambda: S.one_cycle(0.1, 0),
        ValueError,
        r"^one_cycle: Invalid total_steps value: 0",
    ),
    _e(
        "one_cycle_pct",
        lambda: S.one_cycle(0.1, 100, pct_start=1.2),
        ValueError,
        r"^one_cycle: Invalid pct_start value: 1.2",
    ),
    _e(
        "one_cycle_empty_phase",
        lambda: S.one_cycle(0.1, 10, pct_start=0.1),
        ValueError,
        r"^one_cycle: Invalid pct_start value: 0.1 \(a phase of 10 total_steps would have zero "
        r"length\)$",
    ),
    _e(
        "one_cycle_anneal",
        lambda: S.one_cycle(0.1, 100, anneal_strategy="cosine"),
        ValueError,
        r"^one_cycle: Invalid anneal_strategy value: 'cosine'",
    ),
    _e(
        "one_cycle_div_factor",
        lambda: S.one_cycle(0.1, 100, div_factor=0.0),
        ValueError,
        r"^one_cycle: Invalid div_factor value: 0.0",
    ),
    _e(
        "one_cycle_momentum_total",
        lambda: S.one_cycle_momentum(-5),
        ValueError,
        r"^one_cycle_momentum: Invalid total_steps value: -5",
    ),
    _e(
        "polynomial_decay_zero_iters",
        lambda: S.polynomial_decay(0.1, 0),
        ValueError,
        r"^polynomial_decay: Invalid total_iters value: 0",
    ),
    _e(
        "polynomial_decay_negative_power",
        lambda: S.polynomial_decay(0.1, 10, -1.0),
        ValueError,
        r"^polynomial_decay: Invalid power value: -1.0",
    ),
    _e(
        "lambda_factor_not_callable",
        lambda: S.lambda_factor(0.5),
        TypeError,
        r"^lambda_factor: lr_lambda must be a schedule",
    ),
    _e(
        "multiplicative_not_callable",
        lambda: S.multiplicative(0.9),
        TypeError,
        r"^multiplicative: lr_lambda must be a schedule",
    ),
    _e(
        "multiplicative_negative_steps",
        lambda: S.multiplicative(lambda k: 0.9, -1),
        ValueError,
        r"^multiplicative: Invalid num_steps value: -1",
    ),
    _e(
        "swa_anneal_negative_epochs",
        lambda: S.swa_anneal(0.1, 0.05, -1),
        ValueError,
        r"^swa_anneal: Invalid anneal_epochs value: -1",
    ),
    _e(
        "swa_anneal_strategy",
        lambda: S.swa_anneal(0.1, 0.05, 10, "exp"),
        ValueError,
        r"^swa_anneal: Invalid anneal_strategy value: 'exp'",
    ),
    _e(
        "sequential_milestones_count",
        lambda: S.sequential([S.constant(1.0)] * 2, [5, 10]),
        ValueError,
        r"^sequential: Invalid milestones value: \[5, 10\] \(expected 1 milestones",
    ),
    _e(
        "sequential_milestones_order",
        lambda: S.sequential([S.constant(1.0)] * 3, [10, 5]),
        ValueError,
        r"^sequential: Invalid milestones value: \[10, 5\] \(must be strictly increasing\)$",
    ),
    _e("chained_empty", lambda: S.chained(), ValueError, r"^chained: Invalid factors value"),
    _e(
        "string_structural_argument",
        lambda: S.step(0.1, "10"),
        TypeError,
        r"^step: step_size must be a concrete real number",
    ),
    _e(
        "plateau_factor",
        lambda: ol.reduce_on_plateau(factor=1.0, rule="torch"),
        ValueError,
        r"^reduce_on_plateau: Invalid factor value: 1.0 \(must be in \[0.0, 1.0\)\)$",
        "construct",
    ),
    _e(
        "plateau_mode",
        lambda: ol.reduce_on_plateau(mode="lowest", rule="torch"),
        ValueError,
        r"^reduce_on_plateau: Invalid mode value: 'lowest'",
        "construct",
    ),
    _e(
        "plateau_threshold_mode",
        lambda: ol.reduce_on_plateau(threshold_mode="pct", rule="torch"),
        ValueError,
        r"^reduce_on_plateau: Invalid threshold_mode value: 'pct'",
        "construct",
    ),
    _e(
        "plateau_patience",
        lambda: ol.reduce_on_plateau(patience=-1),
        ValueError,
        r"^reduce_on_plateau: Invalid patience value: -1",
        "construct",
    ),
    _e(
        "plateau_cooldown",
        lambda: ol.reduce_on_plateau(cooldown=-2),
        ValueError,
        r"^reduce_on_plateau: Invalid cooldown value: -2",
        "construct",
    ),
    _e(
        "plateau_base_lr",
        lambda: ol.reduce_on_plateau(base_lr=0.0, rule="torch"),
        ValueError,
        r"^reduce_on_plateau: Invalid base_lr value: 0.0",
        "construct",
    ),
    _e(
        "plateau_min_lr_and_scale",
        lambda: ol.reduce_on_plateau(min_scale=0.1, min_lr=0.01, rule="torch"),
        ValueError,
        r"min_lr or min_scale, not both",
        "construct",
    ),
]
