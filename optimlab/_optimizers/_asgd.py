"""Averaged SGD: the ``scale_by_asgd`` primitive, the ``asgd`` alias and its averaged iterate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _paths, _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, Params, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional, torch_prefix

__all__ = ["ScaleByAsgdState", "scale_by_asgd", "asgd", "asgd_averaged_params"]


class ScaleByAsgdState(NamedTuple):
    """State of :func:`scale_by_asgd`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        eta: the step size for the next step (float32 scalar, as torch's ``eta``).
        mu: the averaging weight for the next step (float32 scalar, torch's ``mu``).
        ax: the averaged iterate (torch's ``ax``); read it with
            :func:`asgd_averaged_params`.
    """

    count: jax.Array | None
    eta: jax.Array
    mu: jax.Array
    ax: Updates


def _check_finite(lambd: Any, alpha: Any, t0: Any) -> None:
    for name, value in (("lambd", lambd), ("alpha", alpha), ("t0", t0)):
        _validate.finite(value, name)


@checked_arguments
def scale_by_asgd(
    learning_rate: ArrayLike = 1e-2,
    lambd: ArrayLike = 1e-4,
    alpha: ArrayLike = 0.75,
    t0: ArrayLike = 1e6,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""ASGD's decayed step and iterate averaging with torch's numerics; returns the descent update.

    See :func:`asgd` for the update rule. The returned update moves the params
    from :math:`p_{t-1}` to :math:`p_t` (it includes the step size, so no learning
    rate follows it), and the state keeps the running average :math:`\bar p_t`.
    ``eta`` and ``mu`` are held as float32 scalars, as torch holds them.

    Args:
        learning_rate: :math:`\eta_0`.
        lambd: the decay term :math:`\lambda`.
        alpha: the power :math:`\alpha` of the step-size decay.
        t0: the step :math:`t_0` at which averaging starts.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAsgdState`.

    Examples:
        >>> tx = optimlab.scale_by_asgd(0.1, lambd=0.0)
        >>> p = jnp.ones(2)
        >>> [round(float(x), 4) for x in tx.update(jnp.ones(2), tx.init(p), p)[0]]
        [-0.1, -0.1]
    """
    _rules.check_args("scale_by_asgd", learning_rate=learning_rate, lambd=lambd, alpha=alpha, t0=t0)
    _check_finite(lambd, alpha, t0)

    def initial():
        return jnp.asarray(learning_rate).astype(jnp.float32), jnp.ones([], jnp.float32)

    def prepare(count, eta, mu):
        eta64 = eta.astype(jnp.result_type(float))  # torch reads eta with .item()
        scalars = {"shrink": 1 - jnp.asarray(lambd) * eta64, "eta64": eta64, "mu": mu}
        lr = jnp.asarray(learning_rate)
        t = _tree.step_as(
            count, lr.dtype if jnp.issubdtype(lr.dtype, jnp.floating) else jnp.result_type(float)
        )
        new_eta = (lr / (1 + jnp.asarray(lambd) * lr * t) ** jnp.asarray(alpha)).astype(jnp.float32)
        new_mu = (1 / jnp.maximum(t - jnp.asarray(t0).astype(t.dtype), 1)).astype(jnp.float32)
        return scalars, (new_eta, new_mu)

    def rule(g, p, ax, shrink, eta64, mu):
        new_p = p * _tree.scalar_like(shrink, g) - g * _tree.scalar_like(eta64, g)
        new_ax = jnp.where(mu == 1, new_p, ax + (new_p - ax) * _tree.scalar_like(mu, g))
        return new_p - p, new_ax

    return lift(
        "scale_by_asgd",
        rule,
        ScaleByAsgdState,
        (Slot(),),
        step=step,
        prepare=prepare,
        shared=initial,
        with_params=True,
    )


@checked_arguments
def asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: ScalarOrSchedule = 1e-4,
    alpha: ScalarOrSchedule = 0.75,
    t0: ScalarOrSchedule = 1e6,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
) -> GradientTransformation:
    r"""Averaged stochastic gradient descent, numerically identical to ``torch.optim.ASGD``.

    With :math:`g_t = \pm\nabla f(p_{t-1}) + w\, p_{t-1}` (sign flipped by
    ``maximize``, L2 penalty :math:`w` added to the gradient), :math:`\eta_0` the
    learning rate and :math:`\mu_0 = 1`:

    .. math::
        p_t &= p_{t-1}\,(1 - \lambda \eta_{t-1}) - \eta_{t-1}\, g_t \\
        \bar p_t &= \bar p_{t-1} + \mu_{t-1}\,(p_t - \bar p_{t-1})
            \quad (\bar p_t = p_t \text{ when } \mu_{t-1} = 1) \\
        \eta_t &= \eta_0 / (1 + \lambda \eta_0 t)^{\alpha}, \qquad
        \mu_t = 1 / \max(1, t - t_0)

    The params follow :math:`p_t`; the averaged iterate :math:`\bar p_t` (the
    quantity with ASGD's convergence guarantees) is kept in the state and read with
    :func:`asgd_averaged_params`. Complex params are supported. As torch, the
    learning rate enters :math:`\eta_t` at the end of each step, so a new
    learning rate takes effect one step after it is set.

    Args:
        learning_rate: :math:`\eta_0`.
        lambd: the decay term :math:`\lambda`.
        alpha: the power :math:`\alpha` for the step-size decay.
        t0: the step :math:`t_0` at which averaging starts.
        weight_decay: L2 penalty :math:`w` added to the gradient.
        maximize: maximise the objective.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.asgd(learning_rate=0.1, t0=0.0)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> for _ in range(3):
        ...     updates, state = tx.update(params, state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> [round(float(x), 3) for x in optimlab.asgd_averaged_params(state)]
        [0.769, -0.769]

    References:
        Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging
        <https://doi.org/10.1137/0330046>`_, 1992.
    """
    _validate.lr(learning_rate)
    _validate.weight_decay(weight_decay)
    _check_finite(lambd, alpha, t0)
    _rules.check_args(
        "asgd",
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        lambd=lambd,
        alpha=alpha,
        t0=t0,
    )
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        prefix = torch_prefix(h, maximize=maximize, decay=use_decay)
        return chain(
            *prefix, scale_by_asgd(h["learning_rate"], h["lambd"], h["alpha"], h["t0"], step=step)
        )

    return alias_hyperparams(
        build,
        learning_rate=learning_rate,
        lambd=lambd,
        alpha=alpha,
        t0=t0,
        **optional(weight_decay=weight_decay),
    )


@checked_arguments
def asgd_averaged_params(state: Any) -> Params:
    r"""Returns the averaged iterate held in an :func:`asgd` (or :func:`scale_by_asgd`) state.

    Args:
        state: a state containing a :class:`ScaleByAsgdState`.

    Returns:
        The averaged params :math:`\bar p_t` (torch's ``ax``), with the params' structure.

    Raises:
        ValueError: the state holds no :class:`ScaleByAsgdState`.

    Examples:
        >>> state = optimlab.asgd().init({"w": jnp.ones(2)})
        >>> optimlab.asgd_averaged_params(state)["w"]
        Array([0., 0.], dtype=float32)
    """
    found = [x for _, x in _paths.find_nodes(state, ScaleByAsgdState)]
    if not found:
        raise ValueError(
            "asgd_averaged_params: the state holds no ScaleByAsgdState; pass the "
            "state of an asgd optimizer."
        )
    return found[0].ax
