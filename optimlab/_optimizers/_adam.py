"""Adam family: ``scale_by_adam`` with the ``adam``, ``adamw`` and ``amsgrad`` aliases."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._base import GradientTransformation, never_negative, safe_increment
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import adam_like_alias
from .._transforms._moments import check_moments, corrected_mu, moment_slots, nonzero

__all__ = ["ScaleByAdamState", "scale_by_adam", "adam", "adamw", "amsgrad"]


@never_negative("nu", "nu_max")
class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment (torch's ``exp_avg``).
        nu: second moment (torch's ``exp_avg_sq``).
        nu_max: running maximum of ``nu`` (torch's ``max_exp_avg_sq``), or ``None``
            without AMSGrad.
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates
    nu_max: Updates | None


@checked_arguments
def scale_by_adam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike | None = 0.0,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = False,
    amsgrad: bool = False,
    amsgrad_of_corrected: bool = False,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    nu_dtype: DType | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by Adam's bias-corrected moment ratio.

    See :func:`adam` for the update rule. With ``eps_root`` zero the bias
    corrections and epsilon are placed as in ``torch.optim.Adam``:
    :math:`\hat m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon)`, which is optax's
    :math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon)` up to float rounding; a non-zero
    ``eps_root`` gives optax's :math:`\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}}
    + \epsilon)`. ``nesterov`` is optax's (Dozat's) look-ahead:
    :math:`\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
    AMSGrad takes the maximum over the raw second moments (torch's rule), or with
    ``amsgrad_of_corrected`` over the bias-corrected ones (optax's
    ``scale_by_amsgrad``). Math is done in at least float32; moments are stored in
    ``mu_dtype``/``nu_dtype`` (default: the params').

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside the square root (zero or
            ``None``: left out).
        mu_dtype: storage dtype of the first moment.
        nesterov: Nesterov's look-ahead on the first moment (optax's NAdam).
        amsgrad: keep the running maximum of the second moment.
        amsgrad_of_corrected: take that maximum over bias-corrected second moments
            (optax's ``amsgrad``) instead of raw ones (torch's).
        bias_correction_mu: divide the first moment by :math:`1-\beta_1^t`.
        bias_correction_nu: divide the second moment by :math:`1-\beta_2^t` (read
            with ``amsgrad_of_corrected`` only, as optax's ``amsgrad``).
        nu_dtype: storage dtype of the second moment (and its maximum).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdamState`.
    """
    check_moments("scale_by_adam", b1, b2, eps, eps_root=eps_root)
    use_eps_root = nonzero(eps_root)

    def check_state(state):
        if (state.nu_max is None) == amsgrad:
            raise ValueError(
                f"scale_by_adam: state from another optimizer: it was built with "
                f"amsgrad={not amsgrad} but this optimizer has amsgrad={amsgrad}."
            )

    def prepare(count):
        # Once per update, in the hyperparameters' precision (torch computes them in
        # Python doubles); each leaf casts them. Every scalar the rule needs is here,
        # so the lifter computes it once for all the leaves.
        # Divisions by them are written as products with their reciprocals: XLA
        # rewrites ``x / s`` into ``x * (1 / s)`` or not depending on how many
        # kernels read ``s``, so a quotient's last bit would depend on how many
        # leaves one call updates.
        bc1_hp, bc2_hp = _tree.bias_correction(b1, count), _tree.bias_correction(b2, count)
        decay1, decay2 = jnp.asarray(b1), jnp.asarray(b2)
        return {
            "bc1_hp": bc1_hp if nesterov else None,
            "inv_bc1_hp": None if nesterov else 1 / bc1_hp,
            "bc2_hp": bc2_hp,
            "inv_bc2_sqrt_hp": jax.lax.rsqrt(bc2_hp),
            "bc1_next_hp": (_tree.bias_correction(b1, safe_increment(count)) if nesterov else None),
            "b1_hp": decay1,
            "one_minus_b1": 1 - decay1,
            "b2_hp": decay2,
            "one_minus_b2": 1 - decay2,
            "eps_hp": jnp.asarray(eps),
            "eps_root_hp": jnp.asarray(eps_root) if use_eps_root else None,
        }

    def rule(g, m, v, vmax, **s):
        real = g.dtype if g.dtype.kind != "c" else jnp.finfo(g.dtype).dtype
        # The lifter gives g and m one dtype, v and the scalars g's real one: lax's
        # primitives apply as they are (integer leaves keep the operators' promotion).
        o = _tree.LAX if real.kind == "f" else _tree.OPERATORS
        m_new = _tree.lerp(m, g, s["one_minus_b1"], o)
        v_new = _tree.square_average(g, v, s["b2_hp"], s["one_minus_b2"], o)
        bc2 = s["bc2_hp"]  # casts are skipped where the dtype is already the one
        bc2 = bc2 if bc2.dtype == real else bc2.astype(real)
        e = _tree.hp(s["eps_hp"], g)
        vmax_out = None
        if vmax is not None and amsgrad_of_corrected:  # optax's amsgrad
            v_eff = v_new / bc2 if bias_correction_nu else v_new
            vmax_new = jnp.maximum(vmax, v_eff)
            root = vmax_new + _tree.hp(s["eps_root_hp"], g) if use_eps_root else vmax_new
            denom = jnp.sqrt(root) + e
            vmax_out = vmax_new
        else:
            v_use = v_new
            if vmax is not None:  # torch's amsgrad
                v_use = jnp.maximum(vmax, v_new)
                vmax_out = v_use
            if use_eps_root:
                eps_root = _tree.hp(s["eps_root_hp"], g)
                denom = o.add(o.sqrt(o.add(o.div(v_use, bc2), eps_root)), e)
            else:
                r = s["inv_bc2_sqrt_hp"]
                r = r if r.dtype == real else r.astype(real)
                denom = o.add(o.mul(o.sqrt(v_use), r), e)
        md = m_new.dtype
        if nesterov:
            b1c, bcn = _tree.hp(s["b1_hp"], g).astype(md), s["bc1_next_hp"].astype(real).astype(md)
            bc1 = s["bc1_hp"].astype(real) if bias_correction_mu else jnp.ones((), real)
            m_hat = b1c * m_new / bcn + (1 - b1c) * g / bc1.astype(md)
            direction = m_hat / denom.astype(md)
        else:
            inv_bc1 = s["inv_bc1_hp"] if bias_correction_mu else jnp.ones((), real)
            inv_bc1 = inv_bc1 if inv_bc1.dtype == md else inv_bc1.astype(real).astype(md)
            denom = denom if denom.dtype == md else denom.astype(md)
            direction = o.mul(o.div(m_new, denom), inv_bc1)
        return direction, m_new, v_new, vmax_out

    mu, nu = moment_slots(mu_dtype, nu_dtype, real=True)
    return lift(
        "scale_by_adam",
        rule,
        ScaleByAdamState,
        (mu, nu, nu if amsgrad else None),
        step=step,
        prepare=prepare,
        check_state=check_state,
    )


@checked_arguments
def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule | None = 0.0,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = False,
    weight_decay: ScalarOrSchedule | None = None,
    amsgrad: bool = False,
    maximize: bool = False,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""Adam: optax's arguments; torch's ``Adam`` with ``weight_decay``, ``amsgrad``, ``maximize``.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty added
    to the gradient, sign flipped by ``maximize``):

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2
            \quad (\hat v_t = \max(\hat v_{t-1}, v_t) \text{ with AMSGrad}) \\
        u_t &= -\frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Every numeric argument lives in the state and may be a schedule. A
    ``weight_decay`` or ``eps_root`` of ``None`` leaves the term out; any number,
    ``0.0`` included, keeps it in the state, settable later. With the defaults this is optax's
    ``adam`` (up to float rounding) and ``torch.optim.Adam``.

    .. note::
        ``weight_decay`` (an L2 term), ``amsgrad`` (torch's maximum over raw second
        moments) and ``maximize`` are torch's; optax's ``adam`` has none of them.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        eps_root: added inside the square root, to the bias-corrected :math:`v_t`.
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nesterov: Nesterov's look-ahead on the first moment (optax's NAdam).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (torch's Adam).
            For decoupled decay use :func:`adamw`.
        amsgrad: use the running maximum of :math:`v_t` (torch's AMSGrad).
        maximize: maximise the objective.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adam(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> optimlab.apply_updates(params, updates)
        Array([ 0.9, -0.9], dtype=float32)

    References:
        Kingma & Ba, `Adam: A Method for Stochastic Optimization
        <https://arxiv.org/abs/1412.6980>`_, 2014. Reddi et al., `On the Convergence
        of Adam and Beyond <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    return _adam(
        "adam",
        (learning_rate, b1, b2, eps, weight_decay),
        eps_root,
        maximize=maximize,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        nesterov=nesterov,
        amsgrad=amsgrad,
    )


@checked_arguments
def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule | None = 0.0,
    mu_dtype: DType | None = None,
    weight_decay: ScalarOrSchedule | None = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    amsgrad: bool = False,
    maximize: bool = False,
    nu_dtype: DType | None = None,
) -> GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay; optax's defaults, torch's through arguments.

    The rule of :func:`adam` without the L2 term, plus the decay applied to the
    parameters directly:

    .. math:: u_t = -\eta\,\big(\mathrm{adam\_direction}_t + \lambda\, p_{t-1}\big)

    The default ``weight_decay`` is optax's ``1e-4``; ``torch.optim.AdamW``'s is
    ``1e-2``, which :class:`optimlab.optim.AdamW` passes (``adamw(lr,
    weight_decay=1e-2)`` is torch's AdamW).

    .. note::
        ``amsgrad`` and ``maximize`` are torch's; optax's ``adamw`` has neither.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`.
        eps_root: added inside the square root, to the bias-corrected :math:`v_t`.
        mu_dtype: storage dtype of the first moment.
        weight_decay: decoupled decay :math:`\lambda` (optax's ``1e-4``; torch's
            AdamW ``1e-2``).
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        nesterov: Nesterov's look-ahead on the first moment (optax's NAdamW).
        amsgrad: use the running maximum of :math:`v_t`.
        maximize: maximise the objective.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adamw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(params), params)
        >>> optimlab.apply_updates(params, updates)
        Array([0.85], dtype=float32)

    References:
        Loshchilov & Hutter, `Decoupled Weight Decay Regularization
        <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    return _adam(
        "adamw",
        (learning_rate, b1, b2, eps, weight_decay),
        eps_root,
        maximize=maximize,
        decoupled=True,
        mask=mask,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        nesterov=nesterov,
        amsgrad=amsgrad,
    )


@checked_arguments
def amsgrad(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule | None = 0.0,
    mu_dtype: DType | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
) -> GradientTransformation:
    r"""AMSGrad, optax's: :func:`adam` with the running maximum of the corrected :math:`\hat v_t`.

    optax's rule: :math:`\hat v^{max}_t = \max(\hat v^{max}_{t-1}, v_t/(1-\beta_2^t))`
    and :math:`u_t = -\eta\, \hat m_t / (\sqrt{\hat v^{max}_t + \epsilon_{root}} +
    \epsilon)`. torch's AMSGrad (the maximum over raw second moments, corrected
    afterwards) is ``adam(..., amsgrad=True)``, which :class:`optimlab.optim.Adam`
    passes.

    .. note::
        ``weight_decay`` (an L2 term) and ``maximize`` are torch's; optax's
        ``amsgrad`` has neither.

    Args:
        learning_rate: the step size.
        b1: first-moment decay.
        b2: second-moment decay.
        eps: added to the denominator.
        eps_root: added inside the square root.
        mu_dtype: storage dtype of the first moment.
        bias_correction_mu: correct the first moment for its zero start.
        bias_correction_nu: correct the second moment before taking the maximum.
        weight_decay: L2 penalty added to the gradient.
        maximize: maximise the objective.

    Returns:
        A :class:`~optimlab.GradientTransformation`.
    """
    return _adam(
        "amsgrad",
        (learning_rate, b1, b2, eps, weight_decay),
        eps_root,
        maximize=maximize,
        mu_dtype=mu_dtype,
        amsgrad=True,
        amsgrad_of_corrected=True,
        bias_correction_mu=bias_correction_mu,
        bias_correction_nu=bias_correction_nu,
    )


def _adam(name: str, numbers: tuple, eps_root: Any, **options: Any) -> GradientTransformation:
    # numbers: (learning_rate, b1, b2, eps, weight_decay); options: adam_like's keywords
    # and scale_by_adam's (dtypes, flags), as given.
    return adam_like_alias(name, scale_by_adam, numbers, extra={"eps_root": eps_root}, **options)


def scale_by_adam_root(
    b1,
    b2,
    eps,
    eps_root,
    *,
    mu_dtype: DType | None = None,
    nesterov: bool = False,
    step: jax.Array | None = None,
    name: str = "lamb",
) -> GradientTransformation:
    """Adam's direction in optax's form, ``m_hat / (sqrt(v_hat + eps_root) + eps)``.

    Shared by :func:`~optimlab.lamb` and :func:`~optimlab.optimistic_adam`, whose optax
    definitions take ``eps_root`` (and Nesterov's look-ahead of the first moment),
    which :func:`~optimlab.scale_by_adam` (torch's numerics) does not. The state is
    a :class:`~optimlab.ScaleByAdamState` without ``nu_max``. Complex parameters are
    optimized as optax does (the second moment is of :math:`|g|^2`, stored real).
    """

    def prepare(count):
        # Once per update, for every leaf (the lifter computes them once).
        out = {"bc1": _tree.bias_correction(b1, count), "bc2": _tree.bias_correction(b2, count)}
        if nesterov:
            decay = jnp.asarray(b1)
            out["bc1_next"] = 1 - decay ** (count.astype(decay.dtype) + 2)
        return out

    def rule(g, m, v, _, bc1, bc2, bc1_next=None):
        d1 = _tree.scalar_like(b1, g)
        om1 = _tree.scalar_like(1 - jnp.asarray(b1), g)
        m_new = om1 * g + d1 * m
        # optax's second moment is of |g|^2 for complex g: real, stored real here
        om2 = _tree.hp(1 - jnp.asarray(b2), g)
        v_new = (om2 * _tree.abs_sq(g) if jnp.iscomplexobj(g) else om2 * g * g) + _tree.hp(
            b2, g
        ) * v
        m_hat = corrected_mu(g, m_new, b1, bc1, bc1_next)
        v_hat = v_new / _tree.hp(bc2, g)
        denom = jnp.sqrt(v_hat + _tree.hp(eps_root, g)) + _tree.hp(eps, g)
        return m_hat / denom.astype(m_hat.dtype), m_new, v_new, None

    slots = (Slot(mu_dtype, "mu_dtype"), Slot(real=True), None)
    return lift(name, rule, ScaleByAdamState, slots, step=step, prepare=prepare)
