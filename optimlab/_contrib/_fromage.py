"""Fromage: the ``fromage`` alias (Frobenius matched gradient descent)."""

from __future__ import annotations

import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._stateless import stateless
from .._core._types import ArrayLike, ScalarOrSchedule
from .._transforms._alias import alias_hyperparams
from ._lamb import scale_by_trust_ratio

__all__ = ["fromage"]


def _fromage_step(learning_rate: ArrayLike) -> GradientTransformation:
    """``u <- -lr * u / sqrt(1 + lr**2) + (1 / sqrt(1 + lr**2) - 1) * p``."""

    def shrunk(updates, params, **extra_args):
        del extra_args
        lr = jnp.asarray(learning_rate)
        mult = 1 / jnp.sqrt(1 + lr * lr)  # in the hyperparameter's precision

        def one(u, p):
            uc = _tree.upcast(u)
            out = uc * _tree.scalar_like(-(lr * mult), uc) + _tree.scalar_like(
                mult - 1, uc
            ) * _tree.upcast(p).astype(uc.dtype)
            return out.astype(u.dtype)

        return _tree.tree_map(one, updates, params)

    return stateless(shrunk, needs_params="fromage")


@_validate.checked_arguments
def fromage(
    learning_rate: ScalarOrSchedule,
    min_norm: ScalarOrSchedule = 1e-6,
) -> GradientTransformation:
    r"""Fromage: a per-layer step of relative size :math:`\eta`, then a shrink.

    For each leaf (layer), with norms floored at ``min_norm``:

    .. math::
        p_t = \frac{1}{\sqrt{1+\eta^2}}\Big(p_{t-1}
            - \eta\, \frac{\lVert p_{t-1} \rVert}{\lVert g_t \rVert}\, g_t\Big),
        \qquad u_t = p_t - p_{t-1}

    Same arguments and defaults as ``optax.fromage``. Both numbers live in the
    state. The shrink moves the parameters even when the gradient is zero. Complex
    parameters are optimized as optax does (per-leaf norms :math:`\sqrt{\sum |x|^2}`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        min_norm: floor on both norms (so zero parameters and zero gradients are safe).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.fromage(learning_rate=0.75)
        >>> params = jnp.array([3.0, 4.0])
        >>> updates, _ = tx.update(jnp.array([0.0, 1.0]), tx.init(params), params)
        >>> [round(float(x), 4) for x in optimlab.apply_updates(params, updates)]
        [2.4, 0.2]

    References:
        Bernstein et al., `On the distance between two neural networks and the
        stability of learning <https://arxiv.org/abs/2002.03432>`_, 2020.
    """
    _validate.lr(learning_rate)
    _validate.non_negative(min_norm, "min_norm")
    _rules.check_args("fromage", learning_rate=learning_rate, min_norm=min_norm)

    def build(step, h):
        del step
        return chain(scale_by_trust_ratio(h["min_norm"]), _fromage_step(h["learning_rate"]))

    return alias_hyperparams(build, learning_rate=learning_rate, min_norm=min_norm)
