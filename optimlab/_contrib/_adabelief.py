"""AdaBelief: ``scale_by_belief`` and the ``adabelief`` alias."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _elementwise, _rules, _tree, _validate
from .._core._base import GradientTransformation, safe_increment
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import torch_style

__all__ = ["ScaleByBeliefState", "scale_by_belief", "adabelief"]


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment of the gradients.
        nu: second moment of the prediction error :math:`g_t - m_t` (``eps_root`` included).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


def scale_by_belief(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-16,
    eps_root: ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by the belief in the gradient, AdaBelief's direction.

    See :func:`adabelief` for the update rule; same numerics as
    ``optax.scale_by_belief``.

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_r`, added to the second moment at every step.
        nesterov: use Nesterov's look-ahead of the first moment.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByBeliefState`.
    """
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.eps(eps)
    _validate.non_negative(eps_root, "eps_root")
    _rules.check_args("scale_by_belief", b1=b1, b2=b2, eps=eps, eps_root=eps_root)

    def init_fn(params):
        count = None if step is not None else jnp.zeros([], jnp.int32)
        return ScaleByBeliefState(count, _tree.zeros_like(params), _tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_belief", updates, state.mu)
        count = step if step is not None else state.count
        d1 = jnp.asarray(b1)

        def one(g, m, v):
            gc = _tree.upcast(g)
            c1 = _tree.scalar_like(d1, gc)
            om1 = _tree.scalar_like(1 - d1, gc)
            m_new = om1 * gc + c1 * m.astype(gc.dtype)
            err = gc - m_new
            v_new = (
                _tree.scalar_like(1 - jnp.asarray(b2), gc) * _tree.abs_sq(err).astype(gc.dtype)
                + _tree.scalar_like(b2, gc) * v.astype(gc.dtype)
                + _tree.scalar_like(eps_root, gc)
            )
            bc1 = _tree.scalar_like(_tree.bias_correction(d1, count), gc)
            if nesterov:
                t2 = count.astype(d1.dtype) + 2
                bc1_next = _tree.scalar_like(1 - d1**t2, gc)
                m_hat = c1 * (m_new / bc1_next) + om1 * (gc / bc1)
            else:
                m_hat = m_new / bc1
            v_hat = v_new / _tree.scalar_like(_tree.bias_correction(b2, count), gc)
            direction = m_hat / (jnp.sqrt(v_hat) + _tree.scalar_like(eps, gc))
            return direction.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)

        u, mu, nu = _tree.tree_map_multi(one, 3, updates, state.mu, state.nu)
        new_count = None if step is not None else safe_increment(state.count)
        return u, ScaleByBeliefState(new_count, mu, nu)

    return _elementwise.declare(GradientTransformation(init_fn, update_fn))


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-16,
    eps_root: ScalarOrSchedule = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief: Adam with the second moment of the prediction error instead of the gradient.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        s_t &= \beta_2 s_{t-1} + (1-\beta_2)\, (g_t - m_t)^2 + \epsilon_r \\
        u_t &= -\eta\, \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    With ``nesterov=True``, :math:`m_t/(1-\beta_1^t)` is replaced by
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
    Same arguments and defaults as ``optax.adabelief``; every numeric argument
    lives in the state.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added outside the square root.
        eps_root: :math:`\epsilon_r \ge 0`, added to :math:`s_t` at every step.
        nesterov: use Nesterov's look-ahead of the first moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> tx = optimlab.adabelief(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> state = tx.init(params)
        >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state, params)
        >>> [round(float(x), 4) for x in updates]
        [-0.1111, 0.1111]

    References:
        Zhuang et al., `AdaBelief Optimizer: Adapting Stepsizes by the Belief in
        Observed Gradients <https://arxiv.org/abs/2010.07468>`_, 2020.
    """
    _validate.lr(learning_rate)
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.eps(eps)
    _validate.non_negative(eps_root, "eps_root")
    _rules.check_args(
        "adabelief", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )

    return torch_style(
        lambda step, h: scale_by_belief(
            h["b1"], h["b2"], h["eps"], h["eps_root"], nesterov=nesterov, step=step
        ),
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
