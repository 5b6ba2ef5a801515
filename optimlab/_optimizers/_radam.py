"""Rectified Adam: ``scale_by_radam`` with the ``radam`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._base import GradientTransformation, never_negative, safe_increment
from .._core._lift import lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import adam_like, check_adam_like
from .._transforms._moments import check_moments, corrected_mu, moment_slots, nonzero

__all__ = ["ScaleByRadamState", "scale_by_radam", "radam"]


@never_negative("nu")
class ScaleByRadamState(NamedTuple):
    """State of :func:`scale_by_radam`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment (torch's ``exp_avg``).
        nu: second moment (torch's ``exp_avg_sq``).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


def _rectification(
    b2: Any, count: jax.Array, threshold: Any, strict: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(rectify, r_t, 1 - b2^t)`` in the hyperparameters' precision.

    ``rectify`` is ``rho_t >= threshold`` (optax's), or ``rho_t > threshold`` with
    ``strict`` (torch's).
    """
    b2 = jnp.asarray(b2)
    if not jnp.issubdtype(b2.dtype, jnp.floating):
        b2 = b2.astype(jnp.result_type(float))
    t = _tree.step_as(count, b2.dtype)
    b2t = b2**t
    bc2 = 1 - b2t
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2t / bc2
    threshold = jnp.asarray(threshold, b2.dtype)
    rectify = rho_t > threshold if strict else rho_t >= threshold
    # Evaluated on a safe value where unused, so no NaN appears even in gradients.
    rho = jnp.where(rectify, rho_t, 6.0)
    num = (rho - 4) * (rho - 2) * rho_inf
    den = (rho_inf - 4) * (rho_inf - 2) * rho
    r = jnp.sqrt(jnp.where(rectify, num / den, 1.0))
    return rectify, r, bc2


@checked_arguments
def scale_by_radam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike | None = 0.0,
    threshold: ArrayLike = 5.0,
    *,
    nesterov: bool = False,
    eps_after_bias_correction: bool = True,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    step: jax.Array | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Rescales updates by Rectified Adam's direction: optax's by default, or torch's.

    See :func:`radam` for the update rule. While the variance estimate is not
    yet tractable (:math:`\rho_t` below ``threshold``) the direction is the
    bias-corrected first moment alone; afterwards it is rectified Adam's. By
    default (optax's ``scale_by_radam``) epsilon is added to the bias-corrected
    root, :math:`r_t \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)`, and
    the step is rectified when :math:`\rho_t \ge` ``threshold``. Complex leaves
    are optax's by default (a real second moment of :math:`|g|^2`);
    ``componentwise=True`` treats their real and imaginary parts as separate
    reals (torch's ``view_as_real``). Math is done in at
    least float32; moments are stored in ``mu_dtype``/``nu_dtype`` (default: the
    params').

    .. note::
        ``eps_after_bias_correction=False`` selects ``torch.optim.RAdam``'s numerics:
        :math:`r_t \hat m_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon)` (epsilon
        added to the root of the raw second moment) and rectification only when
        :math:`\rho_t >` ``threshold``, strictly; it takes no ``eps_root``.

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added to :math:`\sqrt{\hat v_t}` (to :math:`\sqrt{v_t}`
            with ``eps_after_bias_correction=False``).
        eps_root: :math:`\epsilon_{root}`, added inside the square root, to
            :math:`\hat v_t`; ``None`` or zero for none.
        threshold: the tractability threshold on :math:`\rho_t` (optax's 5).
        nesterov: optax's Nesterov look-ahead of the first moment,
            :math:`\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
        eps_after_bias_correction: ``True`` (optax's) adds epsilon to the
            bias-corrected root; ``False`` is torch's placement and strict threshold.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.
        componentwise: complex leaves as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByRadamState`.

    Examples:
        >>> tx = optimlab.scale_by_radam()
        >>> updates, state = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
        >>> updates  # the first steps are plain bias-corrected momentum
        Array([ 2. , -0.5], dtype=float32)
    """
    check_moments("scale_by_radam", b1, b2, eps, eps_root=eps_root, threshold=threshold)
    use_eps_root = eps_root is not None
    if not eps_after_bias_correction and nonzero(eps_root):
        raise ValueError(
            "scale_by_radam: torch's epsilon placement (eps_after_bias_correction=False) "
            "has no eps_root; leave eps_root at 0 (or None)."
        )

    def prepare(count):
        rectify, r, bc2 = _rectification(b2, count, threshold, not eps_after_bias_correction)
        return {
            "bc1": _tree.bias_correction(b1, count),
            "bc1_next": _tree.bias_correction(b1, safe_increment(count)) if nesterov else None,
            "rectify": rectify,
            "r": r,
            "bc2": bc2,
            "sqrt_bc2": jnp.sqrt(bc2),
        }

    def rule(g, m, v, bc1, bc1_next, rectify, r, bc2, sqrt_bc2):
        m_new = _tree.update_moment(g, m, b1, 1)
        v_new = _tree.update_moment(g, v, b2, 2)
        m_hat = corrected_mu(g, m_new, b1, bc1, bc1_next)
        e = _tree.scalar_like(eps, v_new)
        if eps_after_bias_correction:
            v_hat = v_new / _tree.scalar_like(bc2, v_new)
            if use_eps_root:
                v_hat = v_hat + _tree.scalar_like(eps_root, v_new)
            rectified = _tree.scalar_like(r, g) * m_hat / (jnp.sqrt(v_hat) + e).astype(g.dtype)
        else:
            adaptive = _tree.scalar_like(sqrt_bc2, v_new) / (jnp.sqrt(v_new) + e)
            rectified = m_hat * adaptive.astype(g.dtype) * _tree.scalar_like(r, g)
        # select_n on the scalar predicate: no broadcast, no nested jit per leaf.
        return jax.lax.select_n(rectify, m_hat, rectified), m_new, v_new

    return lift(
        "scale_by_radam",
        rule,
        ScaleByRadamState,
        moment_slots(mu_dtype, nu_dtype, real=not componentwise),
        step=step,
        prepare=prepare,
        componentwise=componentwise,
    )


@checked_arguments
def radam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule | None = 0.0,
    threshold: ScalarOrSchedule = 5.0,
    *,
    nesterov: bool = False,
    eps_after_bias_correction: bool = True,
    weight_decay: ScalarOrSchedule | None = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    mask: Any = None,
    mu_dtype: DType | None = None,
    nu_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""RAdam (rectified Adam): optax's by default, torch's on request (see the note).

    With :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``), plus
    :math:`\lambda p_{t-1}` unless the decay is decoupled, and :math:`\tau` the
    ``threshold``:

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1-\beta_2^t} \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
            {(\rho_\infty-4)(\rho_\infty-2)\rho_t}} \\
        p_t &= p_{t-1} - \eta\,\Big(\frac{r_t\, \hat m_t}
            {\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
            \ \text{if } \rho_t \ge \tau, \text{ else } \hat m_t
            \ \big[+\lambda p_{t-1}\ \text{if decoupled}\big]\Big)

    This is optax's ``radam`` (``nesterov=True`` replaces :math:`\hat m_t` by
    optax's look-ahead, see :func:`scale_by_radam`). Every numeric argument lives
    in the state and may be a schedule. A ``weight_decay`` or ``eps_root`` of
    ``None`` leaves the term out; any number, ``0.0`` included, keeps it in the
    state, settable later. Complex parameters are optimized as optax does (a real
    second moment), or componentwise as torch does with ``componentwise=True``.

    .. note::
        ``torch.optim.RAdam`` is ``radam(lr, b1, b2, eps, eps_root=None,
        eps_after_bias_correction=False, weight_decay=...,
        decoupled_weight_decay=..., maximize=..., componentwise=True)``, the call
        :class:`optimlab.optim.RAdam` makes: epsilon is added to the root of the raw
        second moment, :math:`r_t \hat m_t \sqrt{1-\beta_2^t}/(\sqrt{v_t} + \epsilon)`,
        and the step is rectified only when :math:`\rho_t > \tau` (strictly). The
        two placements agree when :math:`\epsilon = 0`. ``weight_decay``,
        ``decoupled_weight_decay`` and ``maximize`` are torch's; optax's ``radam``
        has none of them.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        eps_root: :math:`\epsilon_{root} \ge 0`, added inside the square root
            (optax's placement only).
        threshold: :math:`\tau \ge 0`, the tractability threshold on :math:`\rho_t`.
        nesterov: optax's Nesterov look-ahead of the first moment.
        eps_after_bias_correction: ``True`` (optax's) adds epsilon to
            :math:`\sqrt{\hat v_t}`; ``False`` selects torch's placement and strict
            threshold (see the note).
        weight_decay: :math:`\lambda \ge 0`, an L2 penalty added to the gradient, or
            decoupled decay with ``decoupled_weight_decay=True``.
        decoupled_weight_decay: apply the decay to the parameters directly (as
            AdamW does) instead of adding it to the gradient.
        maximize: maximise the objective.
        mask: with decoupled decay, a pytree of bools (or ``params -> mask``)
            selecting the leaves to decay.
        mu_dtype: storage dtype of the first moment (math stays in float32 or wider).
        nu_dtype: storage dtype of the second moment.
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.radam(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.9, -0.9]

    References:
        Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond
        <https://arxiv.org/abs/1908.03265>`_, 2020.
    """
    numbers = (learning_rate, b1, b2, eps, weight_decay)
    decoupled = decoupled_weight_decay
    check_adam_like(
        "radam", *numbers, mask=mask, decoupled=decoupled, eps_root=eps_root, threshold=threshold
    )
    if not eps_after_bias_correction:
        if nonzero(eps_root):
            raise ValueError(
                "radam: torch's epsilon placement (eps_after_bias_correction=False) has "
                "no eps_root; leave eps_root at 0 (or None)."
            )
        eps_root = None  # torch's rule has no term under the root: none is carried
    return adam_like(
        scale_by_radam,
        *numbers,
        maximize=maximize,
        decoupled=decoupled,
        mask=mask,
        extra={"eps_root": eps_root, "threshold": threshold},
        nesterov=nesterov,
        eps_after_bias_correction=eps_after_bias_correction,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        componentwise=componentwise,
    )
