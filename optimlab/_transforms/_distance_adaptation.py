r"""What D-Adaptation AdamW and Prodigy share: Adam scaled by a distance estimate (private).

Both keep Adam's two moments, a weighted sum :math:`s_t` of the scaled gradients,
and an estimate :math:`d_t` of the distance to the solution that only grows; both
take the step :math:`\hat\eta_t = d_t\,\eta\,\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and
add the decoupled decay :math:`-\lambda\,\hat\eta_t\,x_t`. The pieces they write
the same way are here; each family keeps its own moments and estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._core import _tree, _validate
from .._core._step_count import current_count, initial_count

__all__ = ["adam_ratio", "decayed_direction", "grown", "initial", "step_count"]


def initial(
    name: str, params: Any, estim_lr0: Any, step: jax.Array | None
) -> tuple[jax.Array | None, tuple[Any, Any, Any], jax.Array, jax.Array]:
    """A fresh state's ``(count, (m, v, s), d_0, r_0)``: zero moments and sum, ``r_0 = 0``.

    ``count`` is ``None`` when an enclosing optimizer supplies ``step``. Complex
    params are refused, naming ``name``.
    """
    _tree.reject_complex(name, params)
    sd = _tree.scalar_dtype(params)
    count = initial_count(step)
    zeros = (_tree.zeros_like(params), _tree.zeros_like(params), _tree.zeros_like(params))
    return count, zeros, jnp.asarray(estim_lr0).astype(sd), jnp.zeros([], sd)


def step_count(name: str, updates: Any, state: Any, params: Any, step: jax.Array | None) -> Any:
    """Checks the updates against ``state.exp_avg`` and that params are given; the count."""
    _tree.check_match(name, updates, state.exp_avg)
    _validate.require_params(name, params)
    return current_count(step, state)


def adam_ratio(count: jax.Array, b1: jax.Array, b2: jax.Array, dtype: Any) -> jax.Array:
    r""":math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)` at the 1-based step, cast to ``dtype``.

    Formed in the betas' own precision (float64 under x64, as optax's Python floats).
    """
    t = _tree.step_as(count, b2.dtype)
    return (jnp.sqrt(1 - b2**t) / (1 - b1**t)).astype(dtype)


def grown(d: jax.Array, numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """``max(d, numerator / denominator)``, or ``d`` while the denominator is zero.

    optax divides unguarded: zero gradients so far give 0/0 = NaN.
    """
    estimate = numerator / jnp.where(denominator > 0, denominator, 1)
    return jnp.where(denominator > 0, jnp.maximum(d, estimate), d)


def decayed_direction(
    direction: Callable[..., jax.Array],
    wd: jax.Array,
    dlr: jax.Array,
    updates: Any,
    m: Any,
    v: Any,
    params: Any,
) -> Any:
    r"""Per leaf, ``direction(m, v, sc)`` minus the decay :math:`\lambda\,\hat\eta_t\,x_t`.

    ``m``, ``v`` and ``x`` are upcast to at least float32, ``sc`` casts a scalar to
    their dtype, and the result is cast to the gradient's dtype. ``wd`` is
    :math:`\lambda` (zero when the alias has no decay) and ``dlr`` is :math:`\hat\eta_t`.
    """

    def one(g, m_, v_, p):
        pc = _tree.upcast(p)
        sc = lambda x: _tree.scalar_like(x, pc)
        out = direction(_tree.upcast(m_), _tree.upcast(v_), sc)
        out = out - sc(wd) * sc(dlr) * pc
        return out.astype(g.dtype)

    return _tree.tree_map(one, updates, m, v, params)
