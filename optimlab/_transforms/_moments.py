"""Pieces the Adam-style primitives share: checks, moment slots, the corrected mean (private).

``scale_by_adam``, ``scale_by_adamax``, ``scale_by_radam`` and ``scale_by_nadam``
check ``b1``, ``b2`` and ``eps`` the same way, keep a first and a second moment
per leaf, and (Adam and RAdam) divide the first moment by its bias correction,
optionally with Nesterov's look-ahead. Each piece is written once here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._lift import Slot
from .._core._types import DType

__all__ = ["check_betas_eps", "check_moments", "corrected_mu", "moment_slots", "nonzero"]


def check_betas_eps(b1: Any, b2: Any, eps: Any) -> None:
    """``b1``, ``b2`` and ``eps``, in that order, with torch's wording."""
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.eps(eps)


def check_moments(
    name: str,
    b1: Any,
    b2: Any,
    eps: Any,
    *,
    then: Callable[[], None] | None = None,
    **extra: Any,
) -> None:
    """A primitive's checks: :func:`check_betas_eps`, ``then``, then each number's rule.

    ``then``: the primitive's further checks with their own wording. ``extra``:
    its further numbers, checked by their rules after ``eps``.
    """
    check_betas_eps(b1, b2, eps)
    if then is not None:
        then()
    _rules.check_args(name, b1=b1, b2=b2, eps=eps, **extra)


def nonzero(value: Any) -> bool:
    """Whether an optional term is given and not a concrete zero (a schedule counts)."""
    return value is not None and _validate.concrete(value) != 0.0


def moment_slots(
    mu_dtype: DType | None, nu_dtype: DType | None, *, real: bool
) -> tuple[Slot, Slot]:
    """The first and second moments' slots; ``real``: the second stored real for complex params."""
    return Slot(mu_dtype, "mu_dtype"), Slot(nu_dtype, "nu_dtype", real=real)


def corrected_mu(g: jax.Array, m: jax.Array, b1: Any, bc1: Any, bc1_next: Any = None) -> jax.Array:
    r"""The bias-corrected first moment :math:`m_t / (1-\beta_1^t)`, in ``g``'s dtype.

    With ``bc1_next`` (:math:`1-\beta_1^{t+1}`), Nesterov's look-ahead instead
    (optax's): :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.
    """
    if bc1_next is None:
        # A product with the reciprocal, not a quotient: XLA rewrites one into the
        # other or not depending on how many kernels read ``bc1`` (see scale_by_adam).
        return m * (1 / _tree.scalar_like(bc1, g))
    look_ahead = _tree.scalar_like(b1, g) * (m / _tree.scalar_like(bc1_next, g))
    return look_ahead + _tree.scalar_like(1 - jnp.asarray(b1), g) * (g / _tree.scalar_like(bc1, g))
