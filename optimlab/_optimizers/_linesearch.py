"""torch.optim.LBFGS's strong-Wolfe line search as nested ``lax.while_loop``s (private).

A port of the arithmetic of ``torch.optim.lbfgs._strong_wolfe`` and
``_cubic_interpolate`` (themselves ports of ``lswolfe.lua`` and ``polyinterp.lua``
from torch7), written so that every branch taken, and every floating-point
operation on the way, is the one torch takes. Used by :func:`optimlab.torch_lbfgs` and
:func:`optimlab.minimize`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["cubic_interpolate", "strong_wolfe"]

#: ``obj(t) -> (f, g)``: the loss and flat gradient at ``x + t * d``.
Objective = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def _py_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``max(a, b)``: ``a`` unless ``b > a`` (so a NaN ``a`` is kept)."""
    return jnp.where(b > a, b, a)


def _py_min(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``min(a, b)``: ``a`` unless ``b < a``."""
    return jnp.where(b < a, b, a)


def cubic_interpolate(
    x1: jax.Array,
    f1: jax.Array,
    g1: jax.Array,
    x2: jax.Array,
    f2: jax.Array,
    g2: jax.Array,
    bounds: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """Minimiser of the cubic through two points with values and slopes, clamped to bounds.

    Follows ``torch.optim.lbfgs._cubic_interpolate`` operation by operation: without
    ``bounds`` the interval is ``[min(x1, x2), max(x1, x2)]``; when the cubic has no
    real minimiser, the midpoint of the bounds is returned.
    """
    if bounds is None:
        lo = jnp.where(x1 <= x2, x1, x2)
        hi = jnp.where(x1 <= x2, x2, x1)
    else:
        lo, hi = bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    real = d2_square >= 0
    d2 = jnp.sqrt(jnp.where(real, d2_square, jnp.zeros_like(d2_square)))
    min_pos = jnp.where(
        x1 <= x2,
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)),
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)),
    )
    return jnp.where(real, _py_min(_py_max(min_pos, lo), hi), (lo + hi) / 2.0)


class _Bracketing(NamedTuple):
    t: jax.Array
    f_new: jax.Array
    g_new: jax.Array
    gtd_new: jax.Array
    t_prev: jax.Array
    f_prev: jax.Array
    g_prev: jax.Array
    gtd_prev: jax.Array
    ls_iter: jax.Array
    evals: jax.Array


class _Zoom(NamedTuple):
    bracket: jax.Array  # (2,) step sizes
    bracket_f: jax.Array  # (2,)
    bracket_g: jax.Array  # (2, n)
    bracket_gtd: jax.Array  # (2,)
    low: jax.Array  # index of the lower-loss end
    done: jax.Array
    insuf_progress: jax.Array
    ls_iter: jax.Array
    evals: jax.Array


def strong_wolfe(
    obj: Objective,
    t: jax.Array,
    d: jax.Array,
    f: jax.Array,
    g: jax.Array,
    gtd: jax.Array,
    *,
    max_ls: jax.Array,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Finds a step satisfying the strong Wolfe conditions, as torch's ``_strong_wolfe``.

    A bracketing phase (cubic extrapolation between ``0.01`` and ``10`` times the
    last step) followed by a zoom phase (cubic interpolation, moved ``10%`` of the
    bracket away from its ends when progress is insufficient), ``max_ls`` loss
    evaluations after the first at most.

    Args:
        obj: ``t -> (loss, flat gradient)`` at ``x + t * d``.
        t: the initial step size.
        d: the search direction.
        f: the loss at ``x``.
        g: the flat gradient at ``x``.
        gtd: ``g . d`` (negative for a descent direction).
        max_ls: the largest number of iterations (int32, possibly traced).
        c1: sufficient-decrease constant.
        c2: curvature constant.
        tolerance_change: the zoom stops once the bracket times ``max|d|`` is smaller.

    Returns:
        ``(loss, gradient, step size, number of evaluations)`` at the accepted step.
    """
    dt = d.dtype
    c1_t = jnp.asarray(c1, dt)
    c2_t = jnp.asarray(c2, dt)
    tol = jnp.asarray(tolerance_change, dt)
    zero = jnp.zeros((), dt)
    d_norm = jnp.max(jnp.abs(d))

    def value(t):
        f_new, g_new = obj(t)
        return f_new, g_new, jnp.dot(g_new, d)

    f_new, g_new, gtd_new = value(t)
    one = jnp.ones((), jnp.int32)

    def armijo_fails(c: _Bracketing):
        return (c.f_new > f + c1_t * c.t * gtd) | ((c.ls_iter > 1) & (c.f_new >= c.f_prev))

    def wolfe_holds(gtd_new):
        return jnp.abs(gtd_new) <= -c2_t * gtd

    def bracketing_cond(c: _Bracketing):
        found = armijo_fails(c) | wolfe_holds(c.gtd_new) | (c.gtd_new >= 0)
        return (c.ls_iter < max_ls) & ~found

    def bracketing_body(c: _Bracketing):
        min_step = c.t + 0.01 * (c.t - c.t_prev)
        max_step = c.t * 10
        t_next = cubic_interpolate(
            c.t_prev, c.f_prev, c.gtd_prev, c.t, c.f_new, c.gtd_new, bounds=(min_step, max_step)
        )
        f_next, g_next, gtd_next = value(t_next)
        return _Bracketing(
            t_next,
            f_next,
            g_next,
            gtd_next,
            c.t,
            c.f_new,
            c.g_new,
            c.gtd_new,
            c.ls_iter + one,
            c.evals + one,
        )

    b = lax.while_loop(
        bracketing_cond,
        bracketing_body,
        _Bracketing(t, f_new, g_new, gtd_new, zero, f, g, gtd, jnp.zeros((), jnp.int32), one),
    )

    # Which way the bracketing phase ended, in torch's order of tests.
    exhausted = b.ls_iter == max_ls
    done = ~exhausted & ~armijo_fails(b) & wolfe_holds(b.gtd_new)
    start_t = jnp.where(exhausted, zero, b.t_prev)
    start_f = jnp.where(exhausted, f, b.f_prev)
    start_g = jnp.where(exhausted, g, b.g_prev)
    start_gtd = jnp.where(exhausted, gtd, b.gtd_prev)
    # A one-point bracket (Wolfe already holds) is stored as that point twice.
    bracket = jnp.stack([jnp.where(done, b.t, start_t), b.t])
    bracket_f = jnp.stack([jnp.where(done, b.f_new, start_f), b.f_new])
    bracket_g = jnp.stack([jnp.where(done, b.g_new, start_g), b.g_new])
    bracket_gtd = jnp.stack([jnp.where(done, b.gtd_new, start_gtd), b.gtd_new])
    low = jnp.where(bracket_f[0] <= bracket_f[1], 0, 1).astype(jnp.int32)

    def zoom_cond(z: _Zoom):
        tiny = jnp.abs(z.bracket[1] - z.bracket[0]) * d_norm < tol
        return ~z.done & (z.ls_iter < max_ls) & ~tiny

    def zoom_body(z: _Zoom):
        br = z.bracket
        t = cubic_interpolate(
            br[0], z.bracket_f[0], z.bracket_gtd[0], br[1], z.bracket_f[1], z.bracket_gtd[1]
        )
        hi_b = _py_max(br[0], br[1])
        lo_b = _py_min(br[0], br[1])
        eps = 0.1 * (hi_b - lo_b)
        near_end = _py_min(hi_b - t, t - lo_b) < eps
        move = near_end & (z.insuf_progress | (t >= hi_b) | (t <= lo_b))
        moved = jnp.where(jnp.abs(t - hi_b) < jnp.abs(t - lo_b), hi_b - eps, lo_b + eps)
        t = jnp.where(move, moved, t)
        insuf = near_end & ~move

        f_new, g_new, gtd_new = value(t)
        low, high = z.low, 1 - z.low
        higher = (f_new > f + c1_t * t * gtd) | (f_new >= z.bracket_f[low])
        wolfe = ~higher & wolfe_holds(gtd_new)
        flip = ~higher & ~wolfe & (gtd_new * (br[high] - br[low]) >= 0)
        # Where the new point goes: the high end if it is higher, else the low end
        # (after the old low end replaces the high end when the slope says so).
        slot = jnp.where(higher, high, low)

        def put(arr, new):
            arr = jnp.where(flip, arr.at[high].set(arr[low]), arr)
            return arr.at[slot].set(new)

        bracket = put(br, t)
        bracket_f = put(z.bracket_f, f_new)
        bracket_g = put(z.bracket_g, g_new)
        bracket_gtd = put(z.bracket_gtd, gtd_new)
        new_low = jnp.where(bracket_f[0] <= bracket_f[1], 0, 1).astype(jnp.int32)
        return _Zoom(
            bracket,
            bracket_f,
            bracket_g,
            bracket_gtd,
            jnp.where(higher, new_low, low),
            wolfe,
            insuf,
            z.ls_iter + one,
            z.evals + one,
        )

    z = lax.while_loop(
        zoom_cond,
        zoom_body,
        _Zoom(
            bracket,
            bracket_f,
            bracket_g,
            bracket_gtd,
            low,
            done,
            jnp.zeros((), bool),
            b.ls_iter,
            b.evals,
        ),
    )
    return z.bracket_f[z.low], z.bracket_g[z.low], z.bracket[z.low], z.evals
