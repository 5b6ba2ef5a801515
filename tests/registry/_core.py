"""Registry entries for the foundation: sgd, adam, adamw and the basic primitives."""

import types

import jax
import jax.numpy as jnp

import optimlab as ol

from ._types import Case, ErrorCase

_NOT_CALLABLE = types.SimpleNamespace(init=None, update=None)

CASES = [
    Case("sgd", lambda: ol.sgd(0.1), tags=("torch",), complex_ok=True),
    Case(
        "sgd_momentum",
        lambda: ol.sgd(0.05, momentum=0.9),
        tags=("torch",),
        complex_ok=True,
        rosenbrock=(lambda: ol.sgd(1e-3, momentum=0.9), 5000, 1e-2),
    ),
    Case(
        "sgd_nesterov_wd",
        lambda: ol.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=2e-2,
        complex_ok=True,
    ),
    Case(
        "sgd_dampening_maximize",
        lambda: ol.chain(ol.scale(-1.0), ol.sgd(0.05, momentum=0.5, dampening=0.3, maximize=True)),
        tags=("torch",),
        complex_ok=True,
    ),
    Case(
        "adam",
        lambda: ol.adam(0.05),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.adam(0.02), 5000, 1e-2),
    ),
    Case(
        "adam_amsgrad_wd",
        lambda: ol.adam(0.05, amsgrad=True, weight_decay=1e-3),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "adamw",
        lambda: ol.adamw(0.05),
        tags=("torch", "optax"),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
    Case(
        "adam_bf16_moments",
        lambda: ol.adam(0.05, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        tags=("dtype",),
    ),
    Case("amsgrad", lambda: ol.amsgrad(0.05), tags=("torch",), complex_ok=True),
    Case(
        "clip_adamw",
        lambda: ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(0.05)),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
]

ERROR_CASES = [
    ErrorCase(
        "with_hyperparams_build_not_callable",
        lambda: ol.with_hyperparams(ol.sgd(0.1), learning_rate=0.1),
        "construct",
        TypeError,
        r"^with_hyperparams: build must be a function \(step, h\) -> GradientTransformation, "
        r"got GradientTransformation\.$",
    ),
    ErrorCase(
        "value_and_grad_from_state_not_callable",
        lambda: ol.value_and_grad_from_state(jnp.ones(2)),
        "construct",
        TypeError,
        r"^value_and_grad_from_state: value_fn must be a function of the params",
    ),
    ErrorCase(
        "state_shardings_mesh_not_a_mesh",
        lambda: ol.state_shardings(ol.adam(0.1), {"w": jnp.ones(2)}, ("data",)),
        "construct",
        TypeError,
        r"^state_shardings: mesh must be a jax.sharding.Mesh .*got tuple\.$",
    ),
    ErrorCase(
        "zero1_state_shardings_tx_not_a_transformation",
        lambda: ol.zero1_state_shardings(
            "adam", {"w": jnp.ones(2)}, jax.make_mesh((1,), ("data",))
        ),
        "construct",
        TypeError,
        r"^zero1_state_shardings: tx is str, not a gradient transformation\.$",
    ),
    ErrorCase(
        "bucketed_init_integer_params",
        lambda: ol.bucketed(ol.adam(0.1)).init({"w": jnp.ones(2), "steps": jnp.ones(3, jnp.int32)}),
        "init",
        TypeError,
        r"^bucketed init: params must be floating-point or complex, but the leaf at "
        r"\['steps'\] is int32",
    ),
    ErrorCase(
        "optim_step_gradient_not_an_array",
        lambda: ol.optim.SGD([jnp.ones(2)], lr=0.1).step(["0.1"]),
        "update",
        TypeError,
        r"^the gradient of parameter 0 \('0'\) is a str, not an array$",
    ),
    ErrorCase(
        "sgd_negative_lr",
        lambda: ol.sgd(-1.0),
        "construct",
        ValueError,
        r"^sgd: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "sgd_nan_lr",
        lambda: ol.sgd(float("nan")),
        "construct",
        ValueError,
        r"^sgd: Invalid learning rate: nan$",
    ),
    ErrorCase(
        "sgd_negative_momentum",
        lambda: ol.sgd(0.1, momentum=-0.5),
        "construct",
        ValueError,
        r"^sgd: Invalid momentum value: -0.5$",
    ),
    ErrorCase(
        "sgd_negative_wd",
        lambda: ol.sgd(0.1, weight_decay=-1.0),
        "construct",
        ValueError,
        r"^sgd: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "sgd_nesterov_without_momentum",
        lambda: ol.sgd(0.1, nesterov=True),
        "construct",
        ValueError,
        r"Nesterov momentum requires a momentum and zero dampening",
    ),
    ErrorCase(
        "sgd_nesterov_with_dampening",
        lambda: ol.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True),
        "construct",
        ValueError,
        r"Nesterov momentum requires a momentum and zero dampening",
    ),
    ErrorCase(
        "adam_beta1",
        lambda: ol.adam(b1=1.5),
        "construct",
        ValueError,
        r"^adam: Invalid beta parameter at index 0: 1.5$",
    ),
    ErrorCase(
        "adam_beta2",
        lambda: ol.adam(b2=-0.1),
        "construct",
        ValueError,
        r"^adam: Invalid beta parameter at index 1: -0.1$",
    ),
    ErrorCase(
        "adam_eps",
        lambda: ol.adam(eps=-1e-8),
        "construct",
        ValueError,
        r"^adam: Invalid epsilon value: -1e-08$",
    ),
    ErrorCase(
        "adamw_lr",
        lambda: ol.adamw(-0.1),
        "construct",
        ValueError,
        r"^adamw: Invalid learning rate: -0.1$",
    ),
    ErrorCase(
        "adam_nonscalar_lr",
        lambda: ol.adam(jnp.ones(3)),
        "construct",
        ValueError,
        r"hyperparameter 'learning_rate' must be a scalar",
    ),
    ErrorCase(
        "adam_string_lr",
        lambda: ol.adam("0.1"),  # pyright: ignore[reportArgumentType]  (the bad input)
        "construct",
        TypeError,
        r"hyperparameter 'learning_rate' must be a real number",
    ),
    ErrorCase(
        "clip_negative_norm",
        lambda: ol.clip_by_global_norm(-1.0),
        "construct",
        ValueError,
        r"Invalid max_norm value: -1.0",
    ),
    ErrorCase(
        "clip_negative_delta",
        lambda: ol.clip(-1.0),
        "construct",
        ValueError,
        r"Invalid max_delta value: -1.0",
    ),
    ErrorCase(
        "adam_update_structure",
        lambda: _update(
            ol.adam(),
            {"a": jnp.zeros(2), "b": jnp.zeros(3)},
            {"a": jnp.zeros(2), "c": jnp.zeros(3)},
        ),
        "update",
        ValueError,
        r"scale_by_adam: .*\['c'\].*\['b'\]",
    ),
    ErrorCase(
        "sgd_update_shape",
        lambda: _update(ol.sgd(0.1, momentum=0.9), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        "update",
        ValueError,
        r"trace: the update at \['a'\] has shape \(3,\)",
    ),
    ErrorCase(
        "sgd_stateless_update_shape",
        lambda: _update(ol.sgd(0.1), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        "update",
        ValueError,
        r"sgd: the update at \['a'\] has shape \(3,\) but the params",
    ),
    ErrorCase(
        "adamw_params_none",
        lambda: ol.adamw().update(jnp.zeros(2), ol.adamw().init(jnp.zeros(2))),
        "update",
        ValueError,
        r"add_decayed_weights: params is None",
    ),
    ErrorCase(
        "state_from_other_optimizer",
        lambda: ol.adam().update(jnp.zeros(2), ol.sgd(0.1).init(jnp.zeros(2))),
        "update",
        ValueError,
        r"state from another optimizer",
    ),
    ErrorCase(
        "set_unknown_hyperparam",
        lambda: ol.set_hyperparams(ol.sgd(0.1).init(jnp.zeros(2)), momentum=0.9),
        "set",
        ValueError,
        r"unknown hyperparameter\(s\) \['momentum'\]",
    ),
    ErrorCase(
        "set_wrong_shape",
        lambda: ol.set_hyperparams(ol.sgd(0.1).init(jnp.zeros(2)), learning_rate=jnp.ones(2)),
        "set",
        ValueError,
        r"'learning_rate' must have shape \(\)",
    ),
    ErrorCase(
        "set_negative_lr",
        lambda: ol.set_hyperparams(ol.adam().init(jnp.zeros(2)), learning_rate=-0.1),
        "set",
        ValueError,
        r"^Invalid learning rate: -0.1$",
    ),
    ErrorCase(
        "set_beta_out_of_range",
        lambda: ol.set_hyperparams(ol.adam().init(jnp.zeros(2)), b2=1.0),
        "set",
        ValueError,
        r"^Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "set_nan",
        lambda: ol.set_hyperparams(
            ol.sgd(0.1, momentum=0.9).init(jnp.zeros(2)), momentum=float("nan")
        ),
        "set",
        ValueError,
        r"'momentum' is NaN",
    ),
    ErrorCase(
        "chain_not_a_transform",
        lambda: ol.chain(ol.sgd(0.1), 3),
        "construct",
        TypeError,
        r"chain: argument 1 is int",
    ),
    # Attributes named init and update that cannot be called are not a transformation:
    # every function that takes one says so when it is built, naming the argument.
    *[
        ErrorCase(
            f"{name}_init_not_callable",
            build,
            "construct",
            TypeError,
            rf"^{message} is SimpleNamespace, not a gradient transformation",
        )
        for name, build, message in [
            ("chain", lambda: ol.chain(ol.sgd(0.1), _NOT_CALLABLE), "chain: argument 1"),
            ("named_chain", lambda: ol.named_chain(("a", _NOT_CALLABLE)), "named_chain: 'a'"),
            ("masked", lambda: ol.masked(_NOT_CALLABLE, {"w": True}), "masked: inner"),
            ("accumulate", lambda: ol.accumulate(_NOT_CALLABLE, every=2), "accumulate: opt"),
            (
                "lookahead",
                lambda: ol.lookahead(_NOT_CALLABLE, 5, 0.5),
                "lookahead: fast_optimizer",
            ),
            ("monitor", lambda: ol.monitor(_NOT_CALLABLE), "monitor: inner"),
            ("skip_nonfinite", lambda: ol.skip_nonfinite(_NOT_CALLABLE), "skip_nonfinite: inner"),
        ]
    ],
]


def _update(tx, params, grads):
    return tx.update(grads, tx.init(params), params)
