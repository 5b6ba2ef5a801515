"""Sign-based descent: ``scale_by_sign`` with the ``sign_sgd`` and ``signum`` aliases."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import EmptyState, GradientTransformation
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, RealDType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import torch_style

__all__ = ["ScaleBySignumState", "scale_by_sign", "scale_by_signum", "sign_sgd", "signum"]


@checked_arguments
def scale_by_sign() -> GradientTransformation:
    r"""Replaces every update element by its sign.

    .. math:: u \leftarrow \operatorname{sign}(u)

    Zero stays zero. Complex updates are refused (their "sign" is not a descent
    direction one can take a fixed step along).

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.scale_by_sign()
        >>> tx.update(jnp.array([-3.0, 0.0, 0.5]), tx.init(jnp.zeros(3)))[0]
        Array([-1.,  0.,  1.], dtype=float32)
    """
    return lift(
        "scale_by_sign",
        lambda g: (jnp.sign(g),),
        EmptyState,
        (),
        counter=False,
        check_params=functools.partial(_tree.reject_complex, "scale_by_sign"),
    )


class ScaleBySignumState(NamedTuple):
    """State of :func:`scale_by_signum`.

    Attributes:
        ema: the exponential moving average of the updates (not bias-corrected).
    """

    ema: Updates


@checked_arguments
def scale_by_signum(
    beta: ArrayLike = 0.9, *, accumulator_dtype: RealDType | None = None
) -> GradientTransformation:
    r"""The sign of an exponential moving average of the updates (Signum's direction).

    .. math:: m_t = \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad u_t = \operatorname{sign}(m_t)

    The average is not bias-corrected: a positive correction cannot change a sign.
    See :func:`signum`.

    Args:
        beta: :math:`\beta \in [0, 1)`.
        accumulator_dtype: storage dtype of the average (default: the params').

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleBySignumState`.
    """
    _validate.in_range(beta, "beta", 0.0, 1.0, hi_open=True)
    _rules.check_args("scale_by_signum", beta=beta)

    def rule(g, m):
        new = _tree.ema(g, m, beta)
        return jnp.sign(new), new

    return lift(
        "scale_by_signum",
        rule,
        ScaleBySignumState,
        (Slot(accumulator_dtype),),
        counter=False,
        check_params=functools.partial(_tree.reject_complex, "scale_by_signum"),
    )


@checked_arguments
def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    r"""signSGD: a fixed-size step along the sign of each gradient element.

    .. math:: u_t = -\eta\, \operatorname{sign}(g_t)

    Same as ``optax.sign_sgd``. The learning rate lives in the state.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.sign_sgd(learning_rate=0.1)
        >>> params = jnp.array([1.0, -2.0, 0.0])
        >>> updates, _ = tx.update(jnp.array([3.0, -0.01, 0.0]), tx.init(params), params)
        >>> updates
        Array([-0.1,  0.1, -0. ], dtype=float32)

    References:
        Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
        <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    _validate.lr(learning_rate)
    _rules.check_args("sign_sgd", learning_rate=learning_rate)

    return torch_style(lambda step, h: scale_by_sign(), learning_rate=learning_rate)


@checked_arguments
def signum(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
    accumulator_dtype: RealDType | None = None,
) -> GradientTransformation:
    r"""Signum: signSGD with momentum, a fixed-size step along the sign of a moving average.

    .. math::
        m_t &= \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad m_0 = 0 \\
        u_t &= -\eta\, \operatorname{sign}(m_t)

    Same as ``optax.signum`` (same arguments and defaults). ``learning_rate`` and
    ``beta`` live in the state.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        beta: :math:`\beta \in [0, 1)`.
        accumulator_dtype: storage dtype of :math:`m` (default: the params').

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.signum(learning_rate=0.1, beta=0.9)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> _, state = tx.update(jnp.array([1.0, -1.0]), state, params)
        >>> updates, _ = tx.update(jnp.array([-0.5, -1.0]), state, params)
        >>> updates
        Array([-0.1,  0.1], dtype=float32)

    References:
        Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
        <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    _validate.lr(learning_rate)
    _validate.in_range(beta, "beta", 0.0, 1.0, hi_open=True)
    _rules.check_args("signum", learning_rate=learning_rate, beta=beta)

    return torch_style(
        lambda step, h: scale_by_signum(h["beta"], accumulator_dtype=accumulator_dtype),
        learning_rate=learning_rate,
        beta=beta,
        owner="signum",
    )
