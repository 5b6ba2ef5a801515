"""Registry entries for optax's aliases that torch lacks (lion, lamb, lars, adabelief...)."""

import jax
import jax.numpy as jnp

import optimlab as ol
from tests import problems

from ._types import Case, ErrorCase, after_factory


def _decay(lr, rate):
    """lr * exp(-rate * t): sign-like steps have a fixed size and need a decaying lr to settle."""
    return lambda t: lr * jnp.exp(-rate * jnp.asarray(t).astype(jnp.float32))


def _loss(params):
    if isinstance(params, dict) and {"a", "b", "d"} <= set(params):
        return problems.quadratic_loss({k: params[k] for k in ("a", "b", "d")})
    # Other test trees (mixed low precision, complex): 0.5 * |p|^2, whose descent
    # direction is p, accumulated in float32 so bf16 and f16 leaves can be summed.
    return sum(0.5 * jnp.sum(jnp.abs(p).astype(jnp.float32) ** 2) for p in jax.tree.leaves(params))


def _with_value(tx):
    """polyak_sgd needs the loss: pass value=loss(params) on every update."""

    def update(updates, state, params=None, **extra):
        return tx.update(updates, state, params, **{"value": _loss(params), **extra})

    return ol.GradientTransformation(tx.init, update)


CASES = [
    Case(
        "lion",
        lambda: ol.lion(_decay(0.2, 0.02), weight_decay=0.0),
        tags=("optax",),
        complex_ok=True,
    ),
    Case("sign_sgd", lambda: ol.sign_sgd(_decay(0.1, 0.015)), tags=("optax",)),
    Case("signum", lambda: ol.signum(_decay(0.1, 0.015)), tags=("optax",)),
    Case("lamb", lambda: ol.lamb(0.05), tags=("optax",), needs_params=True, complex_ok=True),
    Case(
        "lars",
        lambda: ol.lars(1.0, trust_coefficient=0.02),
        tags=("optax",),
        needs_params=True,
        complex_ok=True,
    ),
    # The L2 term is added to the (zero) gradient, so the update is not zero.
    Case(
        "lars_nesterov_wd",
        lambda: ol.lars(1.0, weight_decay=1e-4, trust_coefficient=0.02, nesterov=True),
        tags=("optax",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    Case(
        "adabelief",
        lambda: ol.adabelief(0.05),
        tags=("optax",),
        rosenbrock=(lambda: ol.adabelief(0.02), 5000, 1e-2),
        complex_ok=True,
    ),
    Case(
        "adabelief_nesterov",
        lambda: ol.adabelief(0.05, nesterov=True),
        tags=("optax",),
        complex_ok=True,
    ),
    # Both moments start at 1e-6 (optax's initial_accumulator_value), so a zero gradient
    # still gives a tiny update m_hat / (sqrt(v_hat) + eps) != 0.
    Case(
        "yogi",
        lambda: ol.yogi(0.05),
        tags=("optax",),
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    # b1=0.9: the default 0.98 averages too slowly to settle within 300 steps.
    Case("adan", lambda: ol.adan(0.05, b1=0.9), tags=("optax",), complex_ok=True),
    Case("novograd", lambda: ol.novograd(_decay(0.05, 0.02)), tags=("optax",), complex_ok=True),
    Case("sm3", lambda: ol.sm3(0.5), tags=("optax",)),
    # Fromage shrinks the params by 1/sqrt(1 + lr^2) at every step, whatever the gradient.
    Case(
        "fromage",
        lambda: ol.fromage(0.1),
        tags=("optax",),
        needs_params=True,
        zero_grad_zero_update=False,
        complex_ok=True,
    ),
    # Noise is added to the gradient by design.
    Case(
        "noisy_sgd",
        lambda: ol.noisy_sgd(0.1, eta=1e-4),
        tags=("optax",),
        zero_grad_zero_update=False,
        quadratic_tol=3e-2,
        complex_ok=True,
    ),
    Case(
        "polyak_sgd",
        lambda: _with_value(ol.polyak_sgd(max_learning_rate=1.0)),
        lr_name="max_learning_rate",
        tags=("optax",),
        needs_params=True,
        complex_ok=True,
        extra_args=lambda p: {"value": _loss(p)},
    ),
    Case(
        "optimistic_gradient_descent",
        lambda: ol.optimistic_gradient_descent(0.1),
        tags=("optax",),
        complex_ok=True,
    ),
    Case("optimistic_adam", lambda: ol.optimistic_adam(0.05), tags=("optax",), complex_ok=True),
    Case(
        "optimistic_adam_v2",
        lambda: ol.optimistic_adam_v2(0.05),
        tags=("optax",),
        complex_ok=True,
    ),
]


def _update(tx, params, grads, **extra):
    return tx.update(grads, tx.init(params), params, **extra)


def _e(id_, fn, match, exc=ValueError, stage="construct"):
    if match.startswith("^{f}: "):  # a shared message, after the name of the factory called
        match = after_factory(fn, "^" + match[len("^{f}: ") :])
    return ErrorCase(id_, fn, stage, exc, match)


_LR = r"^{f}: Invalid learning rate: -0.1$"
_B0 = r"^{f}: Invalid beta parameter at index 0: 1.0$"
_B1 = r"^{f}: Invalid beta parameter at index 1: -0.5$"
_B2 = r"^{f}: Invalid beta parameter at index 2: 1.5$"
_EPS = r"^{f}: Invalid epsilon value: -1e-08$"
_EPS_ROOT = r"^{f}: Invalid eps_root value: -1.0 \(must be >= 0\)$"
_WD = r"^{f}: Invalid weight_decay value: -0.01$"

ERROR_CASES = [
    # lion
    _e("lion_lr", lambda: ol.lion(-0.1), _LR),
    _e("lion_b1", lambda: ol.lion(0.1, b1=1.0), _B0),
    _e("lion_b2", lambda: ol.lion(0.1, b2=-0.5), _B1),
    _e("lion_wd", lambda: ol.lion(0.1, weight_decay=-0.01), _WD),
    _e(
        "lion_complex",
        # complex leaves are optimized as optax does; a real momentum dtype cannot hold them
        lambda: ol.lion(0.1, mu_dtype=jnp.float32).init(jnp.ones(2, jnp.complex64)),
        r"scale_by_lion does not support complex",
        TypeError,
        "init",
    ),
    # sign_sgd / signum
    _e("sign_sgd_lr", lambda: ol.sign_sgd(-0.1), _LR),
    _e("signum_lr", lambda: ol.signum(-0.1), _LR),
    _e(
        "signum_beta",
        lambda: ol.signum(0.1, beta=1.0),
        r"^signum: Invalid beta value: 1.0 \(must be in \[0.0, 1.0\)\)$",
    ),
    _e(
        "signum_update_structure",
        lambda: _update(ol.signum(0.1), {"a": jnp.zeros(2)}, {"b": jnp.zeros(2)}),
        r"scale_by_signum: .*\['b'\].*\['a'\]",
        stage="update",
    ),
    # lamb
    _e("lamb_lr", lambda: ol.lamb(-0.1), _LR),
    _e("lamb_b1", lambda: ol.lamb(0.1, b1=1.0), _B0),
    _e("lamb_b2", lambda: ol.lamb(0.1, b2=-0.5), _B1),
    _e("lamb_eps", lambda: ol.lamb(0.1, eps=-1e-8), _EPS),
    _e("lamb_eps_root", lambda: ol.lamb(0.1, eps_root=-1.0), _EPS_ROOT),
    _e("lamb_wd", lambda: ol.lamb(0.1, weight_decay=-0.01), _WD),
    _e(
        "lamb_params_none",
        lambda: ol.lamb(0.1).update(jnp.ones(2), ol.lamb(0.1).init(jnp.ones(2))),
        # lamb carries optax's weight_decay=0.0, whose decay term needs params first
        r"add_decayed_weights: params is None",
        stage="update",
    ),
    # lars and scale_by_trust_ratio
    _e("lars_lr", lambda: ol.lars(-0.1), _LR),
    _e("lars_wd", lambda: ol.lars(0.1, weight_decay=-0.01), _WD),
    _e(
        "lars_trust_coefficient",
        lambda: ol.lars(0.1, trust_coefficient=0.0),
        r"^lars: Invalid trust_coefficient value: 0.0 \(must be > 0\)$",
    ),
    _e("lars_eps", lambda: ol.lars(0.1, eps=-1e-8), _EPS),
    _e(
        "lars_momentum",
        lambda: ol.lars(0.1, momentum=-0.5),
        r"^lars: Invalid momentum value: -0.5$",
    ),
    _e(
        "lars_nesterov_without_momentum",
        lambda: ol.lars(0.1, momentum=0.0, nesterov=True),
        r"^lars: Nesterov momentum requires a momentum$",
    ),
    _e(
        "trust_ratio_min_norm",
        lambda: ol.scale_by_trust_ratio(min_norm=-1.0),
        r"^scale_by_trust_ratio: Invalid min_norm value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "trust_ratio_shape",
        lambda: _update(ol.scale_by_trust_ratio(), {"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}),
        r"scale_by_trust_ratio: the update at \['a'\] has shape \(3,\)",
        stage="update",
    ),
    # adabelief
    _e("adabelief_lr", lambda: ol.adabelief(-0.1), _LR),
    _e("adabelief_b1", lambda: ol.adabelief(0.1, b1=1.0), _B0),
    _e("adabelief_b2", lambda: ol.adabelief(0.1, b2=-0.5), _B1),
    _e("adabelief_eps", lambda: ol.adabelief(0.1, eps=-1e-8), _EPS),
    _e("adabelief_eps_root", lambda: ol.adabelief(0.1, eps_root=-1.0), _EPS_ROOT),
    # yogi
    _e("yogi_lr", lambda: ol.yogi(-0.1), _LR),
    _e("yogi_b1", lambda: ol.yogi(0.1, b1=1.0), _B0),
    _e("yogi_b2", lambda: ol.yogi(0.1, b2=-0.5), _B1),
    _e("yogi_eps", lambda: ol.yogi(0.1, eps=-1e-8), _EPS),
    _e(
        "yogi_initial_accumulator",
        lambda: ol.scale_by_yogi(initial_accumulator_value=-1.0),
        r"^scale_by_yogi: Invalid initial_accumulator_value value: -1.0 \(must be >= 0\)$",
    ),
    # adan
    _e("adan_lr", lambda: ol.adan(-0.1), _LR),
    _e("adan_b1", lambda: ol.adan(0.1, b1=1.0), _B0),
    _e("adan_b2", lambda: ol.adan(0.1, b2=-0.5), _B1),
    _e("adan_b3", lambda: ol.adan(0.1, b3=1.5), _B2),
    _e("adan_eps", lambda: ol.adan(0.1, eps=-1e-8), _EPS),
    _e("adan_eps_root", lambda: ol.adan(0.1, eps_root=-1.0), _EPS_ROOT),
    _e("adan_wd", lambda: ol.adan(0.1, weight_decay=-0.01), _WD),
    # novograd
    _e("novograd_lr", lambda: ol.novograd(-0.1), _LR),
    _e("novograd_b1", lambda: ol.novograd(0.1, b1=1.0), _B0),
    _e("novograd_b2", lambda: ol.novograd(0.1, b2=-0.5), _B1),
    _e("novograd_eps", lambda: ol.novograd(0.1, eps=-1e-8), _EPS),
    _e("novograd_eps_root", lambda: ol.novograd(0.1, eps_root=-1.0), _EPS_ROOT),
    _e("novograd_wd", lambda: ol.novograd(0.1, weight_decay=-0.01), _WD),
    _e(
        "novograd_wd_params_none",
        lambda: ol.novograd(0.1, weight_decay=0.1).update(
            jnp.ones(2), ol.novograd(0.1, weight_decay=0.1).init(jnp.ones(2))
        ),
        r"scale_by_novograd: params is None",
        stage="update",
    ),
    # sm3
    _e("sm3_lr", lambda: ol.sm3(-0.1), _LR),
    _e(
        "sm3_momentum",
        lambda: ol.sm3(0.1, momentum=1.0),
        r"^sm3: Invalid momentum value: 1.0 \(must be in \[0.0, 1.0\)\)$",
    ),
    _e(
        "sm3_b2",
        lambda: ol.scale_by_sm3(b2=1.5),
        r"^scale_by_sm3: Invalid b2 value: 1.5 \(must be in \[0.0, 1.0\]\)$",
    ),
    _e("sm3_eps", lambda: ol.scale_by_sm3(eps=-1e-8), _EPS),
    # fromage
    _e("fromage_lr", lambda: ol.fromage(-0.1), _LR),
    _e(
        "fromage_min_norm",
        lambda: ol.fromage(0.1, min_norm=-1.0),
        r"^fromage: Invalid min_norm value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "fromage_params_none",
        lambda: ol.fromage(0.1).update(jnp.ones(2), ol.fromage(0.1).init(jnp.ones(2))),
        r"params is None",
        stage="update",
    ),
    # noisy_sgd
    _e("noisy_sgd_lr", lambda: ol.noisy_sgd(-0.1), _LR),
    _e(
        "noisy_sgd_eta",
        lambda: ol.noisy_sgd(0.1, eta=-1.0),
        r"^noisy_sgd: Invalid eta value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "noisy_sgd_gamma",
        lambda: ol.noisy_sgd(0.1, gamma=-1.0),
        r"^noisy_sgd: Invalid gamma value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "noisy_sgd_key",
        lambda: ol.noisy_sgd(0.1, key="0"),
        r"^noisy_sgd: key must be an int seed or a jax.random key, got str.$",
        TypeError,
    ),
    # polyak_sgd
    _e(
        "polyak_max_lr",
        lambda: ol.polyak_sgd(max_learning_rate=-1.0),
        r"^polyak_sgd: Invalid max_learning_rate value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "polyak_scaling",
        lambda: ol.polyak_sgd(scaling=-1.0),
        r"^polyak_sgd: Invalid scaling value: -1.0 \(must be >= 0\)$",
    ),
    _e("polyak_eps", lambda: ol.polyak_sgd(eps=-1e-8), _EPS),
    _e(
        "polyak_variant",
        lambda: ol.polyak_sgd(variant="spsx"),
        r"^polyak_sgd: Invalid variant value: 'spsx' \(must be one of \('sps', 'sps\+'\)\)$",
    ),
    _e(
        "polyak_missing_value",
        lambda: _update(ol.polyak_sgd(), jnp.ones(2), jnp.ones(2)),
        r"scale_by_polyak: the loss value is missing; pass it as update\(.*value=loss\)",
        stage="update",
    ),
    # optimistic methods
    _e("ogd_lr", lambda: ol.optimistic_gradient_descent(-0.1), _LR),
    _e(
        "ogd_alpha",
        lambda: ol.optimistic_gradient_descent(0.1, alpha=-1.0),
        r"^optimistic_gradient_descent: Invalid alpha value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "ogd_beta",
        lambda: ol.optimistic_gradient_descent(0.1, beta=-1.0),
        r"^optimistic_gradient_descent: Invalid beta value: -1.0 \(must be >= 0\)$",
    ),
    _e("optimistic_adam_v2_lr", lambda: ol.optimistic_adam_v2(-0.1), _LR),
    _e(
        "optimistic_adam_v2_alpha",
        lambda: ol.optimistic_adam_v2(0.1, alpha=-1.0),
        r"^optimistic_adam_v2: Invalid alpha value: -1.0 \(must be >= 0\)$",
    ),
    _e(
        "optimistic_adam_v2_beta",
        lambda: ol.optimistic_adam_v2(0.1, beta=-1.0),
        r"^optimistic_adam_v2: Invalid beta value: -1.0 \(must be >= 0\)$",
    ),
    _e("optimistic_adam_v2_b1", lambda: ol.optimistic_adam_v2(0.1, b1=1.0), _B0),
    _e("optimistic_adam_v2_b2", lambda: ol.optimistic_adam_v2(0.1, b2=-0.5), _B1),
    _e("optimistic_adam_v2_eps", lambda: ol.optimistic_adam_v2(0.1, eps=-1e-8), _EPS),
    _e("optimistic_adam_v2_eps_root", lambda: ol.optimistic_adam_v2(0.1, eps_root=-1.0), _EPS_ROOT),
    # optimistic_adam has optax's first interface: (learning_rate, optimism, b1, ...).
    _e("optimistic_adam_lr", lambda: ol.optimistic_adam(-0.1), _LR),
    _e(
        "optimistic_adam_optimism",
        lambda: ol.optimistic_adam(0.1, -1.0),
        r"^optimistic_adam: Invalid optimism value: -1.0 \(must be >= 0\)$",
    ),
    _e("optimistic_adam_b1", lambda: ol.optimistic_adam(0.1, None, 1.0), _B0),
    _e("optimistic_adam_b2", lambda: ol.optimistic_adam(0.1, b2=-0.5), _B1),
    _e("optimistic_adam_eps", lambda: ol.optimistic_adam(0.1, eps=-1e-8), _EPS),
    _e("optimistic_adam_eps_root", lambda: ol.optimistic_adam(0.1, eps_root=-1.0), _EPS_ROOT),
]
