"""L-BFGS with torch's numerics: its state and one iteration (private).

The pieces :func:`~optimlab.torch_lbfgs`, :func:`~optimlab.minimize` and
:class:`optimlab.optim.LBFGS` compose: the flat state, the two-loop recursion
and one ``step`` of torch's ``LBFGS.step`` (up to ``max_iter`` iterations, with or
without the strong-Wolfe line search), as a ``lax.while_loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from .._core import _tree
from .._core._base import safe_increment
from .._core._types import ArrayLike, Params
from ._linesearch import strong_wolfe

__all__ = [
    "CURVATURE_EPS",
    "Carry",
    "LBFGSInfo",
    "LBFGSState",
    "direction",
    "flat_dtype",
    "flatten",
    "init_state",
    "step",
    "value_and_grad",
]

# torch accepts a history pair only when its curvature y.s exceeds this.
CURVATURE_EPS = 1e-10


class LBFGSState(NamedTuple):
    """What ``torch.optim.LBFGS`` keeps between two ``step`` calls, as flat arrays.

    The parameters are flattened into one vector of ``n`` entries (complex leaves
    as their real and imaginary parts, as torch's ``view_as_real``). The history
    is a ring buffer of ``history_size`` slots; entry ``i`` (0 the oldest) of the
    torch lists ``old_dirs``/``old_stps``/``ro`` sits in slot
    ``(history_start + i) % history_size`` for ``i < history_count``.

    Attributes:
        d: the last search direction (torch's ``d``), shape ``(n,)``.
        t: the last step size (torch's ``t``).
        old_dirs: gradient differences ``y`` (torch's ``old_dirs``), ``(history_size, n)``.
        old_stps: parameter steps ``s`` (torch's ``old_stps``), ``(history_size, n)``.
        ro: ``1 / (y . s)`` per pair (torch's ``ro``), ``(history_size,)``.
        history_start: slot of the oldest pair (int32).
        history_count: number of valid pairs (int32), at most ``history_size``.
        H_diag: the scale of the initial inverse Hessian (torch's ``H_diag``).
        prev_flat_grad: the gradient at the start of the last iteration.
        prev_loss: the loss at the start of the last iteration.
        n_iter: iterations done over all steps (torch's ``n_iter``, int32).
        func_evals: loss evaluations over all steps (torch's ``func_evals``, int32).
    """

    d: jax.Array
    t: jax.Array
    old_dirs: jax.Array
    old_stps: jax.Array
    ro: jax.Array
    history_start: jax.Array
    history_count: jax.Array
    H_diag: jax.Array
    prev_flat_grad: jax.Array
    prev_loss: jax.Array
    n_iter: jax.Array
    func_evals: jax.Array


class LBFGSInfo(NamedTuple):
    """What one :func:`minimize` call reports besides the parameters and the state.

    Attributes:
        loss: the loss at the parameters given, as ``torch.optim.LBFGS.step`` returns.
        last_loss: the loss at the last evaluation. Without a line search, the last
            iteration is not re-evaluated (as in torch), so this is then the loss at
            the start of that iteration.
        iterations: iterations done in this call.
        evaluations: loss evaluations done in this call (the first one included).
    """

    loss: jax.Array
    last_loss: jax.Array
    iterations: jax.Array
    evaluations: jax.Array


def flat_dtype(params: Params) -> jnp.dtype:
    dtypes = [
        _tree.compute_dtype(jnp.real(jnp.zeros((), jnp.asarray(p).dtype)).dtype)
        for p in jax.tree.leaves(params)
    ]
    dtype = dtypes[0] if dtypes else jnp.dtype(jnp.float32)
    with jax.numpy_dtype_promotion("standard"):
        for d in dtypes[1:]:
            dtype = jnp.promote_types(dtype, d)
    return jnp.dtype(dtype)


def flatten(params: Params) -> tuple[jax.Array, Callable[[jax.Array], Params]]:
    """One real vector for a pytree, and the map back (leaf shapes and dtypes restored)."""
    dtype = flat_dtype(params)

    def to_real(p):
        p = jnp.asarray(p)
        if jnp.iscomplexobj(p):
            p = jnp.stack([jnp.real(p), jnp.imag(p)], axis=-1)
        return p.astype(dtype)

    flat, unravel = ravel_pytree(_tree.tree_map(to_real, params))

    def unflatten(vec):
        def back(p, r):
            p = jnp.asarray(p)
            if jnp.iscomplexobj(p):
                r = lax.complex(r[..., 0], r[..., 1])
            return r.astype(p.dtype)

        return _tree.tree_map(back, params, unravel(vec))

    return flat, unflatten


def init_state(params: Params, history_size: int) -> LBFGSState:
    flat, _ = flatten(params)
    n, dt = flat.shape[0], flat.dtype

    def zero():
        return jnp.zeros((), dt)

    def izero():
        return jnp.zeros((), jnp.int32)

    return LBFGSState(
        d=jnp.zeros((n,), dt),
        t=zero(),
        old_dirs=jnp.zeros((history_size, n), dt),
        old_stps=jnp.zeros((history_size, n), dt),
        ro=jnp.zeros((history_size,), dt),
        history_start=izero(),
        history_count=izero(),
        H_diag=jnp.ones((), dt),
        prev_flat_grad=jnp.zeros((n,), dt),
        prev_loss=zero(),
        n_iter=izero(),
        func_evals=izero(),
    )


def direction(g: jax.Array, s: LBFGSState) -> LBFGSState:
    """Stores the new curvature pair (when ``y.s > 1e-10``) and runs the two-loop recursion."""
    m = s.ro.shape[0]
    y = g - s.prev_flat_grad
    step = s.d * s.t
    ys = jnp.dot(y, step)
    accept = ys > jnp.asarray(CURVATURE_EPS, ys.dtype)
    slot = (s.history_start + s.history_count) % m
    full = s.history_count == m
    old_dirs = s.old_dirs.at[slot].set(jnp.where(accept, y, s.old_dirs[slot]))
    old_stps = s.old_stps.at[slot].set(jnp.where(accept, step, s.old_stps[slot]))
    ro = s.ro.at[slot].set(jnp.where(accept, 1.0 / ys, s.ro[slot]))
    start = jnp.where(accept & full, (s.history_start + 1) % m, s.history_start)
    count = jnp.where(accept & ~full, s.history_count + 1, s.history_count)
    h_diag = jnp.where(accept, ys / jnp.dot(y, y), s.H_diag)

    def backward(j, carry):
        q, al = carry
        i = (start + count - 1 - j) % m
        a = jnp.dot(old_stps[i], q) * ro[i]
        return q + (-a) * old_dirs[i], al.at[i].set(a)

    q, al = lax.fori_loop(0, count, backward, (-g, jnp.zeros_like(ro)))

    def forward(j, r):
        i = (start + j) % m
        be = jnp.dot(old_dirs[i], r) * ro[i]
        return r + (al[i] - be) * old_stps[i]

    d = lax.fori_loop(0, count, forward, q * h_diag)
    return s._replace(
        d=d,
        old_dirs=old_dirs,
        old_stps=old_stps,
        ro=ro,
        history_start=start,
        history_count=count,
        H_diag=h_diag,
    )


class Carry(NamedTuple):
    x: jax.Array
    loss: jax.Array
    grad: jax.Array
    state: LBFGSState
    n_iter: jax.Array  # iterations in this call
    evals: jax.Array  # evaluations in this call
    done: jax.Array


def step(vg, x, loss, grad, state: LBFGSState, h, line_search: bool):
    """One ``torch.optim.LBFGS.step``, given the loss and gradient already evaluated at ``x``.

    ``vg(x) -> (loss, flat gradient)`` re-evaluates the objective. ``h`` holds the
    numeric options as arrays. Returns the final ``Carry``.
    """
    dt = x.dtype
    lr = h["learning_rate"].astype(dt)
    tol_grad = h["tolerance_grad"].astype(dt)
    tol_change = h["tolerance_change"].astype(dt)
    max_iter = h["max_iter"].astype(jnp.int32)
    max_eval = h["max_eval"].astype(jnp.int32)
    one = jnp.ones((), jnp.int32)

    def body(c: Carry) -> Carry:
        n_iter = c.n_iter + one
        s = c.state._replace(n_iter=safe_increment(c.state.n_iter))
        first = s.n_iter == 1
        fresh = s._replace(
            d=-c.grad,
            history_start=jnp.zeros_like(s.history_start),
            history_count=jnp.zeros_like(s.history_count),
            H_diag=jnp.ones_like(s.H_diag),
        )
        s = lax.cond(first, lambda: fresh, lambda: direction(c.grad, s))
        d = s.d
        inv = 1.0 / jnp.sum(jnp.abs(c.grad))
        scaled = jnp.where(inv < 1, inv, jnp.ones((), dt)) * lr  # Python's min(1.0, inv)
        t = jnp.where(first, scaled, lr)
        s = s._replace(t=t, prev_flat_grad=c.grad, prev_loss=c.loss)
        gtd = jnp.dot(c.grad, d)

        def move(_):
            if line_search:

                def obj(step):
                    return vg(c.x + step * d)

                loss, grad, t_ls, ls_evals = strong_wolfe(
                    obj, t, d, c.loss, c.grad, gtd, max_ls=max_eval - c.evals
                )
                x = c.x + t_ls * d
            else:
                t_ls = t
                x = c.x + t * d
                loss, grad, ls_evals = lax.cond(
                    n_iter != max_iter, lambda: (*vg(x), one), lambda: (c.loss, c.grad, 0 * one)
                )
            evals = c.evals + ls_evals
            s2 = s._replace(t=t_ls, func_evals=c.state.func_evals + ls_evals)
            opt_cond = jnp.max(jnp.abs(grad)) <= tol_grad
            stop = (
                (n_iter == max_iter)
                | (evals >= max_eval)
                | opt_cond
                | (jnp.max(jnp.abs(d * t_ls)) <= tol_change)
                | (jnp.abs(loss - s.prev_loss) < tol_change)
            )
            return Carry(x, loss, grad, s2, n_iter, evals, stop)

        def skip(_):  # the directional derivative is below tolerance: stop without moving
            return Carry(c.x, c.loss, c.grad, s, n_iter, c.evals, jnp.ones((), bool))

        return lax.cond(gtd > -tol_change, skip, move, None)

    state = state._replace(func_evals=safe_increment(state.func_evals))
    done = jnp.max(jnp.abs(grad)) <= tol_grad
    start = Carry(x, loss, grad, state, jnp.zeros((), jnp.int32), one, done)
    return lax.while_loop(lambda c: ~c.done & (c.n_iter < max_iter), body, start)


def value_and_grad(fun: Callable[[Params], ArrayLike], unflatten, dtype):
    def vg(v):
        f, g = jax.value_and_grad(lambda w: fun(unflatten(w)))(v)
        return jnp.asarray(f).astype(dtype), g.astype(dtype)

    return vg
