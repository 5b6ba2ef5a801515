"""Registry entries for torch's adaptive optimizers: adamax(w), nadam(w), radam, adagrad,
adadelta and rmsprop, with their primitives."""

import jax.numpy as jnp

import optimlab as ol

from ._types import Case, ErrorCase, after_factory

CASES = [
    Case(
        "adamax",
        lambda: ol.adamax(0.05),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.adamax(0.05), 5000, 1e-2),
    ),
    Case(
        "adamax_wd_maximize",
        lambda: ol.chain(ol.scale(-1.0), ol.adamax(0.05, weight_decay=1e-3, maximize=True)),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "adamaxw",
        lambda: ol.adamaxw(0.05),
        tags=("optax",),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
        rosenbrock=(lambda: ol.adamaxw(0.02, weight_decay=1e-4), 5000, 1e-2),
    ),
    Case(
        "nadam",
        lambda: ol.nadam(0.05),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.nadam(0.01), 5000, 1e-2),
    ),
    Case(
        "nadam_decoupled_maximize",
        lambda: ol.chain(
            ol.scale(-1.0),
            ol.nadam(0.05, weight_decay=1e-3, decoupled_weight_decay=True, maximize=True),
        ),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "nadamw",
        lambda: ol.nadamw(0.05),
        tags=("torch", "optax"),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
        rosenbrock=(lambda: ol.nadamw(0.01, weight_decay=1e-4), 5000, 1e-2),
    ),
    Case(
        "nadam_bf16_moments",
        lambda: ol.nadam(0.05, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        tags=("dtype",),
    ),
    # RAdam's first steps (rho_t <= 5) are unnormalised momentum steps, so a
    # large gradient (about 200 at Rosenbrock's start) needs a small learning rate.
    Case(
        "radam",
        lambda: ol.radam(0.1),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.radam(3e-3), 20000, 1e-2),
    ),
    Case(
        "radam_decoupled_wd",
        lambda: ol.radam(0.1, weight_decay=1e-3, decoupled_weight_decay=True),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "adagrad",
        lambda: ol.adagrad(0.5),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.adagrad(0.2), 20000, 1e-2),
    ),
    Case(
        "adagrad_lr_decay_wd",
        lambda: ol.adagrad(0.5, initial_accumulator_value=0.1, lr_decay=1e-3, weight_decay=1e-3),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    # Adadelta's unit-free step keeps oscillating across Rosenbrock's valley: it
    # settles about 3e-2 from the optimum, hence the looser tolerance.
    Case(
        "adadelta",
        lambda: ol.adadelta(1.0, eps=1e-3),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(lambda: ol.adadelta(0.1, rho=0.999, eps=1e-6), 50000, 5e-2),
    ),
    Case(
        "adadelta_wd_maximize",
        lambda: ol.chain(
            ol.scale(-1.0), ol.adadelta(1.0, eps=1e-3, weight_decay=1e-3, maximize=True)
        ),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "rmsprop",
        lambda: ol.rmsprop(0.02, decay=0.99, eps_in_sqrt=False),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(
            lambda: ol.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False, momentum=0.9),
            5000,
            1e-2,
        ),
    ),
    Case(
        "rmsprop_centered_momentum",
        lambda: ol.rmsprop(0.01, decay=0.99, eps_in_sqrt=False, momentum=0.9, centered=True),
        tags=("torch", "optax"),
        complex_ok=True,
        rosenbrock=(
            lambda: ol.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False, momentum=0.9, centered=True),
            5000,
            1e-2,
        ),
    ),
    Case(
        "rmsprop_wd_maximize",
        lambda: ol.chain(
            ol.scale(-1.0),
            ol.rmsprop(0.02, decay=0.99, eps_in_sqrt=False, weight_decay=1e-3, maximize=True),
        ),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "rmsprop_bf16_accumulators",
        # lr 0.005: at 0.01 the normalised steps oscillate about 0.01 from the optimum
        # (float32 accumulators too), the tolerance itself, so rounding decided the test.
        lambda: ol.rmsprop(0.005, momentum=0.5, centered=True, accumulator_dtype=jnp.bfloat16),
        tags=("dtype",),
    ),
]


def _err(cid, fn, match, exc=ValueError, stage="construct"):
    return ErrorCase(cid, fn, stage, exc, match)


def _torch(cid, fn, match):
    """A construction refused with torch's message, after the factory's name."""
    return _err(cid, fn, after_factory(fn, match))


def _init_complex(tx):
    return tx.init({"z": jnp.ones(2, jnp.complex64)})


def _update(tx, params, grads):
    return tx.update(grads, tx.init(params), params)


ERROR_CASES = [
    # adamax / adamaxw: torch.optim.Adamax's checks and wording.
    _torch("adamax_lr", lambda: ol.adamax(-1e-3), r"^Invalid learning rate: -0.001$"),
    _torch("adamax_eps", lambda: ol.adamax(eps=-1.0), r"^Invalid epsilon value: -1.0$"),
    _torch("adamax_beta1", lambda: ol.adamax(b1=1.0), r"^Invalid beta parameter at index 0: 1.0$"),
    _torch(
        "adamax_beta2", lambda: ol.adamax(b2=-0.5), r"^Invalid beta parameter at index 1: -0.5$"
    ),
    _torch(
        "adamax_wd", lambda: ol.adamax(weight_decay=-0.1), r"^Invalid weight_decay value: -0.1$"
    ),
    _torch(
        "adamaxw_wd", lambda: ol.adamaxw(weight_decay=-0.1), r"^Invalid weight_decay value: -0.1$"
    ),
    _torch("adamaxw_lr", lambda: ol.adamaxw(float("nan")), r"^Invalid learning rate: nan$"),
    _torch(
        "scale_by_adamax_beta1",
        lambda: ol.scale_by_adamax(b1=2.0),
        r"^Invalid beta parameter at index 0: 2.0$",
    ),
    _err(
        "adamax_real_mu_dtype_complex_params",
        lambda: _init_complex(ol.adamax(mu_dtype=jnp.float32)),
        r"scale_by_adamax does not support complex params .* with a real mu_dtype",
        TypeError,
        "init",
    ),
    # nadam / nadamw: torch.optim.NAdam's checks and wording.
    _torch("nadam_lr", lambda: ol.nadam(-1.0), r"^Invalid learning rate: -1.0$"),
    _torch("nadam_eps", lambda: ol.nadam(eps=-1e-8), r"^Invalid epsilon value: -1e-08$"),
    _torch("nadam_beta1", lambda: ol.nadam(b1=1.5), r"^Invalid beta parameter at index 0: 1.5$"),
    _torch("nadam_beta2", lambda: ol.nadam(b2=1.0), r"^Invalid beta parameter at index 1: 1.0$"),
    _torch("nadam_wd", lambda: ol.nadam(weight_decay=-1.0), r"^Invalid weight_decay value: -1.0$"),
    _torch(
        "nadam_momentum_decay",
        lambda: ol.nadam(momentum_decay=-0.004),
        r"^Invalid momentum_decay value: -0.004$",
    ),
    _err(
        "nadam_mask_without_decoupled",
        lambda: ol.nadam(weight_decay=0.1, mask={"a": True}),
        r"mask applies to decoupled weight decay only",
    ),
    _torch(
        "nadamw_wd", lambda: ol.nadamw(weight_decay=-0.01), r"^Invalid weight_decay value: -0.01$"
    ),
    _torch(
        "nadamw_momentum_decay",
        lambda: ol.nadamw(momentum_decay=float("nan")),
        r"^Invalid momentum_decay value: nan$",
    ),
    _torch(
        "scale_by_nadam_momentum_decay",
        lambda: ol.scale_by_nadam(momentum_decay=-1.0),
        r"^Invalid momentum_decay value: -1.0$",
    ),
    _err(
        "nadam_real_nu_dtype_complex_params",
        lambda: _init_complex(ol.nadam(momentum_decay=4e-3, nu_dtype=jnp.float32)),
        r"scale_by_nadam does not support complex params .* with a real nu_dtype",
        TypeError,
        "init",
    ),
    _err(
        "nadam_update_structure",
        lambda: _update(ol.nadam(momentum_decay=4e-3), {"a": jnp.zeros(2)}, {"b": jnp.zeros(2)}),
        r"^scale_by_nadam: .*\['b'\].*\['a'\]",
        stage="update",
    ),
    # radam: torch.optim.RAdam's checks and wording.
    _torch("radam_lr", lambda: ol.radam(-0.5), r"^Invalid learning rate: -0.5$"),
    _torch("radam_eps", lambda: ol.radam(eps=-1.0), r"^Invalid epsilon value: -1.0$"),
    _torch("radam_beta1", lambda: ol.radam(b1=-0.1), r"^Invalid beta parameter at index 0: -0.1$"),
    _torch("radam_beta2", lambda: ol.radam(b2=1.1), r"^Invalid beta parameter at index 1: 1.1$"),
    _torch("radam_wd", lambda: ol.radam(weight_decay=-2.0), r"^Invalid weight_decay value: -2.0$"),
    _err(
        "radam_mask_without_decoupled",
        lambda: ol.radam(weight_decay=0.1, mask={"a": True}),
        r"mask applies to decoupled weight decay only",
    ),
    _err(
        "radam_update_shape",
        lambda: _update(ol.radam(), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        r"scale_by_radam: the update at \['a'\] has shape \(3,\)",
        stage="update",
    ),
    # adagrad: torch.optim.Adagrad's checks and wording.
    _torch("adagrad_lr", lambda: ol.adagrad(-0.01), r"^Invalid learning rate: -0.01$"),
    _torch(
        "adagrad_lr_decay", lambda: ol.adagrad(lr_decay=-0.1), r"^Invalid lr_decay value: -0.1$"
    ),
    _torch(
        "adagrad_wd", lambda: ol.adagrad(weight_decay=-0.1), r"^Invalid weight_decay value: -0.1$"
    ),
    _torch(
        "adagrad_initial_accumulator_value",
        lambda: ol.adagrad(initial_accumulator_value=-1.0),
        r"^Invalid initial_accumulator_value value: -1.0$",
    ),
    _torch("adagrad_eps", lambda: ol.adagrad(eps=-1e-10), r"^Invalid epsilon value: -1e-10$"),
    _torch(
        "scale_by_adagrad_initial_accumulator_value",
        lambda: ol.scale_by_adagrad(initial_accumulator_value=-0.5),
        r"^Invalid initial_accumulator_value value: -0.5$",
    ),
    _err(
        "adagrad_real_accumulator_complex_params",
        lambda: _init_complex(ol.adagrad(accumulator_dtype=jnp.float32)),
        r"scale_by_adagrad does not support complex params .* with a real accumulator_dtype",
        TypeError,
        "init",
    ),
    # adadelta: torch.optim.Adadelta's checks and wording.
    _torch("adadelta_lr", lambda: ol.adadelta(-1.0), r"^Invalid learning rate: -1.0$"),
    _torch("adadelta_rho_above_one", lambda: ol.adadelta(rho=1.5), r"^Invalid rho value: 1.5$"),
    _torch("adadelta_rho_negative", lambda: ol.adadelta(rho=-0.1), r"^Invalid rho value: -0.1$"),
    _torch("adadelta_eps", lambda: ol.adadelta(eps=-1e-6), r"^Invalid epsilon value: -1e-06$"),
    _torch(
        "adadelta_wd", lambda: ol.adadelta(weight_decay=-1.0), r"^Invalid weight_decay value: -1.0$"
    ),
    _torch(
        "scale_by_adadelta_rho", lambda: ol.scale_by_adadelta(rho=2.0), r"^Invalid rho value: 2.0$"
    ),
    # rmsprop: torch.optim.RMSprop's checks and wording (torch calls decay alpha).
    _torch("rmsprop_lr", lambda: ol.rmsprop(-0.01), r"^Invalid learning rate: -0.01$"),
    _torch("rmsprop_eps", lambda: ol.rmsprop(eps=-1.0), r"^Invalid epsilon value: -1.0$"),
    _torch(
        "rmsprop_momentum", lambda: ol.rmsprop(momentum=-0.9), r"^Invalid momentum value: -0.9$"
    ),
    _torch(
        "rmsprop_wd", lambda: ol.rmsprop(weight_decay=-0.1), r"^Invalid weight_decay value: -0.1$"
    ),
    _torch("rmsprop_alpha", lambda: ol.rmsprop(decay=-0.99), r"^Invalid alpha value: -0.99$"),
    _torch(
        "scale_by_rmsprop_alpha",
        lambda: ol.scale_by_rmsprop(decay=-1.0),
        r"^Invalid alpha value: -1.0$",
    ),
    _err(
        "rmsprop_update_structure",
        lambda: _update(
            ol.rmsprop(centered=True), {"a": jnp.zeros(2)}, {"a": jnp.zeros(2), "b": jnp.zeros(1)}
        ),
        r"^scale_by_rmsprop: the updates' tree structure differs",
        stage="update",
    ),
]
