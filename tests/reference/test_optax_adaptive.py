"""adamax, adamaxw, nadam, nadamw, radam, adagrad, adadelta and rmsprop against optax.

Where the algorithms coincide, optimlab and optax run side by side for 20 steps
on the same gradient function (evaluated at each side's own parameters) and the
parameters are compared at every step. Every deliberate difference is listed
next to its comparison and demonstrated by a test below.

Tolerances, each with its reason:
- float32 (float32 arrays with x64 enabled, so hyperparameters are float64 on
  both sides, as in the torch comparisons), 1e-5 relative with a 1e-6 absolute
  floor for entries that cross zero: the same operations in float32, ordered
  differently (optimlab follows torch's order: ``lr / (1 - b1^t)`` as one
  scalar, NAdam's product of momentum coefficients accumulated step by step
  where optax raises ``b1`` to a power).
- float64, 1e-10 relative with a 1e-12 absolute floor: the same operations in
  double precision.
- float32_x32 (JAX's default, x64 off), 1e-4 relative: optimlab stores its
  hyperparameters as float32 scalars, so ``1 - b2`` is formed from
  float32(0.999) (1.3e-5 relative off), while optax forms ``1 - b2`` from the
  Python float before the cast; this shows in the second moments and compounds
  over the 20 steps.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests.reference.harness import find, init_params, make_grad_fn

TOL = {
    "float32": dict(rtol=1e-5, atol=1e-6),
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32_x32": dict(rtol=1e-4, atol=1e-6),
}
STEPS = 20


def compare_with_optax(make_ours, make_theirs, *, dtype, rtol, atol, steps=STEPS):
    """Runs both sides for ``steps`` steps; asserts the params agree after each."""
    np_dtype = np.float64 if dtype == "float64" else np.float32
    grad_fn = make_grad_fn(1, steps=max(steps, 40))
    start = init_params(0)
    worst = 0.0
    # optax relies on standard dtype promotion.
    with jax.enable_x64(dtype != "float32_x32"), jax.numpy_dtype_promotion("standard"):
        sides = []
        for make in (make_ours, make_theirs):
            tx = make()
            params = {k: jnp.asarray(np.asarray(v, np_dtype)) for k, v in start.items()}
            sides.append([tx, params, tx.init(params), jax.jit(tx.update)])
        for k in range(steps):
            for side in sides:
                tx, params, state, update = side
                g = grad_fn(k, {n: np.asarray(v) for n, v in params.items()})
                g = {n: jnp.asarray(np.asarray(v, np_dtype)) for n, v in g.items()}
                updates, side[2] = update(g, state, params)
                side[1] = optax.apply_updates(params, updates)
            for n in start:
                ours, theirs = np.asarray(sides[0][1][n]), np.asarray(sides[1][1][n])
                assert ours.dtype == np_dtype
                np.testing.assert_allclose(
                    ours, theirs, rtol=rtol, atol=atol, err_msg=f"param[{n}] step {k}"
                )
                dev = np.abs(ours - theirs) / np.maximum(np.abs(theirs), atol / rtol)
                worst = max(worst, float(np.max(dev)))
    return worst


# (id, optimlab, optax) where the algorithms coincide.
PAIRS = [
    (
        "adamax",
        lambda: ol.adamax(0.01, b1=0.8, b2=0.95, eps=1e-6),
        lambda: optax.adamax(0.01, b1=0.8, b2=0.95, eps=1e-6),
    ),
    (
        "adamaxw",
        lambda: ol.adamaxw(0.01, weight_decay=0.1),
        lambda: optax.adamaxw(0.01, weight_decay=0.1),
    ),
    # optax's nadam has no momentum schedule (optimlab's default); torch's schedule
    # in the limit momentum_decay -> inf is the same rule.
    ("nadam_defaults", lambda: ol.nadam(0.01), lambda: optax.nadam(0.01)),
    ("nadamw_defaults", lambda: ol.nadamw(0.01), lambda: optax.nadamw(0.01)),
    (
        "adam_nesterov_eps_root",
        lambda: ol.adam(0.01, eps_root=1e-8, nesterov=True),
        lambda: optax.adam(0.01, eps_root=1e-8, nesterov=True),
    ),
    (
        "amsgrad_defaults",
        lambda: ol.amsgrad(0.01),
        lambda: optax.amsgrad(0.01),
    ),
    (
        "nadam",
        lambda: ol.nadam(0.01, b1=0.85, b2=0.98, momentum_decay=float("inf")),
        lambda: optax.nadam(0.01, b1=0.85, b2=0.98),
    ),
    (
        "nadamw",
        lambda: ol.nadamw(0.01, weight_decay=0.1, momentum_decay=float("inf")),
        lambda: optax.nadamw(0.01, weight_decay=0.1),
    ),
    (
        "radam",
        lambda: ol.radam(0.01, b2=0.99, eps=1e-3),
        lambda: optax.radam(0.01, b2=0.99, eps=1e-3),
    ),
    ("radam_defaults", lambda: ol.radam(0.01), lambda: optax.radam(0.01)),
    (
        "radam_nesterov_eps_root_threshold",
        lambda: ol.radam(0.01, b2=0.99, eps=1e-3, eps_root=1e-4, threshold=6.0, nesterov=True),
        lambda: optax.radam(0.01, b2=0.99, eps=1e-3, eps_root=1e-4, threshold=6.0, nesterov=True),
    ),
    # torch's epsilon placement (added to sqrt(v)) is optax's rule when eps = 0
    # (see test_radam_eps_placement_is_optax_s_by_default_and_torch_s_on_request).
    (
        "radam_torch_placement_eps0",
        lambda: ol.radam(0.01, b2=0.99, eps=0.0, eps_after_bias_correction=False),
        lambda: optax.radam(0.01, b2=0.99, eps=0.0),
    ),
    ("adagrad_defaults", lambda: ol.adagrad(0.05), lambda: optax.adagrad(0.05)),
    (
        "adagrad",
        lambda: ol.adagrad(0.05, initial_accumulator_value=0.1, eps=0.0),
        lambda: optax.adagrad(0.05, initial_accumulator_value=0.1, eps=0.0),
    ),
    (
        "adadelta",
        lambda: ol.adadelta(1.0, rho=0.8, eps=1e-4),
        lambda: optax.adadelta(1.0, rho=0.8, eps=1e-4),
    ),
    (
        "adadelta_wd",
        lambda: ol.adadelta(0.5, eps=1e-4, weight_decay=0.1),
        lambda: optax.adadelta(0.5, eps=1e-4, weight_decay=0.1),
    ),
    # learning_rate=None: no scaling and no sign flip (the update ascends), as optax.
    ("adadelta_no_learning_rate", lambda: ol.adadelta(), lambda: optax.adadelta()),
    (
        "adadelta_wd_mask",
        lambda: ol.adadelta(
            0.5, weight_decay=0.1, weight_decay_mask=lambda p: {k: k != "b" for k in p}
        ),
        lambda: optax.adadelta(
            0.5, weight_decay=0.1, weight_decay_mask=lambda p: {k: k != "b" for k in p}
        ),
    ),
    ("rmsprop_defaults", lambda: ol.rmsprop(0.01), lambda: optax.rmsprop(0.01)),
    (
        "rmsprop_nesterov_bias_correction",
        lambda: ol.rmsprop(
            0.01, initial_scale=0.1, momentum=0.9, nesterov=True, bias_correction=True
        ),
        lambda: optax.rmsprop(
            0.01, initial_scale=0.1, momentum=0.9, nesterov=True, bias_correction=True
        ),
    ),
    # torch's rmsprop is eps_in_sqrt=False on both sides; torch's alpha is decay.
    (
        "rmsprop",
        lambda: ol.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False),
    ),
    (
        "rmsprop_centered",
        lambda: ol.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, centered=True),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, centered=True),
    ),
    # optax's momentum buffer holds lr * b_t (lr applied before the trace): the
    # same parameters while lr is constant (see test_rmsprop_momentum_buffer_...).
    (
        "rmsprop_momentum",
        lambda: ol.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, momentum=0.9),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, momentum=0.9),
    ),
    (
        "rmsprop_centered_momentum",
        lambda: ol.rmsprop(
            0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, momentum=0.9, centered=True
        ),
        lambda: optax.rmsprop(
            0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, momentum=0.9, centered=True
        ),
    ),
]


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", pytest.param("float32_x32", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("ours,theirs", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_matches_optax(ours, theirs, dtype):
    compare_with_optax(ours, theirs, dtype=dtype, **TOL[dtype])


def _constant_gradient_updates(tx, g, steps):
    """The updates of ``steps`` steps on the constant gradient ``g`` (a float64 scalar)."""
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        params = jnp.zeros(1, jnp.float64)
        grads = jnp.full(1, g, jnp.float64)
        state = tx.init(params)
        out = []
        for _ in range(steps):
            u, state = tx.update(grads, state, params)
            out.append(float(u[0]))
        return out, state


def test_nadam_momentum_schedule_is_torch_s_on_request():
    # One step on g = 1, in closed form. torch (optimlab): mu_t = b1 (1 - 0.96^(t psi) / 2);
    # optax: mu_t = b1. With m_1 = (1 - b1) g and d = |g| + eps:
    lr, b1, psi, eps = 0.1, 0.9, 4e-3, 1e-8
    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    torch_rule = -lr * (1.0 + mu2 * (1 - b1) / (1 - mu1 * mu2)) / (1 + eps)
    optax_rule = -lr * ((1 - b1) / (1 - b1) + b1 * (1 - b1) / (1 - b1**2)) / (1 + eps)
    (ours,), _ = _constant_gradient_updates(ol.nadam(lr, momentum_decay=psi), 1.0, 1)
    (theirs,), _ = _constant_gradient_updates(optax.nadam(lr), 1.0, 1)
    (default,), _ = _constant_gradient_updates(ol.nadam(lr), 1.0, 1)
    assert default == pytest.approx(optax_rule, rel=1e-12)
    assert ours == pytest.approx(torch_rule, rel=1e-12)
    assert theirs == pytest.approx(optax_rule, rel=1e-12)
    assert abs(ours - theirs) > 0.05 * abs(theirs)  # mu_1 ~ b1 / 2, not b1
    # In the limit momentum_decay -> inf the schedule is optax's constant b1.
    (limit,), _ = _constant_gradient_updates(ol.nadam(lr, momentum_decay=float("inf")), 1.0, 1)
    assert limit == pytest.approx(optax_rule, rel=1e-12)


def test_radam_eps_placement_is_optax_s_by_default_and_torch_s_on_request():
    # Constant g: m_hat = g and v_t = g^2 (1 - b2^t), so once rho_t > 5, torch
    # (eps_after_bias_correction=False) steps r_t g / (|g| + eps / sqrt(1 - b2^t)) and
    # optax (and optimlab by default) r_t g / (|g| + eps).
    lr, b2, eps, g, steps = 1.0, 0.99, 0.1, 0.5, 10
    ours, _ = _constant_gradient_updates(
        ol.radam(lr, b2=b2, eps=eps, eps_after_bias_correction=False), g, steps
    )
    default, _ = _constant_gradient_updates(ol.radam(lr, b2=b2, eps=eps), g, steps)
    theirs, _ = _constant_gradient_updates(optax.radam(lr, b2=b2, eps=eps), g, steps)
    np.testing.assert_allclose(default, theirs, rtol=1e-12)
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, steps + 1):
        bc2 = 1 - b2**t
        rho = rho_inf - 2 * t * b2**t / bc2
        if rho <= 5:  # both take the plain bias-corrected momentum step
            assert ours[t - 1] == pytest.approx(-lr * g, rel=1e-12)
            assert theirs[t - 1] == pytest.approx(-lr * g, rel=1e-12)
            continue
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        assert ours[t - 1] == pytest.approx(
            -lr * r * g / (abs(g) + eps / math.sqrt(bc2)), rel=1e-12
        )
        assert theirs[t - 1] == pytest.approx(-lr * r * g / (abs(g) + eps), rel=1e-12)
        assert abs(ours[t - 1] - theirs[t - 1]) > 1e-3 * abs(theirs[t - 1])


def test_adagrad_eps_placement_is_optax_s_by_default_and_torch_s_on_request():
    # Constant g: s_t = s_0 + t g^2. torch (eps_in_sqrt=False): g / (sqrt(s_t) + eps);
    # optax (and optimlab by default): g / sqrt(s_t + eps).
    lr, s0, eps, g, steps = 1.0, 0.1, 0.5, 2.0, 5
    ours, _ = _constant_gradient_updates(
        ol.adagrad(lr, initial_accumulator_value=s0, eps=eps, eps_in_sqrt=False), g, steps
    )
    default, _ = _constant_gradient_updates(
        ol.adagrad(lr, initial_accumulator_value=s0, eps=eps), g, steps
    )
    theirs, _ = _constant_gradient_updates(
        optax.adagrad(lr, initial_accumulator_value=s0, eps=eps), g, steps
    )
    for t in range(1, steps + 1):
        s = s0 + t * g * g
        assert ours[t - 1] == pytest.approx(-lr * g / (math.sqrt(s) + eps), rel=1e-12)
        assert theirs[t - 1] == pytest.approx(-lr * g / math.sqrt(s + eps), rel=1e-12)
        assert default[t - 1] == pytest.approx(theirs[t - 1], rel=1e-12)
        assert abs(ours[t - 1] - theirs[t - 1]) > 1e-2 * abs(theirs[t - 1])


def test_adagrad_lr_decay_has_no_optax_counterpart():
    # torch's lr_decay: the step t uses lr / (1 + (t - 1) lr_decay); optax has no such term.
    lr, decay, g, steps = 1.0, 0.5, 1.0, 4
    ours, _ = _constant_gradient_updates(
        ol.adagrad(lr, lr_decay=decay, eps=0.0, initial_accumulator_value=0.0), g, steps
    )
    for t in range(1, steps + 1):
        assert ours[t - 1] == pytest.approx(-lr / (1 + (t - 1) * decay) / math.sqrt(t), rel=1e-12)
    assert "lr_decay" not in inspect.signature(optax.adagrad).parameters


def test_rmsprop_momentum_buffer_differs_from_optax_by_the_learning_rate():
    # torch (optimlab) keeps b_t = mu b_{t-1} + g_t / d_t and steps -lr b_t; optax
    # applies -lr first, so its trace holds -lr * b_t (the same while lr is constant).
    lr = 0.01
    _, ours = _constant_gradient_updates(
        ol.rmsprop(lr, decay=0.99, eps_in_sqrt=False, momentum=0.9), 0.5, 3
    )
    _, theirs = _constant_gradient_updates(
        optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False, momentum=0.9), 0.5, 3
    )
    ours_buf = float(find(ours, ol.TraceState).trace[0])
    theirs_buf = float(jax.tree.leaves(theirs[2])[0][0])
    assert theirs_buf == pytest.approx(-lr * ours_buf, rel=1e-12)  # -lr: descent sign
    # Closed form: s_t = g^2 (1 - alpha^t), d_t = sqrt(s_t) + eps, b_3 = sum mu^(3-t) g / d_t.
    x = [0.5 / (0.5 * math.sqrt(1 - 0.99**t) + 1e-8) for t in (1, 2, 3)]
    assert ours_buf == pytest.approx(0.81 * x[0] + 0.9 * x[1] + x[2], rel=1e-12)


def test_rmsprop_eps_placement_is_optax_s_by_default_and_torch_s_on_request():
    # optax (and optimlab by default) put eps inside the root; torch outside.
    lr, eps, g = 1.0, 0.25, 0.5
    (ours,), _ = _constant_gradient_updates(ol.rmsprop(lr, decay=0.0, eps=eps), g, 1)
    (torch_rule,), _ = _constant_gradient_updates(
        ol.rmsprop(lr, decay=0.0, eps=eps, eps_in_sqrt=False), g, 1
    )
    (theirs,), _ = _constant_gradient_updates(optax.rmsprop(lr, decay=0.0, eps=eps), g, 1)
    assert ours == pytest.approx(-g / math.sqrt(g * g + eps), rel=1e-12)
    assert theirs == pytest.approx(ours, rel=1e-12)
    assert torch_rule == pytest.approx(-g / (abs(g) + eps), rel=1e-12)


@pytest.mark.parametrize(
    "ours,theirs",
    [(ol.adamaxw, optax.adamaxw), (ol.nadamw, optax.nadamw), (ol.adamw, optax.adamw)],
    ids=["adamaxw", "nadamw", "adamw"],
)
def test_decoupled_weight_decay_default_is_optax_s(ours, theirs):
    # The decoupled aliases default to optax's 1e-4 (torch AdamW's 1e-2 is passed
    # explicitly by optimlab.optim).
    state = ours().init(jnp.zeros(1))
    assert float(ol.hyperparams(state)["weight_decay"]) == pytest.approx(1e-4)
    assert inspect.signature(theirs).parameters["weight_decay"].default == pytest.approx(1e-4)


def test_rmsprop_centered_bias_correction_matches_optax_in_float64():
    # float64 only: the centered variance s_t - m_t^2 cancels, which turns float32's
    # differently associated roundings into 3e-5 relative differences.
    compare_with_optax(
        lambda: ol.rmsprop(0.01, centered=True, bias_correction=True),
        lambda: optax.rmsprop(0.01, centered=True, bias_correction=True),
        dtype="float64",
        **TOL["float64"],
    )
