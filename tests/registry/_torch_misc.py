"""Registry entries for rprop, asgd, sparse_adam, adafactor/torch_adafactor and muon."""

import jax.numpy as jnp

import optimlab as ol

from ._types import Case, ErrorCase

CASES = [
    # optax's rule (the default) moves by the previous step's update, so it zigzags
    # longer along Rosenbrock's valley: within 1e-2 after 10000 steps (4.6e-2 after
    # 3000, where torch's rule is within 4.4e-3).
    Case(
        "rprop",
        lambda: ol.rprop(0.05),
        tags=("optax",),
        complex_ok=True,
        rosenbrock=(lambda: ol.rprop(1e-3), 10000, 1e-2),
    ),
    Case(
        "rprop_torch",
        lambda: ol.rprop(0.05, delayed_update=False),
        tags=("torch",),
        complex_ok=True,
        rosenbrock=(lambda: ol.rprop(1e-3, delayed_update=False), 3000, 1e-2),
    ),
    Case(
        "rprop_maximize",
        lambda: ol.chain(
            ol.scale(-1.0),
            ol.rprop(
                0.05,
                eta_minus=0.3,
                eta_plus=1.5,
                min_step_size=1e-4,
                max_step_size=1.0,
                delayed_update=False,
                maximize=True,
            ),
        ),
        tags=("torch",),
        complex_ok=True,
    ),
    # lambd = 0: no decay term, so a zero gradient leaves the params exactly in place.
    Case(
        "asgd", lambda: ol.asgd(0.2, lambd=0.0), tags=("torch",), complex_ok=True, needs_params=True
    ),
    # The decay term (1 - lambd * eta) and the L2 penalty move the params even
    # when the gradient is zero.
    Case(
        "asgd_wd_maximize",
        lambda: ol.chain(
            ol.scale(-1.0), ol.asgd(0.2, lambd=1e-2, t0=10.0, weight_decay=1e-3, maximize=True)
        ),
        tags=("torch",),
        complex_ok=True,
        needs_params=True,
        zero_grad_zero_update=False,
    ),
    Case(
        "sparse_adam",
        lambda: ol.sparse_adam(0.05),
        tags=("torch",),
        rosenbrock=(lambda: ol.sparse_adam(0.02), 5000, 1e-2),
    ),
    Case(
        "sparse_adam_maximize_bf16_moments",
        lambda: ol.chain(
            ol.scale(-1.0),
            ol.sparse_adam(0.05, maximize=True, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        ),
        tags=("torch", "dtype"),
    ),
    Case(
        "adafactor",
        lambda: ol.adafactor(0.1, min_dim_size_to_factor=2),
        tags=("optax",),
        needs_params=True,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
    # Momentum keeps moving after the gradient vanishes; weight decay moves params too.
    Case(
        "adafactor_momentum_wd",
        lambda: ol.adafactor(
            0.1,
            min_dim_size_to_factor=2,
            momentum=0.5,
            weight_decay_rate=1e-4,
            clipping_threshold=None,
        ),
        tags=("optax",),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
    ),
    Case(
        "torch_adafactor",
        lambda: ol.torch_adafactor(0.1),
        tags=("torch",),
        needs_params=True,
        quadratic_tol=3e-2,
    ),
    # Decoupled weight decay shrinks the params even at zero gradient.
    Case(
        "torch_adafactor_wd_maximize",
        lambda: ol.chain(
            ol.scale(-1.0), ol.torch_adafactor(0.1, eps1=1e-3, weight_decay=1e-3, maximize=True)
        ),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
    ),
    # Orthogonalised steps have a fixed size, so the matrix leaf hovers at a distance
    # of the order of the learning rate instead of converging to zero.
    Case(
        "muon",
        lambda: ol.torch_muon(0.02, weight_decay=0.0, adam_b1=0.8),
        tags=("torch",),
        quadratic_tol=0.15,
    ),
    # Decoupled weight decay (matrix and Adam leaves) moves params at zero gradient.
    Case(
        "muon_plain_wd",
        lambda: ol.torch_muon(
            0.05,
            weight_decay=1e-2,
            nesterov=False,
            momentum=0.5,
            adjust_lr_fn="match_rms_adamw",
            adam_weight_decay=1e-2,
            ns_dtype=jnp.float32,
        ),
        tags=("torch",),
        needs_params=True,
        zero_grad_zero_update=False,
        quadratic_tol=5e-2,
    ),
]


def _update(tx, params, grads):
    return tx.update(grads, tx.init(params), params)


def _e(id_, fn, exc, match, stage="construct"):
    return ErrorCase(id_, fn, stage, exc, match)


ERROR_CASES = [
    # rprop
    _e(
        "rprop_negative_lr",
        lambda: ol.rprop(-0.1),
        ValueError,
        r"^rprop: Invalid learning rate: -0.1$",
    ),
    _e(
        "rprop_eta_minus_too_big",
        lambda: ol.rprop(eta_minus=1.0),
        ValueError,
        r"^rprop: Invalid eta values: 1.0, 1.2$",
    ),
    _e(
        "rprop_eta_minus_zero",
        lambda: ol.rprop(eta_minus=0.0),
        ValueError,
        r"^rprop: Invalid eta values: 0.0, 1.2$",
    ),
    _e(
        "rprop_eta_plus_too_small",
        lambda: ol.rprop(eta_plus=1.0),
        ValueError,
        r"^rprop: Invalid eta values: 0.5, 1.0$",
    ),
    _e(
        "rprop_negative_min_step",
        lambda: ol.rprop(min_step_size=-1.0),
        ValueError,
        r"^rprop: Invalid step_sizes values: -1.0, 50.0$",
    ),
    _e(
        "rprop_inverted_step_sizes",
        lambda: ol.rprop(min_step_size=2.0, max_step_size=1.0),
        ValueError,
        r"^rprop: Invalid step_sizes values: 2.0, 1.0$",
    ),
    _e(
        "rprop_update_shape",
        lambda: _update(ol.rprop(), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        ValueError,
        r"scale_by_rprop: the update at \['a'\] has shape \(3,\)",
        "update",
    ),
    # asgd
    _e(
        "asgd_negative_lr",
        lambda: ol.asgd(-1.0),
        ValueError,
        r"^asgd: Invalid learning rate: -1.0$",
    ),
    _e(
        "asgd_negative_wd",
        lambda: ol.asgd(weight_decay=-0.5),
        ValueError,
        r"^asgd: Invalid weight_decay value: -0.5$",
    ),
    _e(
        "asgd_params_none",
        lambda: ol.asgd().update(jnp.zeros(2), ol.asgd().init(jnp.zeros(2))),
        ValueError,
        r"scale_by_asgd: params is None",
        "update",
    ),
    _e(
        "asgd_averaged_params_wrong_state",
        lambda: ol.asgd_averaged_params(ol.sgd(0.1).init(jnp.zeros(2))),
        ValueError,
        r"holds no ScaleByAsgdState",
        "update",
    ),
    # sparse_adam
    _e(
        "sparse_adam_zero_lr",
        lambda: ol.sparse_adam(0.0),
        ValueError,
        r"^sparse_adam: Invalid learning rate: 0.0$",
    ),
    _e(
        "sparse_adam_zero_eps",
        lambda: ol.sparse_adam(eps=0.0),
        ValueError,
        r"^sparse_adam: Invalid epsilon value: 0.0$",
    ),
    _e(
        "sparse_adam_beta1",
        lambda: ol.sparse_adam(b1=1.0),
        ValueError,
        r"^sparse_adam: Invalid beta parameter at index 0: 1.0$",
    ),
    _e(
        "sparse_adam_beta2",
        lambda: ol.sparse_adam(b2=-0.5),
        ValueError,
        r"^sparse_adam: Invalid beta parameter at index 1: -0.5$",
    ),
    _e(
        "sparse_adam_complex",
        lambda: ol.sparse_adam().init(jnp.zeros(2, jnp.complex64)),
        TypeError,
        r"sparse_adam does not support complex params",
        "init",
    ),
    # torch_adafactor (torch's wording)
    _e(
        "torch_adafactor_negative_lr",
        lambda: ol.torch_adafactor(-1.0),
        ValueError,
        r"^torch_adafactor: Learning rate should be >= 0 but is: -1.0$",
    ),
    _e(
        "torch_adafactor_beta2_decay",
        lambda: ol.torch_adafactor(beta2_decay=0.5),
        ValueError,
        r"^torch_adafactor: beta2_decay should be <= 0 but is: 0.5$",
    ),
    _e(
        "torch_adafactor_eps1",
        lambda: ol.torch_adafactor(eps1=-1e-3),
        ValueError,
        r"^torch_adafactor: epsilon1 should be >= 0 but is: -0.001$",
    ),
    _e(
        "torch_adafactor_eps2",
        lambda: ol.torch_adafactor(eps2=-1e-3),
        ValueError,
        r"^torch_adafactor: epsilon2 should be >= 0 but is: -0.001$",
    ),
    _e(
        "torch_adafactor_d",
        lambda: ol.torch_adafactor(d=0.5),
        ValueError,
        r"^torch_adafactor: Clipping threshold d should be >= 1 but is: 0.5$",
    ),
    _e(
        "torch_adafactor_wd",
        lambda: ol.torch_adafactor(weight_decay=-0.1),
        ValueError,
        r"^torch_adafactor: weight_decay should be >= 0 but is: -0.1$",
    ),
    _e(
        "torch_adafactor_params_none",
        lambda: ol.torch_adafactor().update(jnp.zeros(2), ol.torch_adafactor().init(jnp.zeros(2))),
        ValueError,
        r"scale_by_torch_adafactor: params is None",
        "update",
    ),
    _e(
        "torch_adafactor_complex",
        lambda: ol.torch_adafactor().init(jnp.zeros(2, jnp.complex64)),
        TypeError,
        r"does not support complex params",
        "init",
    ),
    # adafactor (classic)
    _e(
        "adafactor_negative_lr",
        lambda: ol.adafactor(-0.1),
        ValueError,
        r"^adafactor: Invalid learning rate: -0.1$",
    ),
    _e(
        "adafactor_clipping_threshold",
        lambda: ol.adafactor(clipping_threshold=0.5),
        ValueError,
        r"^adafactor: Invalid clipping_threshold value: 0.5 \(must be >= 1\)$",
    ),
    _e(
        "adafactor_momentum",
        lambda: ol.adafactor(momentum=1.5),
        ValueError,
        r"^adafactor: Invalid momentum value: 1.5",
    ),
    _e(
        "adafactor_wd",
        lambda: ol.adafactor(weight_decay_rate=-1.0),
        ValueError,
        r"^adafactor: Invalid weight_decay_rate value: -1.0$",
    ),
    _e(
        "adafactor_eps",
        lambda: ol.adafactor(eps=-1.0),
        ValueError,
        r"^adafactor: Invalid epsilon value: -1.0",
    ),
    _e(
        "adafactor_decay_rate",
        lambda: ol.adafactor(decay_rate=-0.8),
        ValueError,
        r"^adafactor: Invalid decay_rate value: -0.8",
    ),
    _e(
        "adafactor_params_none",
        lambda: ol.adafactor(0.1).update(jnp.zeros(2), ol.adafactor(0.1).init(jnp.zeros(2))),
        ValueError,
        r"adafactor: params is None",
        "update",
    ),
    # muon (torch's wording)
    _e(
        "muon_negative_lr",
        lambda: ol.torch_muon(-1.0),
        ValueError,
        r"^torch_muon: Learning rate should be >= 0 but is: -1.0$",
    ),
    _e(
        "muon_negative_momentum",
        lambda: ol.torch_muon(momentum=-0.5),
        ValueError,
        r"^torch_muon: momentum should be >= 0 but is: -0.5$",
    ),
    _e(
        "muon_negative_wd",
        lambda: ol.torch_muon(weight_decay=-0.1),
        ValueError,
        r"^torch_muon: weight decay should be >= 0 but is: -0.1$",
    ),
    _e(
        "muon_adjust_lr_fn",
        lambda: ol.torch_muon(adjust_lr_fn="spectral"),
        ValueError,
        r"^torch_muon: Adjust learning rate function spectral is not supported$",
    ),
    _e(
        "muon_ns_steps",
        lambda: ol.torch_muon(ns_steps=100),
        ValueError,
        r"^torch_muon: Number of steps must be less than 100 for computational efficiency$",
    ),
    _e(
        "muon_ns_coeffs",
        lambda: ol.torch_muon(ns_coeffs=(1.0, 2.0)),
        ValueError,
        r"^torch_muon: Coefficients must be a tuple of exactly 3 values$",
    ),
    _e(
        "muon_adam_beta",
        lambda: ol.torch_muon(adam_b2=1.0),
        ValueError,
        r"^torch_muon: Invalid beta parameter at index 1: 1.0$",
    ),
    _e(
        "muon_adam_wd",
        lambda: ol.torch_muon(adam_weight_decay=-1.0),
        ValueError,
        r"^torch_muon: Invalid weight_decay value: -1.0$",
    ),
    _e(
        "muon_complex",
        lambda: ol.torch_muon().init(jnp.zeros((2, 2), jnp.complex64)),
        TypeError,
        r"muon does not support complex params",
        "init",
    ),
    _e(
        "newton_schulz_not_2d",
        lambda: ol.newton_schulz(jnp.ones(3)),
        ValueError,
        r"newton_schulz: expected a 2-D matrix",
        "update",
    ),
    _e(
        "muon_update_structure",
        lambda: _update(
            ol.torch_muon(),
            {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)},
            {"w": jnp.zeros((2, 2)), "c": jnp.zeros(2)},
        ),
        ValueError,
        r"scale_by_torch_muon: .*\['c'\].*\['b'\]",
        "update",
    ),
]
