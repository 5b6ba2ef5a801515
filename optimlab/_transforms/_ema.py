"""optax's moving average, operation for operation (private).

optax updates a moment as ``(1 - decay) * g + decay * m``. The torch-parity
families use :func:`~optimlab._core._tree.update_moment` instead (torch's
``lerp``, ``m + (1 - decay) * (g - m)``), which can differ in the last bit; the
families that match optax (Adan, Yogi, AdaBelief, Lion, Signum, NovoGrad, SM3)
share this one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._types import ArrayLike

__all__ = ["ema"]


def ema(g: jax.Array, m: jax.Array, decay: ArrayLike) -> jax.Array:
    r""":math:`(1-\beta)\, g + \beta\, m`, with :math:`\beta` = ``decay`` cast to ``g``'s dtype.

    ``1 - decay`` is formed in the hyperparameter's own precision before the cast
    (float64 under x64), as optax forms it in Python floats. ``m`` must already be
    in ``g``'s dtype.
    """
    return _tree.scalar_like(1 - jnp.asarray(decay), g) * g + _tree.scalar_like(decay, g) * m
