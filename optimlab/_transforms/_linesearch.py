r"""Zoom line search: optax's strong-Wolfe zoom line search as a gradient transformation.

The search looks for a step :math:`\eta` along the incoming updates :math:`u`
that satisfies the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and
3.6): first it grows the step until an interval holding such a step is bracketed,
then it shrinks that interval by cubic, quadratic or bisection guesses. Every
comparison and every floating-point operation follows ``optax.scale_by_zoom_linesearch``.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._core._base import GradientTransformation, safe_increment
from .._core._types import ArrayLike
from .._core._validate import checked_arguments

__all__ = [
    "ZoomLinesearchInfo",
    "ScaleByZoomLinesearchState",
    "scale_by_zoom_linesearch",
]


# --- tree arithmetic, in optax's order of operations -------------------------------


def _leaf_vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = jnp.asarray(a), jnp.asarray(b)
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        a = jnp.conj(a)
    return jnp.tensordot(a, b, a.ndim, precision=lax.Precision.HIGHEST)


def tree_vdot(x: Any, y: Any) -> jax.Array:
    """``sum_i <conj(x_i), y_i>`` over the leaves, summed left to right from 0."""
    # 0 + t is t: the same as optax's sum from 0.
    return functools.reduce(operator.add, jax.tree.leaves(jax.tree.map(_leaf_vdot, x, y)))


def tree_add_scale(x: Any, s: ArrayLike, y: Any) -> Any:
    """``x + s * y`` leaf by leaf."""
    s = jnp.asarray(s)
    return jax.tree.map(lambda a, b: a + s.astype(b.dtype) * b, x, y)


def tree_cast_like(tree: Any, like: Any) -> Any:
    """Each leaf of ``tree`` in the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda t, o: t.astype(o.dtype) if hasattr(o, "dtype") else t, tree, like)


def _where(cond: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), on_true, on_false)


def _real_dtype(params: Any) -> jnp.dtype:
    return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


# --- interpolation -------------------------------------------------------------------


def _cubic_min(a, fa, fpa, b, fb, c, fc):
    """Minimiser of the cubic through ``(a, fa)`` with slope ``fpa``, ``(b, fb)``, ``(c, fc)``."""
    db = b - a
    dc = c - a
    denom = (db * dc) ** 2 * (db - dc)
    mat = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    coef_a, coef_b = jnp.dot(mat, rhs, precision=lax.Precision.HIGHEST) / denom
    radical = coef_b * coef_b - 3.0 * coef_a * fpa
    return a + (-coef_b + jnp.sqrt(radical)) / (3.0 * coef_a)


def _quad_min(a, fa, fpa, b, fb):
    """Minimiser of the quadratic through ``(a, fa)`` with slope ``fpa`` and ``(b, fb)``."""
    db = b - a
    curv = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curv)


# --- the search -----------------------------------------------------------------------


class _Search(NamedTuple):
    count: jax.Array
    params: Any
    updates: Any
    stepsize_guess: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    value_init: jax.Array
    slope_init: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any


class _Zoom:
    """The step, condition and error functions of one configured zoom search."""

    def __init__(self, max_steps, max_stepsize, tol, increase, c1, c2, approx_dec_rtol, threshold):
        self.max_steps = max_steps
        self.max_stepsize = max_stepsize
        self.tol = tol
        self.increase = increase
        self.c1 = c1
        self.c2 = c2
        self.approx_dec_rtol = approx_dec_rtol
        self.threshold = threshold

    def probe(self, vg, fn_kwargs, params, stepsize, updates):
        value, grad = vg(tree_add_scale(params, stepsize, updates), **fn_kwargs)
        slope = jnp.real(tree_vdot(jax.tree.map(jnp.conj, grad), updates))
        return value, grad, slope

    def decrease_error(self, stepsize, value, slope, value_init, slope_init):
        # Armijo's sufficient decrease, or Hager & Zhang's approximate version.
        err = value - value_init - self.c1 * stepsize * slope_init
        if self.approx_dec_rtol is not None:
            approx = slope - (2 * self.c1 - 1.0) * slope_init
            delta = value - value_init - self.approx_dec_rtol * jnp.abs(value_init)
            err = jnp.minimum(jnp.maximum(approx, delta), err)
        err = jnp.maximum(err, 0.0)
        return jnp.where(jnp.isnan(err), jnp.inf, err)

    def curvature_error(self, slope, slope_init):
        err = jnp.maximum(jnp.abs(slope) - self.c2 * jnp.abs(slope_init), 0.0)
        return jnp.where(jnp.isnan(err), jnp.inf, err)

    def safe_step(self, s: _Search) -> _Search:
        """On failure: the best step with sufficient decrease, if any was seen."""
        take_safe = (s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error)
        stepsize, value, grad = _where(
            take_safe, (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
        )
        return tree_cast_like(s._replace(stepsize=stepsize, value=value, grad=grad), s)

    def bracket(self, s: _Search, vg, fn_kwargs) -> _Search:
        """Phase one: grow the step until an interval holding a Wolfe step is found."""
        step = jnp.where(s.count == 0, s.stepsize_guess, self.increase * s.stepsize)
        if self.max_stepsize is not None:
            at_max = step >= self.max_stepsize
            step = jnp.minimum(step, self.max_stepsize)
        else:
            at_max = jnp.asarray(False)
        value, grad, slope = self.probe(vg, fn_kwargs, s.params, step, s.updates)
        dec = self.decrease_error(step, value, slope, s.value_init, s.slope_init)
        curv = self.curvature_error(slope, s.slope_init)
        err = jnp.maximum(dec, curv)
        safe = dec <= self.tol
        safe_stepsize, safe_value, safe_grad = _where(
            safe, (step, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad)
        )
        high_is_new = (dec > 0.0) | ((value >= s.value) & (s.count > 0))
        low_is_new = (slope >= 0.0) & ~high_is_new
        prev = (s.stepsize, s.value, s.slope)
        new = (step, value, slope)
        (low, value_low, slope_low), (high, value_high, slope_high) = _where(
            low_is_new, (new, prev), (prev, new)
        )
        found = high_is_new | low_is_new | (err <= self.tol)
        done = (err <= self.tol) | (at_max & ~found)
        failed = (s.count + 1 >= self.max_steps) & ~done
        out = _Search(
            safe_increment(s.count), s.params, s.updates, s.stepsize_guess, step, value, grad,
            slope, s.value_init, s.slope_init, dec, curv, err, jnp.asarray(found),
            jnp.asarray(done), jnp.asarray(failed), low, value_low, slope_low, high, value_high,
            slope_high, low, value_low, safe_stepsize, safe_value, safe_grad,
        )  # fmt: skip
        return tree_cast_like(out, s)

    def zoom(self, s: _Search, vg, fn_kwargs) -> _Search:
        """Phase two: shrink the bracketing interval ``[low, high]``."""
        delta = jnp.abs(s.high - s.low)
        left = jnp.minimum(s.high, s.low)
        right = jnp.maximum(s.high, s.low)
        cubic = _cubic_min(
            s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref, s.value_cubic_ref
        )
        use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
        quad = _quad_min(s.low, s.value_low, s.slope_low, s.high, s.value_high)
        use_quad = ~use_cubic & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
        use_bisection = ~use_cubic & ~use_quad
        middle = jnp.where(use_cubic, cubic, s.cubic_ref)
        middle = jnp.where(use_quad, quad, middle)
        middle = jnp.where(use_bisection, (s.low + s.high) / 2.0, middle)
        value, grad, slope = self.probe(vg, fn_kwargs, s.params, middle, s.updates)
        dec = self.decrease_error(middle, value, slope, s.value_init, s.slope_init)
        curv = self.curvature_error(slope, s.slope_init)
        err = jnp.maximum(dec, curv)
        better_safe = (dec <= self.tol) & (value < s.safe_value)
        safe_stepsize, safe_value, safe_grad = _where(
            better_safe, (middle, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad)
        )
        done = err <= self.tol
        high_is_middle = (dec > 0.0) | (value >= s.value_low)
        high_is_low = (slope * (s.high - s.low) >= 0.0) & ~high_is_middle
        low_is_middle = ~high_is_middle
        mid = (middle, value, slope)
        low = (s.low, s.value_low, s.slope_low)
        high = _where(high_is_middle, mid, (s.high, s.value_high, s.slope_high))
        high = _where(high_is_low, low, high)
        new_low = _where(low_is_middle, mid, low)
        cubic_ref, value_cubic_ref = _where(
            high_is_middle | high_is_low, (s.high, s.value_high), (s.low, s.value_low)
        )
        too_small = delta <= self.threshold
        maybe_failed = jnp.asarray((s.count + 1) >= self.max_steps) | (
            too_small & (safe_stepsize > 0.0)
        )
        low_at, value_low, slope_low = new_low
        high_at, value_high, slope_high = high
        out = _Search(
            safe_increment(s.count), s.params, s.updates, s.stepsize_guess, middle, value, grad,
            slope, s.value_init, s.slope_init, dec, curv, err, s.interval_found, done,
            maybe_failed & ~done, low_at, value_low, slope_low, high_at, value_high, slope_high,
            cubic_ref, value_cubic_ref, safe_stepsize, safe_value, safe_grad,
        )  # fmt: skip
        return tree_cast_like(out, s)

    def start(self, updates, params, value, grad, stepsize_guess) -> _Search:
        dtype = _real_dtype(params)
        value = jnp.asarray(value, dtype)
        slope = jnp.real(tree_vdot(updates, grad)).astype(dtype)
        zero = jnp.asarray(0.0, dtype)
        inf = jnp.asarray(jnp.inf, dtype)
        false = jnp.asarray(False)
        return _Search(
            jnp.asarray(0, jnp.int32), params, updates, jnp.asarray(stepsize_guess, dtype), zero,
            value, grad, slope, value, slope, inf, inf, inf, false, false, false, zero, value,
            slope, zero, value, slope, zero, value, zero, value, grad,
        )  # fmt: skip

    def step(self, s: _Search, vg, fn_kwargs) -> _Search:
        new = lax.cond(
            s.interval_found,
            functools.partial(self.zoom, vg=vg, fn_kwargs=fn_kwargs),
            functools.partial(self.bracket, vg=vg, fn_kwargs=fn_kwargs),
            s,
        )
        new = lax.cond(new.failed, self.safe_step, lambda x: x, new)
        return tree_cast_like(new, s)

    @staticmethod
    def going(s: _Search) -> jax.Array:
        return ~(s.done | s.failed)


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did.

    Attributes:
        num_linesearch_steps: the function evaluations it made (int32).
        decrease_error: how far the chosen step is from sufficient decrease (0 when met).
        curvature_error: how far it is from the curvature condition (0 when met).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of :func:`scale_by_zoom_linesearch`.

    Attributes:
        learning_rate: the step the last search accepted.
        value: the objective at the accepted step (``inf`` before the first update).
        grad: the gradient there (zeros before the first update).
        info: a :class:`ZoomLinesearchInfo`.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: ZoomLinesearchInfo


def _split_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]):
    names = list(inspect.signature(fn).parameters)
    return {k: v for k, v in kwargs.items() if k in names}, sorted(
        k for k in kwargs if k not in names
    )


@checked_arguments
def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: ArrayLike | None = None,
    tol: ArrayLike = 0.0,
    increase_factor: ArrayLike = 2.0,
    slope_rtol: ArrayLike = 1e-4,
    curv_rtol: ArrayLike = 0.9,
    approx_dec_rtol: ArrayLike | None = 1e-6,
    stepsize_precision: ArrayLike = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales updates by a step satisfying the strong Wolfe conditions (optax's zoom search).

    With :math:`f` the objective (``value_fn``), :math:`w` the params and :math:`u`
    the incoming updates (a descent direction), the search looks for
    :math:`\eta > 0` such that

    .. math::
        f(w + \eta u) &\le f(w) + c_1 \eta\, \nabla f(w)^\top u
            \quad\text{(sufficient decrease)} \\
        |\nabla f(w + \eta u)^\top u| &\le c_2\, |\nabla f(w)^\top u|
            \quad\text{(curvature)}

    with :math:`c_1` = ``slope_rtol`` and :math:`c_2` = ``curv_rtol``, up to ``tol``.
    When ``approx_dec_rtol`` is set, the sufficient decrease may be met instead by
    Hager & Zhang's approximate condition :math:`\nabla f(w+\eta u)^\top u \le
    (2 c_1 - 1) \nabla f(w)^\top u` with :math:`f(w + \eta u) \le f(w) +
    \epsilon |f(w)|`. The first phase tries :math:`\eta_0` (1, or the previous
    step under ``initial_guess_strategy="keep"``), then multiplies it by
    ``increase_factor`` until an interval holding an acceptable step is bracketed;
    the second phase shrinks the interval with the minimiser of a cubic (kept
    when it lies in the middle 60%), else of a quadratic (middle 80%), else the
    midpoint. After ``max_linesearch_steps`` evaluations, or once the interval is
    shorter than ``stepsize_precision``, the best step with sufficient decrease
    (if any) is taken. The update is :math:`\eta u`; the value and gradient at
    the new params are kept in the state for :func:`value_and_grad_from_state`.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)``
    needs the objective's ``value`` and ``grad`` at ``params`` and ``value_fn``;
    extra keyword arguments are passed to ``value_fn`` when it names them.

    Args:
        max_linesearch_steps: the most function evaluations per search.
        max_learning_rate: an upper bound on :math:`\eta` (``None``: none).
        tol: the tolerance on both conditions.
        increase_factor: the growth of the step while bracketing.
        slope_rtol: :math:`c_1`.
        curv_rtol: :math:`c_2`.
        approx_dec_rtol: :math:`\epsilon` of the approximate decrease condition
            (``None`` turns it off).
        stepsize_precision: the shortest interval worth zooming into.
        initial_guess_strategy: ``"keep"`` (start from the last accepted step) or
            ``"one"``.
        verbose: accepted for optax's signature; no diagnostics are printed.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> def f(x):
        ...     return jnp.sum((x - 1.0) ** 2)
        >>> tx = optimlab.scale_by_zoom_linesearch(max_linesearch_steps=15)
        >>> params = jnp.zeros(2)
        >>> value, grad = optimlab.value_and_grad_from_state(f)(params, state=tx.init(params))
        >>> updates, state = tx.update(-grad, tx.init(params), params,
        ...                            value=value, grad=grad, value_fn=f)
        >>> float(state.learning_rate), float(f(params + updates))
        (0.5, 0.0)

    References:
        Nocedal & Wright, `Numerical Optimization
        <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006, Algorithms 3.5
        and 3.6. Hager & Zhang, `A new conjugate gradient method with guaranteed
        descent and an efficient line search <https://doi.org/10.1137/030601880>`_, 2005.
    """
    if initial_guess_strategy not in ("keep", "one"):
        raise ValueError(
            "scale_by_zoom_linesearch: initial_guess_strategy must be 'keep' or 'one', "
            f"got {initial_guess_strategy!r}."
        )
    search = _Zoom(
        max_linesearch_steps,
        max_learning_rate,
        tol,
        increase_factor,
        slope_rtol,
        curv_rtol,
        approx_dec_rtol,
        stepsize_precision,
    )

    def init_fn(params):
        dtype = _real_dtype(params)
        inf = jnp.asarray(jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=inf,
            grad=jax.tree.map(jnp.zeros_like, params),
            info=ZoomLinesearchInfo(jnp.asarray(0, jnp.int32), inf, inf),
        )

    def update_fn(updates, state, params=None, *, value, grad, value_fn, **extra_args):
        if params is None:
            raise ValueError("scale_by_zoom_linesearch: update needs params.")
        fn_kwargs, unused = _split_kwargs(value_fn, extra_args)
        if unused:
            raise TypeError(
                "scale_by_zoom_linesearch: keyword arguments not taken by value_fn: "
                f"{unused}. Pass only arguments value_fn accepts."
            )
        vg = jax.value_and_grad(value_fn)
        guess = 1.0 if initial_guess_strategy == "one" else state.learning_rate
        start = search.start(updates, params, value, grad, guess)
        end = lax.while_loop(
            search.going, functools.partial(search.step, vg=vg, fn_kwargs=fn_kwargs), start
        )
        new_updates = jax.tree.map(lambda u: end.stepsize.astype(u.dtype) * u, updates)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=end.stepsize,
            value=end.value,
            grad=end.grad,
            info=ZoomLinesearchInfo(end.count, end.decrease_error, end.curvature_error),
        )
        return new_updates, tree_cast_like(new_state, state)

    return GradientTransformation(init_fn, update_fn)
