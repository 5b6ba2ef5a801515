"""Registry entries for the recent optimizers (schedule-free, parameter-free, second-order...)."""

import jax
import jax.numpy as jnp

import optimlab as ol
from tests import problems

from ._types import Case, ErrorCase


def _loss(params):
    # The quadratic problem's loss when the tree is that problem's, else 0.5 * |p|^2
    # (the conformance checks also use other trees; any consistent loss will do).
    if jax.tree.structure(params) == jax.tree.structure(problems.quadratic_params()):
        return problems.quadratic_loss(params)
    return sum(0.5 * jnp.sum(_sq(_f32(p))) for p in jax.tree.leaves(params))


def _sq(x):
    return jnp.real(x * jnp.conj(x)) if jnp.iscomplexobj(x) else x**2


def _f32(x):
    x = jnp.asarray(x)
    return x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x


def _with_value(tx):
    """Feeds ``value=loss(params)`` to an optimizer that needs the loss (momo)."""

    def update(updates, state, params=None, **extra):
        return tx.update(updates, state, params, **{"value": _loss(params), **extra})

    return ol.GradientTransformation(tx.init, update)


def _with_hessian(tx):
    """Feeds a Hutchinson estimate of the loss's Hessian diagonal (sophia)."""

    def update(updates, state, params=None, **extra):
        f32 = jax.tree.map(_f32, params)
        h = ol.hutchinson_estimator(_loss, f32, jax.random.key(0))
        h = jax.tree.map(lambda e, p: e.astype(jnp.result_type(p)), h, params)
        return tx.update(updates, state, params, hessian_diag=h, **extra)

    return ol.GradientTransformation(tx.init, update)


CASES = [
    Case(
        "schedule_free_sgd",
        lambda: ol.schedule_free_sgd(0.3),
        needs_params=True,
        tags=("optax",),
        complex_ok=True,
    ),
    Case(
        "schedule_free_sgd_warmup_wd",
        lambda: ol.schedule_free_sgd(0.3, warmup_steps=10, weight_decay=1e-4),
        needs_params=True,
        zero_grad_zero_update=False,
        tags=("optax",),
        complex_ok=True,
    ),
    Case(
        "schedule_free_adamw",
        lambda: ol.schedule_free_adamw(0.1),
        needs_params=True,
        converge_steps=600,
        tags=("optax",),
        complex_ok=True,
    ),
    Case(
        "prodigy",
        lambda: ol.prodigy(),
        needs_params=True,
        tags=("optax",),
        converge_steps=500,
        quadratic_tol=3e-2,
    ),
    Case(
        "dadapt_adamw",
        lambda: ol.dadapt_adamw(),
        needs_params=True,
        tags=("optax",),
        converge_steps=500,
        quadratic_tol=3e-2,
    ),
    Case(
        "mechanize_adam",
        lambda: ol.mechanize(ol.adam(0.1)),
        lr_name=None,
        needs_params=True,
        tags=("optax",),
    ),
    Case(
        "cocob",
        lambda: ol.cocob(),
        needs_params=True,
        tags=("optax",),
        converge_steps=1000,
        quadratic_tol=3e-2,
    ),
    Case("dog", lambda: ol.dog(), needs_params=True, tags=("optax",), complex_ok=True),
    Case("dowg", lambda: ol.dowg(), needs_params=True, tags=("optax",), complex_ok=True),
    Case(
        "momo",
        lambda: _with_value(ol.momo()),
        needs_params=True,
        tags=("optax",),
        extra_args=lambda p: {"value": _loss(p)},
        complex_ok=True,
    ),
    Case(
        "momo_adam",
        lambda: _with_value(ol.momo_adam(0.1)),
        needs_params=True,
        tags=("optax",),
        extra_args=lambda p: {"value": _loss(p)},
        complex_ok=True,
    ),
    Case(
        "ademamix",
        lambda: ol.ademamix(0.05, b3=0.99, alpha=1.0),
        tags=("optax",),
        complex_ok=True,
    ),
    Case("adopt", lambda: ol.adopt(0.05), tags=("optax",)),
    Case(
        "sophia",
        lambda: _with_hessian(ol.sophia(0.05, b1=0.9, gamma=0.05, weight_decay=0.0)),
        needs_params=True,
        tags=("optax",),
    ),
    Case(
        "sam",
        lambda: ol.sam(ol.sgd(0.1), ol.chain(ol.normalize(), ol.sgd(0.02))),
        lr_name=None,
        needs_params=True,
        complex_ok=True,
        tags=("optax",),
    ),
    Case(
        "galore",
        lambda: ol.galore(0.1, rank=1, update_proj_gap=5),
        tags=("optax",),
        complex_ok=True,
    ),
]


def _step(tx, params, grads, **extra):
    return tx.update(grads, tx.init(params), params, **extra)


_P = {"w": jnp.ones((3, 2))}

ERROR_CASES = [
    ErrorCase(
        "schedule_free_sgd_lr",
        lambda: ol.schedule_free_sgd(-1.0),
        "construct",
        ValueError,
        r"^schedule_free_sgd: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "schedule_free_sgd_b1",
        lambda: ol.schedule_free_sgd(b1=0.0),
        "construct",
        ValueError,
        r"^schedule_free_sgd: Invalid b1 value: 0.0",
    ),
    ErrorCase(
        "schedule_free_sgd_wd",
        lambda: ol.schedule_free_sgd(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^schedule_free_sgd: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "schedule_free_sgd_power",
        lambda: ol.schedule_free_sgd(weight_lr_power=-1.0),
        "construct",
        ValueError,
        r"^schedule_free_sgd: Invalid weight_lr_power value: -1.0",
    ),
    ErrorCase(
        "schedule_free_sgd_warmup",
        lambda: ol.schedule_free_sgd(warmup_steps=0),
        "construct",
        ValueError,
        r"^schedule_free_sgd: Invalid warmup_steps value: 0",
    ),
    ErrorCase(
        "schedule_free_adamw_b2",
        lambda: ol.schedule_free_adamw(b2=1.0),
        "construct",
        ValueError,
        r"^schedule_free_adamw: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "schedule_free_adamw_eps",
        lambda: ol.schedule_free_adamw(eps=-1.0),
        "construct",
        ValueError,
        r"^schedule_free_adamw: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "schedule_free_params_none",
        lambda: ol.schedule_free_sgd().update(_P, ol.schedule_free_sgd().init(_P)),
        "update",
        ValueError,
        r"schedule_free: params is None",
    ),
    ErrorCase(
        "schedule_free_eval_wrong_state",
        lambda: ol.schedule_free_eval_params(ol.sgd(0.1).init(_P), _P),
        "update",
        ValueError,
        r"holds no ScheduleFreeState",
    ),
    ErrorCase(
        "prodigy_lr",
        lambda: ol.prodigy(-1.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "prodigy_beta1",
        lambda: ol.prodigy(betas=(1.0, 0.9)),
        "construct",
        ValueError,
        r"^prodigy: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "prodigy_beta2",
        lambda: ol.prodigy(betas=(0.9, -0.1)),
        "construct",
        ValueError,
        r"^prodigy: Invalid beta parameter at index 1: -0.1$",
    ),
    ErrorCase(
        "prodigy_beta3",
        lambda: ol.prodigy(beta3=2.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid beta parameter at index 2: 2.0$",
    ),
    ErrorCase(
        "prodigy_eps",
        lambda: ol.prodigy(eps=-1.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "prodigy_d0",
        lambda: ol.prodigy(estim_lr0=0.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid estim_lr0 value: 0.0 \(must be > 0\)$",
    ),
    ErrorCase(
        "prodigy_coef",
        lambda: ol.prodigy(estim_lr_coef=-1.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid estim_lr_coef value: -1.0",
    ),
    ErrorCase(
        "prodigy_wd",
        lambda: ol.prodigy(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^prodigy: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "prodigy_params_none",
        lambda: ol.prodigy().update(_P, ol.prodigy().init(_P)),
        "update",
        ValueError,
        r"prodigy: params is None",
    ),
    ErrorCase(
        "dadapt_lr",
        lambda: ol.dadapt_adamw(-1.0),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "dadapt_beta1",
        lambda: ol.dadapt_adamw(betas=(1.5, 0.9)),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid beta parameter at index 0: 1.5$",
    ),
    ErrorCase(
        "dadapt_beta2",
        lambda: ol.dadapt_adamw(betas=(0.9, 1.5)),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid beta parameter at index 1: 1.5$",
    ),
    ErrorCase(
        "dadapt_eps",
        lambda: ol.dadapt_adamw(eps=-1.0),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "dadapt_d0",
        lambda: ol.dadapt_adamw(estim_lr0=-1.0),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid estim_lr0 value: -1.0",
    ),
    ErrorCase(
        "dadapt_wd",
        lambda: ol.dadapt_adamw(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^dadapt_adamw: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "mechanize_not_tx",
        lambda: ol.mechanize(3),
        "construct",
        TypeError,
        r"mechanize: base_optimizer is int",
    ),
    ErrorCase(
        "mechanize_wd",
        lambda: ol.mechanize(ol.sgd(0.1), weight_decay=-1.0),
        "construct",
        ValueError,
        r"^mechanize: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "mechanize_eps",
        lambda: ol.mechanize(ol.sgd(0.1), eps=-1.0),
        "construct",
        ValueError,
        r"^mechanize: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "mechanize_s_init",
        lambda: ol.mechanize(ol.sgd(0.1), s_init=0.0),
        "construct",
        ValueError,
        r"^mechanize: Invalid s_init value: 0.0",
    ),
    ErrorCase(
        "mechanize_num_betas",
        lambda: ol.mechanize(ol.sgd(0.1), num_betas=0),
        "construct",
        ValueError,
        r"^mechanize: Invalid num_betas value: 0",
    ),
    ErrorCase(
        "cocob_lr",
        lambda: ol.cocob(-1.0),
        "construct",
        ValueError,
        r"^cocob: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "cocob_alpha",
        lambda: ol.cocob(alpha=0.0),
        "construct",
        ValueError,
        r"^cocob: Invalid alpha value: 0.0",
    ),
    ErrorCase(
        "cocob_eps",
        lambda: ol.cocob(eps=-1.0),
        "construct",
        ValueError,
        r"^cocob: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "cocob_wd",
        lambda: ol.cocob(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^cocob: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "dog_lr",
        lambda: ol.dog(-1.0),
        "construct",
        ValueError,
        r"^dog: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "dog_init_step_type",
        lambda: ol.dog(init_step=("bad", 1.0)),
        "construct",
        ValueError,
        r"^dog: Invalid init_step value",
    ),
    ErrorCase(
        "dog_init_step_value",
        lambda: ol.dog(init_step=("distance", -1.0)),
        "construct",
        ValueError,
        r"^dog: Invalid init_step value: -1.0",
    ),
    ErrorCase(
        "dog_eps",
        lambda: ol.dog(eps=-1.0),
        "construct",
        ValueError,
        r"^dog: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "dog_wd",
        lambda: ol.dog(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^dog: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "dowg_lr",
        lambda: ol.dowg(-1.0),
        "construct",
        ValueError,
        r"^dowg: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "dowg_eps",
        lambda: ol.dowg(eps=-1.0),
        "construct",
        ValueError,
        r"^dowg: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "dowg_init",
        lambda: ol.dowg(init_estim_sq_dist=-1.0),
        "construct",
        ValueError,
        r"^dowg: Invalid init_estim_sq_dist value: -1.0",
    ),
    ErrorCase(
        "dowg_wd",
        lambda: ol.dowg(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^dowg: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "momo_lr",
        lambda: ol.momo(-1.0),
        "construct",
        ValueError,
        r"^momo: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "momo_beta",
        lambda: ol.momo(beta=1.0),
        "construct",
        ValueError,
        r"^momo: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "momo_wd",
        lambda: ol.momo(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^momo: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "momo_no_value",
        lambda: _step(ol.momo(), _P, _P),
        "update",
        ValueError,
        r"momo needs the loss: call update\(grads, state, params, value=loss\)",
    ),
    ErrorCase(
        "momo_params_none",
        lambda: ol.momo().update(_P, ol.momo().init(_P), value=1.0),
        "update",
        ValueError,
        r"momo: params is None",
    ),
    ErrorCase(
        "momo_adam_lr",
        lambda: ol.momo_adam(-1.0),
        "construct",
        ValueError,
        r"^momo_adam: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "momo_adam_b1",
        lambda: ol.momo_adam(b1=1.0),
        "construct",
        ValueError,
        r"^momo_adam: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "momo_adam_b2",
        lambda: ol.momo_adam(b2=1.0),
        "construct",
        ValueError,
        r"^momo_adam: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "momo_adam_eps",
        lambda: ol.momo_adam(eps=-1.0),
        "construct",
        ValueError,
        r"^momo_adam: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "momo_adam_wd",
        lambda: ol.momo_adam(weight_decay=-1.0),
        "construct",
        ValueError,
        r"^momo_adam: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "momo_adam_no_value",
        lambda: _step(ol.momo_adam(), _P, _P),
        "update",
        ValueError,
        r"momo_adam needs the loss",
    ),
    ErrorCase(
        "ademamix_lr",
        lambda: ol.ademamix(-1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "ademamix_b1",
        lambda: ol.ademamix(0.1, b1=1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "ademamix_b2",
        lambda: ol.ademamix(0.1, b2=1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "ademamix_b3",
        lambda: ol.ademamix(0.1, b3=1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid beta parameter at index 2: 1.0$",
    ),
    ErrorCase(
        "ademamix_alpha",
        lambda: ol.ademamix(0.1, alpha=-1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid alpha value: -1.0",
    ),
    ErrorCase(
        "ademamix_eps",
        lambda: ol.ademamix(0.1, eps=-1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "ademamix_eps_root",
        lambda: ol.ademamix(0.1, eps_root=-1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid eps_root value: -1.0$",
    ),
    ErrorCase(
        "ademamix_wd",
        lambda: ol.ademamix(0.1, weight_decay=-1.0),
        "construct",
        ValueError,
        r"^ademamix: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "adopt_lr",
        lambda: ol.adopt(-1.0),
        "construct",
        ValueError,
        r"^adopt: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "adopt_b1",
        lambda: ol.adopt(0.1, b1=1.0),
        "construct",
        ValueError,
        r"^adopt: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "adopt_b2",
        lambda: ol.adopt(0.1, b2=1.0),
        "construct",
        ValueError,
        r"^adopt: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "adopt_eps",
        lambda: ol.adopt(0.1, eps=-1.0),
        "construct",
        ValueError,
        r"^adopt: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "sophia_lr",
        lambda: ol.sophia(-1.0),
        "construct",
        ValueError,
        r"^sophia: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "sophia_b1",
        lambda: ol.sophia(0.1, b1=1.0),
        "construct",
        ValueError,
        r"^sophia: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "sophia_b2",
        lambda: ol.sophia(0.1, b2=1.0),
        "construct",
        ValueError,
        r"^sophia: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "sophia_eps",
        lambda: ol.sophia(0.1, eps=-1.0),
        "construct",
        ValueError,
        r"^sophia: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "sophia_wd",
        lambda: ol.sophia(0.1, weight_decay=-1.0),
        "construct",
        ValueError,
        r"^sophia: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "sophia_gamma",
        lambda: ol.sophia(0.1, gamma=0.0),
        "construct",
        ValueError,
        r"^sophia: Invalid gamma value: 0.0",
    ),
    ErrorCase(
        "sophia_clip",
        lambda: ol.sophia(0.1, clip_threshold=0.0),
        "construct",
        ValueError,
        r"^sophia: Invalid clip_threshold value: 0.0",
    ),
    ErrorCase(
        "sophia_interval",
        lambda: ol.sophia(0.1, update_interval=0),
        "construct",
        ValueError,
        r"^sophia: Invalid update_interval value: 0",
    ),
    ErrorCase(
        "sophia_interval_float",
        lambda: ol.sophia(0.1, update_interval=2.5),
        "construct",
        TypeError,
        r"^sophia: Invalid update_interval value: 2.5",
    ),
    ErrorCase(
        "sophia_hessian_shape",
        lambda: _step(ol.sophia(0.1), _P, _P, hessian_diag={"w": jnp.ones(3)}),
        "update",
        ValueError,
        r"sophia: the update at \['w'\] has shape \(3,\)",
    ),
    ErrorCase(
        "sam_sync_period",
        lambda: ol.sam(ol.sgd(0.1), ol.sgd(0.1), sync_period=0),
        "construct",
        ValueError,
        r"^sam: Invalid sync_period value: 0",
    ),
    ErrorCase(
        "sam_opaque_needs_grad_fn",
        lambda: _step(ol.sam(ol.sgd(0.1), ol.sgd(0.1), opaque_mode=True), _P, _P),
        "update",
        ValueError,
        r"sam: opaque_mode needs update\(\.\.\., grad_fn=fn\)",
    ),
    ErrorCase(
        "galore_lr",
        lambda: ol.galore(-1.0),
        "construct",
        ValueError,
        r"^galore: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "galore_rank",
        lambda: ol.galore(0.1, rank=0),
        "construct",
        ValueError,
        r"^galore: Invalid rank value: 0",
    ),
    ErrorCase(
        "galore_rank_float",
        lambda: ol.galore(0.1, rank=2.0),
        "construct",
        TypeError,
        r"^galore: Invalid rank value: 2.0",
    ),
    ErrorCase(
        "galore_gap",
        lambda: ol.galore(0.1, update_proj_gap=0),
        "construct",
        ValueError,
        r"^galore: Invalid update_proj_gap value: 0",
    ),
    ErrorCase(
        "galore_wd",
        lambda: ol.galore(0.1, weight_decay=-1.0),
        "construct",
        ValueError,
        r"^galore: Invalid weight_decay value: -1.0$",
    ),
    ErrorCase(
        "galore_b1",
        lambda: ol.galore(0.1, b1=1.0),
        "construct",
        ValueError,
        r"^galore: Invalid beta parameter at index 0: 1.0$",
    ),
    ErrorCase(
        "galore_b2",
        lambda: ol.galore(0.1, b2=1.0),
        "construct",
        ValueError,
        r"^galore: Invalid beta parameter at index 1: 1.0$",
    ),
    ErrorCase(
        "galore_eps",
        lambda: ol.galore(0.1, eps=-1.0),
        "construct",
        ValueError,
        r"^galore: Invalid epsilon value: -1.0$",
    ),
    ErrorCase(
        "galore_bad_dims",
        lambda: ol.galore(0.1, weight_dimension_numbers=ol.GaLoreDimensionNumbers(0, 0)).init(_P),
        "init",
        ValueError,
        r"must split the 2 axes",
    ),
]
