"""Polyak step sizes: ``scale_by_polyak`` and the ``polyak_sgd`` alias."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._stateless import stateless
from .._core._types import ArrayLike, ScalarOrSchedule
from .._transforms._alias import alias_hyperparams
from .._transforms._scale import scale

__all__ = ["scale_by_polyak", "polyak_sgd"]

_VARIANTS = ("sps", "sps+")
# optax compares against float64's machine epsilon whatever the dtype.
_TINY = float(np.finfo(np.float64).eps)


def _check_variant(variant: str) -> None:
    if variant not in _VARIANTS:
        raise ValueError(f"Invalid variant value: {variant!r} (must be one of {_VARIANTS})")


@_validate.checked_arguments
def scale_by_polyak(
    f_min: ArrayLike = 0.0,
    max_learning_rate: ArrayLike = 1.0,
    eps: ArrayLike = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""Scales updates by the Polyak step size, from the loss value given to ``update``.

    .. math::
        u \leftarrow \min\!\Big(\frac{f(p) - f^\star}{\lVert u \rVert^2 + \epsilon},
            \eta_{\max}\Big)\, u

    and :math:`u \leftarrow 0` where :math:`\lVert u \rVert^2 + \epsilon` is at most
    float64's machine epsilon. ``variant="sps+"`` clips the gap
    :math:`f(p) - f^\star` at zero. The norm is global over the tree. The loss is
    passed as ``update(updates, state, params, value=loss)``. Same as
    ``optax.scale_by_polyak``, except that an unknown ``variant`` is refused at
    construction, and a missing ``value`` raises a clear error.

    Args:
        f_min: :math:`f^\star`, a lower bound on (estimate of) the optimal loss.
        max_learning_rate: :math:`\eta_{\max} \ge 0`, a cap on the step size.
        eps: :math:`\epsilon \ge 0`, added to the squared norm.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    References:
        Loizou et al., `Stochastic Polyak Step-size for SGD: An Adaptive Learning
        Rate for Fast Convergence <https://arxiv.org/abs/2002.10542>`_, 2021.
    """
    _check_variant(variant)
    _validate.non_negative(max_learning_rate, "max_learning_rate")
    _validate.eps(eps)
    _rules.check_args("scale_by_polyak", f_min=f_min, max_learning_rate=max_learning_rate, eps=eps)

    def scaled(updates, params, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "scale_by_polyak: the loss value is missing; pass it as "
                "update(updates, state, params, value=loss)."
            )
        leaves = [_tree.upcast(u) for u in jax.tree.leaves(updates)]
        reals = [jnp.finfo(u.dtype).dtype for u in leaves]
        with jax.numpy_dtype_promotion("standard"):  # the widest real dtype, even under strict
            dtype = functools.reduce(jnp.promote_types, reals, jnp.dtype(jnp.float32))
        sq = sum((jnp.sum(jnp.abs(u) ** 2).astype(dtype) for u in leaves), jnp.zeros((), dtype))
        gap = jnp.asarray(value).astype(dtype) - _tree.scalar_like(f_min, sq)
        if variant == "sps+":
            gap = jnp.maximum(gap, jnp.zeros_like(gap))
        denom = sq + _tree.scalar_like(eps, sq)
        step = jnp.minimum(gap / denom, _tree.scalar_like(max_learning_rate, sq))
        step = jnp.where(denom <= _TINY, jnp.zeros_like(step), step)

        def one(u):
            uc = _tree.upcast(u)
            return (uc * _tree.hp(step, uc).astype(uc.dtype)).astype(u.dtype)

        return _tree.tree_map(one, updates)

    return stateless(scaled)


@_validate.checked_arguments
def polyak_sgd(
    max_learning_rate: ScalarOrSchedule = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""SGD with the Polyak step size (SPS), computed from the loss value at each step.

    With :math:`d_t = -s\, g_t` (``scaling`` :math:`s`) and the loss
    :math:`f(p_{t-1})` passed as ``update(grads, state, params, value=loss)``:

    .. math::
        \gamma_t &= \min\!\Big(\frac{f(p_{t-1}) - f^\star}{\lVert d_t \rVert^2 + \epsilon},
            \eta_{\max}\Big) \quad (\gamma_t = 0 \text{ if } \lVert d_t \rVert^2 + \epsilon
            \le 2^{-52}) \\
        u_t &= \gamma_t\, d_t

    With ``variant="sps+"`` the gap :math:`f - f^\star` is clipped at zero. Same
    arguments, defaults and numerics as ``optax.polyak_sgd`` (including the
    norm being taken after scaling); an unknown ``variant`` is refused at
    construction. The four numbers live in the state.

    Args:
        max_learning_rate: :math:`\eta_{\max} \ge 0`.
        scaling: :math:`s \ge 0`, a scalar or a schedule.
        f_min: :math:`f^\star`, a lower bound on the optimal loss.
        eps: :math:`\epsilon \ge 0`.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        A :class:`~optimlab.GradientTransformation` whose ``update`` needs ``value=``.

    Examples:
        >>> f = lambda p: jnp.sum(p ** 2)
        >>> tx = optimlab.polyak_sgd()
        >>> params = jnp.array([1.0, -2.0])
        >>> loss, grads = jax.value_and_grad(f)(params)
        >>> updates, _ = tx.update(grads, tx.init(params), params, value=loss)
        >>> optimlab.apply_updates(params, updates)
        Array([ 0.5, -1. ], dtype=float32)

    References:
        Loizou et al., `Stochastic Polyak Step-size for SGD: An Adaptive Learning
        Rate for Fast Convergence <https://arxiv.org/abs/2002.10542>`_, 2021.
    """
    _check_variant(variant)
    _validate.non_negative(max_learning_rate, "max_learning_rate")
    _validate.non_negative(scaling, "scaling")
    _validate.eps(eps)
    _rules.check_args(
        "polyak_sgd", max_learning_rate=max_learning_rate, scaling=scaling, f_min=f_min, eps=eps
    )

    def build(step, h):
        del step
        return chain(
            scale(-h["scaling"]),
            scale_by_polyak(h["f_min"], h["max_learning_rate"], h["eps"], variant),
        )

    return alias_hyperparams(
        build, max_learning_rate=max_learning_rate, scaling=scaling, f_min=f_min, eps=eps
    )
