"""Resilient backpropagation: the ``scale_by_rprop`` primitive and the ``rprop`` alias."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, descend

__all__ = ["ScaleByRpropState", "scale_by_rprop", "rprop"]


@never_negative("step_size")
class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`.

    Attributes:
        prev: optax's ``prev_updates`` (the last step's step size times the
            gradient's sign, zero where its sign flipped), or with
            ``delayed_update=False`` torch's ``prev`` (the last effective gradient,
            zero where its sign flipped).
        step_size: the per-element step size (optax's ``step_sizes``, torch's
            ``step_size``).
    """

    prev: Updates
    step_size: Updates


@checked_arguments
def scale_by_rprop(
    learning_rate: ArrayLike,
    eta_minus: ArrayLike = 0.5,
    eta_plus: ArrayLike = 1.2,
    min_step_size: ArrayLike = 1e-6,
    max_step_size: ArrayLike = 50.0,
    *,
    delayed_update: bool = True,
) -> GradientTransformation:
    r"""Rprop's sign-based step sizes: optax's rule by default, torch's on request.

    See :func:`rprop` for the update rule. ``learning_rate`` is the initial step
    size, read once by ``init``. As optax's ``scale_by_rprop``, the returned update
    points uphill (``+sign(g) * step_size``); :func:`rprop` negates it. By default
    this is optax's rule: each step returns the *previous* step's update (zero on
    the first step, and zero where the gradient's sign flipped), and step sizes
    change (and are clipped) only where the sign comparison is non-zero.

    .. note::
        ``delayed_update=False`` selects ``torch.optim.Rprop``'s rule, the one
        :class:`optimlab.optim.Rprop` uses: the current step's gradient and step
        size give this step's update, a flipped sign zeroes this step's gradient
        (no move) and shrinks the step size at once, and step sizes are clipped at
        every step.

    Complex leaves are treated as independent real and imaginary parts, as torch
    does.

    Args:
        learning_rate: the initial step size :math:`\eta`.
        eta_minus: the shrink factor :math:`\eta^-` in :math:`(0, 1)`.
        eta_plus: the growth factor :math:`\eta^+ > 1`.
        min_step_size: lower clamp of the step sizes.
        max_step_size: upper clamp of the step sizes.
        delayed_update: ``True`` (optax's) returns the previous step's update;
            ``False`` is torch's current-step rule.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByRpropState`.

    Examples:
        >>> tx = optimlab.scale_by_rprop(0.1, delayed_update=False)
        >>> state = tx.init(jnp.zeros(2))
        >>> u, state = tx.update(jnp.array([1.0, -1.0]), state)
        >>> u, state = tx.update(jnp.array([1.0, 1.0]), state)
        >>> u
        Array([0.12, 0.  ], dtype=float32)
    """
    _rules.check_args(
        "scale_by_rprop",
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
    )

    def torch_rule(gc, pv, ss):
        sign = jnp.sign(gc * pv)
        factor = jnp.where(
            sign > 0,
            _tree.scalar_like(eta_plus, gc),
            jnp.where(
                sign < 0,
                _tree.scalar_like(eta_minus, gc),
                jnp.where(sign == 0, jnp.ones_like(gc), sign),
            ),
        )
        new_size = jnp.clip(
            ss * factor,
            _tree.scalar_like(min_step_size, gc),
            _tree.scalar_like(max_step_size, gc),
        )
        # Where the sign flipped, this step's gradient is dropped (torch's rule).
        eff = jnp.where(sign < 0, jnp.zeros_like(gc), gc)
        return jnp.sign(eff) * new_size, eff, new_size

    def optax_rule(gc, pv, ss):
        s = gc * pv
        new_size = jnp.where(
            s == 0,
            ss,
            jnp.clip(
                ss
                * jnp.where(
                    s > 0, _tree.scalar_like(eta_plus, gc), _tree.scalar_like(eta_minus, gc)
                ),
                _tree.scalar_like(min_step_size, gc),
                _tree.scalar_like(max_step_size, gc),
            ),
        )
        zero = jnp.zeros_like(gc)
        new_prev = jnp.where(s < 0, zero, new_size * jnp.sign(gc))
        return jnp.where(s < 0, zero, pv), new_prev, new_size

    rule = optax_rule if delayed_update else torch_rule

    def step_size(p):
        lr = _tree.hp(learning_rate, p)
        if jnp.iscomplexobj(p):
            return jnp.zeros_like(p) + jax.lax.complex(lr, lr).astype(p.dtype)
        return jnp.zeros_like(p) + lr

    return lift(
        "scale_by_rprop",
        rule,
        ScaleByRpropState,
        (Slot(), Slot(fill=step_size)),
        counter=False,
        componentwise=True,
    )


@checked_arguments
def rprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    eta_minus: ScalarOrSchedule = 0.5,
    eta_plus: ScalarOrSchedule = 1.2,
    min_step_size: ScalarOrSchedule = 1e-6,
    max_step_size: ScalarOrSchedule = 50.0,
    *,
    delayed_update: bool = True,
    maximize: bool = False,
) -> GradientTransformation:
    r"""Rprop: optax's by default, ``torch.optim.Rprop`` with ``delayed_update=False``.

    Each element keeps its own step size, grown while the gradient keeps its sign
    and shrunk when it flips; only the sign of the gradient is used. With
    :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``),
    :math:`s_t = \operatorname{sign}(g_t\, u'_{t-1})` and :math:`u'_0 = 0`, optax's
    rule (the default) is

    .. math::
        \Delta_t &= \Delta_{t-1} \text{ if } s_t = 0, \text{ else }
            \operatorname{clip}\big(\Delta_{t-1} \cdot
            \{\eta^+ \text{ if } s_t > 0;\ \eta^- \text{ if } s_t < 0\},
            \ \Delta_{\min}, \Delta_{\max}\big), \quad \Delta_0 = \eta \\
        u'_t &= 0 \text{ if } s_t < 0 \text{ else } \operatorname{sign}(g_t)\, \Delta_t \\
        p_t &= p_{t-1} - \big(0 \text{ if } s_t < 0 \text{ else } u'_{t-1}\big)

    so each step moves by the previous step's update: nothing on the first step,
    and nothing where the sign just flipped.

    .. note::
        ``delayed_update=False`` is ``torch.optim.Rprop``'s rule, the call
        :class:`optimlab.optim.Rprop` makes (``rprop(lr, eta_minus, eta_plus,
        min_step_size, max_step_size, delayed_update=False, maximize=...)``), with
        :math:`s_t = \operatorname{sign}(g_t\, g'_{t-1})`:

        .. math::
            \Delta_t &= \operatorname{clip}\big(\Delta_{t-1} \cdot
                \{\eta^+ \text{ if } s_t > 0;\ \eta^- \text{ if } s_t < 0;\ 1
                \text{ otherwise}\}, \ \Delta_{\min}, \Delta_{\max}\big) \\
            g'_t &= 0 \text{ if } s_t < 0 \text{ else } g_t, \qquad
            p_t = p_{t-1} - \operatorname{sign}(g'_t)\, \Delta_t

        The current step's gradient and step size move the parameters. ``maximize``
        is torch's; optax's ``rprop`` has none.

    torch's ``etas=(eta_minus, eta_plus)`` and ``step_sizes=(min_step_size,
    max_step_size)`` are given here as four scalars (optax's names), each in the
    state. ``learning_rate`` is only the initial step size :math:`\Delta_0`: it is
    read by ``init``, and changing it afterwards has no effect, as in torch and
    optax. Complex params are supported (real and imaginary parts as independent
    reals, as torch does). Zero gradients give zero updates under torch's rule.

    Args:
        learning_rate: the initial step size :math:`\eta` (torch's ``lr``).
        eta_minus: :math:`\eta^- \in (0, 1)`, the shrink factor.
        eta_plus: :math:`\eta^+ > 1`, the growth factor.
        min_step_size: :math:`\Delta_{\min} \ge 0`.
        max_step_size: :math:`\Delta_{\max} \ge \Delta_{\min}`.
        delayed_update: ``True`` (optax's) moves by the previous step's update;
            ``False`` is torch's current-step rule.
        maximize: maximise the objective.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.rprop(learning_rate=0.1, delayed_update=False)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update(params, state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> params
        Array([ 0.78, -0.78], dtype=float32)

    References:
        Riedmiller & Braun, `A Direct Adaptive Method for Faster Backpropagation
        Learning: The RPROP Algorithm <https://doi.org/10.1109/ICNN.1993.298623>`_, 1993.
    """
    _validate.lr(learning_rate)
    em, ep = _validate.concrete(eta_minus), _validate.concrete(eta_plus)
    if em is not None and ep is not None:
        _validate.check(0.0 < em < 1.0 < ep, f"Invalid eta values: {em}, {ep}")
    elif em is not None:
        _validate.check(0.0 < em < 1.0, f"Invalid eta values: {em}, {eta_plus}")
    elif ep is not None:
        _validate.check(1.0 < ep, f"Invalid eta values: {eta_minus}, {ep}")
    lo, hi = _validate.concrete(min_step_size), _validate.concrete(max_step_size)
    # torch does not check step_sizes; a negative or inverted range is refused here.
    if lo is not None:
        _validate.check(0.0 <= lo, f"Invalid step_sizes values: {lo}, {max_step_size}")
    if lo is not None and hi is not None:
        _validate.check(lo <= hi, f"Invalid step_sizes values: {lo}, {hi}")
    _rules.check_args(
        "rprop",
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
    )

    def build(step, h):
        del step
        primitive = scale_by_rprop(
            h["learning_rate"],
            h["eta_minus"],
            h["eta_plus"],
            h["min_step_size"],
            h["max_step_size"],
            delayed_update=delayed_update,
        )
        return descend(primitive, maximize=maximize)

    return alias_hyperparams(
        build,
        "rprop",
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
    )
