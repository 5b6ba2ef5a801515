"""RMSprop: ``scale_by_rmsprop`` with the ``rmsprop`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional, torch_prefix
from .._transforms._scale import scale_by_learning_rate
from ._sgd import trace

__all__ = ["ScaleByRmspropState", "scale_by_rmsprop", "rmsprop"]


@never_negative("square_avg")
class ScaleByRmspropState(NamedTuple):
    """State of :func:`scale_by_rmsprop`.

    Attributes:
        square_avg: running average of squared gradients (torch's ``square_avg``).
        grad_avg: running average of gradients (torch's ``grad_avg``), or ``None``
            unless centered.
    """

    square_avg: Updates
    grad_avg: Updates | None


@checked_arguments
def scale_by_rmsprop(
    decay: ArrayLike = 0.99,
    eps: ArrayLike = 1e-8,
    *,
    centered: bool = False,
    eps_in_sqrt: bool = False,
    initial_scale: float = 0.0,
    bias_correction: bool = False,
    accumulator_dtype: DType | None = None,
    step: jax.Array | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""Divides updates by the running RMS of the gradients.

    See :func:`rmsprop` for the update rule. By default this is
    ``torch.optim.RMSprop``'s scaling (without its momentum, which :func:`rmsprop`
    adds with :func:`~optimlab.trace`): epsilon is added to the square root.
    ``eps_in_sqrt=True`` adds it inside, as optax's ``scale_by_rms`` and
    ``scale_by_stddev`` do by default. Complex leaves are optax's by default (a
    real average of :math:`|g|^2`, and :math:`|\bar g|^2` for ``centered``);
    ``componentwise=True`` treats their real and imaginary parts as separate
    reals (torch's ``view_as_real``). Math is done in at least float32; averages
    are stored in ``accumulator_dtype`` (default: the params').

    .. note::
        The name is optimlab's; optax's ``scale_by_rms`` (and ``scale_by_stddev``
        for ``centered``) is ``scale_by_rmsprop(decay=0.9, eps_in_sqrt=True)``.

    Args:
        decay: :math:`\alpha`, the decay of the running averages (torch's ``alpha``).
        eps: :math:`\epsilon`, added to the square root (or inside it).
        centered: subtract the squared running mean of the gradients (an estimate of
            their variance instead of their second moment).
        eps_in_sqrt: add epsilon inside the square root (optax's placement).
        initial_scale: the starting value of the running average of squares.
        bias_correction: divide the averages by :math:`1 - \alpha^t` (optax's
            option); needs ``step``.
        accumulator_dtype: storage dtype of the averages.
        step: the step count, supplied by an enclosing optimizer (required by
            ``bias_correction``).
        componentwise: complex leaves as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByRmspropState`.

    Examples:
        >>> tx = optimlab.scale_by_rmsprop(decay=0.75)
        >>> updates, state = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
        >>> jnp.round(updates, 4)  # g / sqrt(0.25 g^2)
        Array([ 2., -2.], dtype=float32)
    """
    _validate.eps(eps)
    _validate.at_least_zero(decay, "alpha")
    _rules.check_args("scale_by_rmsprop", decay=decay, eps=eps, initial_scale=initial_scale)
    if bias_correction and step is None:
        raise ValueError(
            "scale_by_rmsprop: bias_correction=True needs step=<the step count>; "
            "use rmsprop(..., bias_correction=True), which supplies it."
        )

    def prepare(count):
        return {"bc": _tree.bias_correction(decay, count)} if bias_correction else {}

    def rule(g, sq, ga, bc=None):
        sq_new = _tree.update_moment(g, sq, decay, 2)
        sq_hat = sq_new
        if bc is not None:
            bc = bc.astype(g.dtype)
            sq_hat = sq_new / bc
        ga_new = None
        var = sq_hat
        if ga is not None:
            ga_new = _tree.update_moment(g, ga, decay, 1)
            ga_hat = ga_new / bc if bc is not None else ga_new
            var = sq_hat - _tree.abs_sq(ga_hat)
        e = _tree.scalar_like(eps, var)
        if eps_in_sqrt:
            direction = jax.lax.rsqrt(var + e).astype(g.dtype) * g
        else:
            direction = g / (jnp.sqrt(var) + e).astype(g.dtype)
        return direction, sq_new, ga_new

    acc = Slot(accumulator_dtype, "accumulator_dtype")
    return lift(
        "scale_by_rmsprop",
        rule,
        ScaleByRmspropState,
        (acc._replace(fill=initial_scale, real=not componentwise), acc if centered else None),
        counter=False,
        step=step,
        prepare=prepare,
        componentwise=componentwise,
    )


@checked_arguments
def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    decay: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
    accumulator_dtype: DType | None = None,
    componentwise: bool = False,
) -> GradientTransformation:
    r"""RMSprop, optax's by default; torch's through explicit arguments.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + \lambda p_{t-1}` (L2 penalty added
    to the gradient, sign flipped by ``maximize``):

    .. math::
        s_t &= \alpha\, s_{t-1} + (1-\alpha)\, g_t^2, \qquad
        \bar g_t = \alpha\, \bar g_{t-1} + (1-\alpha)\, g_t \ \text{(centered)} \\
        d_t &= \sqrt{s_t - \bar g_t^2 + \epsilon} \ \text{(centered)}, \qquad
        d_t = \sqrt{s_t + \epsilon} \ \text{(otherwise)} \\
        b_t &= \mu\, b_{t-1} + g_t / d_t, \qquad
        p_t = p_{t-1} - \eta\, b_t \quad (p_t = p_{t-1} - \eta\, g_t / d_t
        \text{ without momentum})

    with :math:`s_0` = ``initial_scale``. ``eps_in_sqrt=False`` moves epsilon out
    of the root, :math:`d_t = \sqrt{s_t} + \epsilon`; ``bias_correction`` divides
    :math:`s_t` and :math:`\bar g_t` by :math:`1-\alpha^t`; ``nesterov`` uses
    :math:`\mu b_t + g_t / d_t` as the step.

    The defaults are optax's (``decay=0.9``, epsilon inside the root).
    ``torch.optim.RMSprop`` is ``rmsprop(lr, decay=0.99, eps_in_sqrt=False,
    momentum=..., centered=..., weight_decay=..., maximize=...)``, which
    :class:`optimlab.optim.RMSprop` passes. Every numeric argument except
    ``initial_scale`` (read once, by ``init``) lives in the state and may be a
    schedule. A ``momentum`` or ``weight_decay`` of ``None`` (their defaults) leaves
    that term (and the momentum buffer) out; any number, ``0.0`` included, keeps
    it in the state, settable later.
    Complex parameters are optimized as optax does (a real average of
    :math:`|g|^2`), or componentwise as torch does with ``componentwise=True``
    (which :class:`optimlab.optim.RMSprop` passes). The momentum
    buffer holds :math:`b_t` (torch's), where optax's holds :math:`\eta\, b_t`;
    the two agree while the learning rate is constant.

    .. note::
        ``weight_decay`` and ``maximize`` are torch's; optax's ``rmsprop`` has
        neither.

    Args:
        learning_rate: :math:`\eta`.
        decay: :math:`\alpha \ge 0` (torch's ``alpha``; optax's default ``0.9``,
            torch's ``0.99``).
        eps: :math:`\epsilon \ge 0`.
        initial_scale: :math:`s_0`, the starting value of the average of squares.
        eps_in_sqrt: add :math:`\epsilon` inside the square root (optax's
            placement); ``False`` adds it to the root (torch's).
        centered: normalise by the estimated variance of the gradients.
        momentum: :math:`\mu \ge 0`, or ``None`` for none.
        nesterov: Nesterov momentum (optax's form; torch's RMSprop has none).
        bias_correction: correct the averages for their zero start (optax's option).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (torch's).
        maximize: maximise the objective (torch's).
        accumulator_dtype: storage dtype of the averages and the momentum buffer
            (math stays in float32 or wider).
        componentwise: complex parameters as pairs of reals (torch's rule).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.rmsprop(learning_rate=0.01, decay=0.75)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(x, 4) for x in optimlab.apply_updates(params, updates).tolist()]
        [0.98, -0.98]

    References:
        Hinton, `Neural Networks for Machine Learning, lecture 6e
        <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_,
        2012. Graves, `Generating Sequences With Recurrent Neural Networks
        <https://arxiv.org/abs/1308.0850>`_ (centered variant), 2013.
    """
    # torch.optim.RMSprop's order, so the first failing check is the same.
    _validate.lr(learning_rate)
    _validate.eps(eps)
    _validate.momentum(momentum)
    _validate.weight_decay(weight_decay)
    _validate.at_least_zero(decay, "alpha")
    numbers: dict[str, Any] = dict(learning_rate=learning_rate, decay=decay, eps=eps)
    terms = dict(weight_decay=weight_decay, momentum=momentum)
    _rules.check_args("rmsprop", **numbers, **terms, initial_scale=initial_scale)
    use_momentum = _validate.present(momentum)
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = torch_prefix(h, maximize=maximize, decay=use_decay)
        txs.append(
            scale_by_rmsprop(
                h["decay"],
                h["eps"],
                centered=centered,
                eps_in_sqrt=eps_in_sqrt,
                initial_scale=initial_scale,
                bias_correction=bias_correction,
                accumulator_dtype=accumulator_dtype,
                step=step if bias_correction else None,
                componentwise=componentwise,
            )
        )
        if use_momentum:
            # torch's buffer starts at zero, so its first step b_1 = g_1 / d_1 is
            # trace's first-step initialisation (no dampening).
            txs.append(
                trace(
                    h["momentum"],
                    nesterov=nesterov,
                    accumulator_dtype=accumulator_dtype,
                    step=step,
                )
            )
        txs.append(scale_by_learning_rate(h["learning_rate"]))
        return chain(*txs)

    return alias_hyperparams(build, **numbers, **optional(**terms))
