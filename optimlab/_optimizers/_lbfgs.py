"""L-BFGS with torch's numerics: the ``torch_lbfgs`` alias and the jitted ``minimize`` driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, safe_increment
from .._core._hyperparams import hyperparam_dtype, with_hyperparams
from .._core._types import ArrayLike, Params
from ._linesearch import strong_wolfe

__all__ = ["LBFGSState", "LBFGSInfo", "torch_lbfgs", "minimize"]

# torch accepts a history pair only when its curvature y.s exceeds this.
_CURVATURE_EPS = 1e-10


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


def _flat_dtype(params: Params) -> jnp.dtype:
    dtypes = [
        _tree.compute_dtype(jnp.real(jnp.zeros((), jnp.asarray(p).dtype)).dtype)
        for p in jax.tree.leaves(params)
    ]
    dtype = dtypes[0] if dtypes else jnp.dtype(jnp.float32)
    with jax.numpy_dtype_promotion("standard"):
        for d in dtypes[1:]:
            dtype = jnp.promote_types(dtype, d)
    return jnp.dtype(dtype)


def _flatten(params: Params) -> tuple[jax.Array, Callable[[jax.Array], Params]]:
    """One real vector for a pytree, and the map back (leaf shapes and dtypes restored)."""
    dtype = _flat_dtype(params)

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


def _init_state(params: Params, history_size: int) -> LBFGSState:
    flat, _ = _flatten(params)
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


def _direction(g: jax.Array, s: LBFGSState) -> LBFGSState:
    """Stores the new curvature pair (when ``y.s > 1e-10``) and runs the two-loop recursion."""
    m = s.ro.shape[0]
    y = g - s.prev_flat_grad
    step = s.d * s.t
    ys = jnp.dot(y, step)
    accept = ys > jnp.asarray(_CURVATURE_EPS, ys.dtype)
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


class _Carry(NamedTuple):
    x: jax.Array
    loss: jax.Array
    grad: jax.Array
    state: LBFGSState
    n_iter: jax.Array  # iterations in this call
    evals: jax.Array  # evaluations in this call
    done: jax.Array


def _step(vg, x, loss, grad, state: LBFGSState, h, line_search: bool):
    """One ``torch.optim.LBFGS.step``, given the loss and gradient already evaluated at ``x``.

    ``vg(x) -> (loss, flat gradient)`` re-evaluates the objective. ``h`` holds the
    numeric options as arrays. Returns the final ``_Carry``.
    """
    dt = x.dtype
    lr = h["learning_rate"].astype(dt)
    tol_grad = h["tolerance_grad"].astype(dt)
    tol_change = h["tolerance_change"].astype(dt)
    max_iter = h["max_iter"].astype(jnp.int32)
    max_eval = h["max_eval"].astype(jnp.int32)
    one = jnp.ones((), jnp.int32)

    def body(c: _Carry) -> _Carry:
        n_iter = c.n_iter + one
        s = c.state._replace(n_iter=safe_increment(c.state.n_iter))
        first = s.n_iter == 1
        fresh = s._replace(
            d=-c.grad,
            history_start=jnp.zeros_like(s.history_start),
            history_count=jnp.zeros_like(s.history_count),
            H_diag=jnp.ones_like(s.H_diag),
        )
        s = lax.cond(first, lambda: fresh, lambda: _direction(c.grad, s))
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
            return _Carry(x, loss, grad, s2, n_iter, evals, stop)

        def skip(_):  # the directional derivative is below tolerance: stop without moving
            return _Carry(c.x, c.loss, c.grad, s, n_iter, c.evals, jnp.ones((), bool))

        return lax.cond(gtd > -tol_change, skip, move, None)

    state = state._replace(func_evals=safe_increment(state.func_evals))
    done = jnp.max(jnp.abs(grad)) <= tol_grad
    start = _Carry(x, loss, grad, state, jnp.zeros((), jnp.int32), one, done)
    return lax.while_loop(lambda c: ~c.done & (c.n_iter < max_iter), body, start)


def _int_option(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | jnp.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    _validate.check(value > 0, f"Invalid {name} value: {value} (must be > 0)")
    return int(value)


def _check_options(learning_rate, max_iter, max_eval, history_size, line_search_fn) -> int:
    """Validates the options torch validates (and the integer ones); returns ``max_eval``."""
    _validate.lr(learning_rate)
    max_iter = _int_option("max_iter", max_iter)
    max_eval = max_iter * 5 // 4 if max_eval is None else _int_option("max_eval", max_eval)
    _int_option("history_size", history_size)
    if line_search_fn is not None and line_search_fn != "strong_wolfe":
        raise ValueError(f"only 'strong_wolfe' is supported, got line_search_fn={line_search_fn!r}")
    return max_eval


def _check_state(state: Any, flat: jax.Array, history_size: int, where: str) -> None:
    if not isinstance(state, LBFGSState):
        raise ValueError(
            f"{where}: expected an LBFGSState, got {type(state).__name__}. Pass the state "
            "returned by minimize (or the inner_state of lbfgs(...).init(params))."
        )
    if state.d.shape != flat.shape or state.d.dtype != flat.dtype:
        raise ValueError(
            f"{where}: the state is for {state.d.shape[0]} {state.d.dtype} entries but the "
            f"params flatten to {flat.shape[0]} {flat.dtype} entries."
        )
    if state.ro.shape[0] != history_size:
        raise ValueError(
            f"{where}: the state holds a history of {state.ro.shape[0]} pairs but "
            f"history_size={history_size}."
        )


def _value_and_grad(fun: Callable[[Params], ArrayLike], unflatten, dtype):
    def vg(v):
        f, g = jax.value_and_grad(lambda w: fun(unflatten(w)))(v)
        return jnp.asarray(f).astype(dtype), g.astype(dtype)

    return vg


def _minimize(fun, params, state, h, line_search):
    x, unflatten = _flatten(params)
    vg = _value_and_grad(fun, unflatten, x.dtype)
    loss, grad = vg(x)
    c = _step(vg, x, loss, grad, state, h, line_search)
    return unflatten(c.x), c.state, LBFGSInfo(loss, c.loss, c.n_iter, c.evals)


_minimize_jit = jax.jit(_minimize, static_argnames=("fun", "line_search"))


def minimize(
    fun: Callable[[Params], ArrayLike],
    params: Params,
    *,
    state: LBFGSState | None = None,
    learning_rate: ArrayLike = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: ArrayLike = 1e-7,
    tolerance_change: ArrayLike = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> tuple[Params, LBFGSState, LBFGSInfo]:
    """Runs what one ``torch.optim.LBFGS.step(closure)`` call does, as one jitted call.

    Evaluates ``fun`` and its gradient at ``params``, then runs up to ``max_iter``
    L-BFGS iterations (see :func:`lbfgs` for the rule) inside one
    ``lax.while_loop``, with torch's stopping rules: ``max_iter`` iterations,
    ``max_eval`` evaluations, ``max|g| <= tolerance_grad``, a step or a loss
    change below ``tolerance_change``, or a directional derivative above
    ``-tolerance_change``. Calling it again with the returned ``state`` continues
    exactly as a second ``step(closure)`` does. Numeric options are traced, so
    changing them does not recompile; ``fun``, ``history_size`` and
    ``line_search_fn`` are static (a new ``fun`` object compiles anew).

    Args:
        fun: the objective, ``params -> real scalar``, differentiable by JAX.
        params: the starting point, any pytree (complex leaves are optimized as their
            real and imaginary parts, as torch does).
        state: the state returned by a previous call, or ``None`` to start afresh.
        learning_rate: the step size (torch's ``lr``).
        max_iter: the most iterations in this call.
        max_eval: the most evaluations in this call (default ``max_iter * 5 // 4``).
        tolerance_grad: stop once the largest gradient entry is at most this.
        tolerance_change: stop once a step or a loss change is below this.
        history_size: the number of curvature pairs kept.
        line_search_fn: ``None`` (fixed step) or ``"strong_wolfe"``.

    Returns:
        ``(params, state, info)``: the new parameters (same tree and dtypes), the
        :class:`LBFGSState` to pass to the next call, and an :class:`LBFGSInfo`
        whose ``loss`` is the loss at the given params (what torch's ``step`` returns).

    Examples:
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> def rosenbrock(p):
        ...     return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2
        >>> params = {"x": jnp.array(-1.0), "y": jnp.array(1.5)}
        >>> params, state, info = optimlab.minimize(
        ...     rosenbrock, params, max_iter=100, line_search_fn="strong_wolfe")
        >>> round(float(info.loss), 2), round(float(params["x"]), 4), round(float(params["y"]), 4)
        (29.0, 1.0, 1.0)

    References:
        Nocedal & Wright, `Numerical Optimization
        <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006 (algorithms 7.4
        and 3.5-3.6).
    """
    max_eval = _check_options(learning_rate, max_iter, max_eval, history_size, line_search_fn)
    if state is None:
        state = _init_state(params, history_size)
    else:
        _check_state(state, _flatten(params)[0], history_size, "minimize")
    hdt = hyperparam_dtype()
    h = {
        "learning_rate": jnp.asarray(learning_rate).astype(hdt),
        "tolerance_grad": jnp.asarray(tolerance_grad).astype(hdt),
        "tolerance_change": jnp.asarray(tolerance_change).astype(hdt),
        "max_iter": jnp.asarray(max_iter, jnp.int32),
        "max_eval": jnp.asarray(max_eval, jnp.int32),
    }
    return _minimize_jit(fun, params, state, h, line_search_fn == "strong_wolfe")


def _transform(h, history_size: int, line_search: bool, single: bool) -> GradientTransformation:
    def init_fn(params):
        return _init_state(params, history_size)

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        del grad, extra_args
        if params is not None:
            _tree.check_match("lbfgs", updates, params, what="params")
        g, unflatten = _flatten(updates)
        dt = state.d.dtype
        g = g.astype(dt)
        if value_fn is None:
            if not single:
                raise ValueError(
                    "lbfgs: without value_fn, update does one iteration with a fixed step, "
                    "which is torch's LBFGS with max_iter=1 and no line search; build "
                    "lbfgs(max_iter=1) for that, or pass value_fn=<loss of params> (with "
                    "params and value=<loss at params>) to run the whole torch step."
                )
            x = jnp.zeros_like(g)  # the update is x_new - x = t * d exactly
            loss = jnp.zeros((), dt) if value is None else jnp.asarray(value).astype(dt)

            def vg(v):  # never called: one iteration is never re-evaluated
                del v
                return loss, g

            h_run = dict(h, max_iter=jnp.ones((), jnp.int32))
        else:
            if params is None or value is None:
                raise ValueError(
                    "lbfgs: with value_fn, update needs params and value=<the loss at params> "
                    "(updates being the gradient at params)."
                )
            x, unflatten_params = _flatten(params)
            x = x.astype(dt)
            _check_state(state, x, history_size, "lbfgs")
            loss = jnp.asarray(value).astype(dt)
            vg = _value_and_grad(value_fn, unflatten_params, dt)
            h_run = h
        if g.shape != state.d.shape:
            raise ValueError(
                f"lbfgs: the updates flatten to {g.shape[0]} entries but the state "
                f"is for {state.d.shape[0]}."
            )
        c = _step(vg, x, loss, g, state, h_run, line_search)
        return unflatten(c.x - x), c.state

    return GradientTransformation(init_fn, update_fn)


def torch_lbfgs(
    learning_rate: ArrayLike = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: ArrayLike = 1e-7,
    tolerance_change: ArrayLike = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> GradientTransformation:
    r"""L-BFGS, numerically identical to ``torch.optim.LBFGS``.

    At iteration :math:`k`, with gradient :math:`g_k`, the last direction
    :math:`d_{k-1}` and step :math:`t_{k-1}`, the pair :math:`s = t_{k-1} d_{k-1}`,
    :math:`y = g_k - g_{k-1}` joins the history (the oldest pair leaves once
    ``history_size`` are kept) only if :math:`y^\top s > 10^{-10}`, and then
    :math:`\gamma = y^\top s / y^\top y`. The two-loop recursion gives the direction:

    .. math::
        q &\leftarrow -g_k;\quad \alpha_i = \rho_i\, s_i^\top q,\quad
            q \leftarrow q - \alpha_i y_i \quad (i = \text{newest} \dots \text{oldest}) \\
        r &\leftarrow \gamma\, q;\quad \beta_i = \rho_i\, y_i^\top r,\quad
            r \leftarrow r + (\alpha_i - \beta_i)\, s_i \quad (i = \text{oldest} \dots
            \text{newest}),\qquad d_k = r \\
        x_{k+1} &= x_k + t_k d_k,\qquad t_1 = \eta \min(1, 1/\|g_1\|_1),\quad
            t_k = \eta \ (k > 1)

    with :math:`\rho_i = 1/(y_i^\top s_i)`, :math:`d_1 = -g_1` and, with
    ``line_search_fn="strong_wolfe"``, :math:`t_k` found from that initial guess by
    torch's strong-Wolfe search (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`, cubic
    interpolation, at most ``max_eval`` evaluations per step). As in torch, the
    search's own bracket tolerance is fixed at :math:`10^{-9}` (torch does not
    pass ``tolerance_change`` on to it).

    The full torch ``step(closure)`` (several iterations, each re-evaluating the
    loss) is :func:`minimize`. As a gradient transformation (chain it, optax
    style), ``update(grad, state, params, value=loss, value_fn=loss_fn)`` is
    one torch ``step`` given the closure's first evaluation ``(value, grad)``:
    it re-evaluates ``value_fn(params)`` (a function of the param tree) and its
    gradient as torch calls the closure, and returns the total change of the
    params as the update. Without ``value_fn``, only the single-evaluation case
    is possible, torch's ``LBFGS(max_iter=1)`` without a line search:
    ``update(grad, state)`` returns :math:`t_k d_k` (zero once ``max|g| <=
    tolerance_grad``; ``value``, if given, is kept as torch's ``prev_loss``), and
    any other configuration raises a ``ValueError``.
    ``learning_rate``, ``max_iter``, ``max_eval`` and both tolerances live in the
    state (see :func:`~optimlab.set_hyperparams`); in the single-evaluation mode
    the iteration count stays one whatever ``max_iter`` says. The L-BFGS state is
    the ``inner_state``, an :class:`LBFGSState` that :func:`minimize` accepts too.

    Differences from torch: ``max_iter``, ``max_eval`` and ``history_size`` must
    be positive ints (torch fails later, inside ``step``, on a zero ``max_eval``
    with a line search), and an unknown ``line_search_fn`` is refused here rather
    than at the first ``step``.

    Args:
        learning_rate: :math:`\eta` (torch's ``lr``).
        max_iter: the most iterations per step.
        max_eval: the most evaluations per step (default ``max_iter * 5 // 4``).
        tolerance_grad: a step ends once the largest gradient entry is at most this.
        tolerance_change: a step ends once a parameter change or loss change is
            below this, or the directional derivative is above ``-tolerance_change``.
        history_size: the number of curvature pairs kept (the ring buffer's size).
        line_search_fn: ``None`` or ``"strong_wolfe"``.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import optimlab
        >>> def loss_fn(p):
        ...     return jnp.sum(jnp.array([1.0, 10.0]) * (p - 3.0) ** 2)
        >>> tx = optimlab.torch_lbfgs(max_iter=1)
        >>> params = jnp.zeros(2)
        >>> state = tx.init(params)
        >>> for _ in range(8):
        ...     updates, state = tx.update(jax.grad(loss_fn)(params), state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> [round(float(v), 3) for v in params]
        [3.0, 3.0]
        >>> tx = optimlab.torch_lbfgs(line_search_fn="strong_wolfe")
        >>> params = jnp.zeros(2)
        >>> value, grad = jax.value_and_grad(loss_fn)(params)
        >>> updates, state = tx.update(grad, tx.init(params), params, value=value,
        ...                            value_fn=loss_fn)
        >>> [round(float(v), 3) for v in optimlab.apply_updates(params, updates)]
        [3.0, 3.0]

    References:
        Liu & Nocedal, `On the limited memory BFGS method for large scale optimization
        <https://doi.org/10.1007/BF01589116>`_, 1989. Nocedal & Wright, `Numerical
        Optimization <https://doi.org/10.1007/978-0-387-40065-5>`_, 2nd ed., 2006.
    """
    max_eval = _check_options(learning_rate, max_iter, max_eval, history_size, line_search_fn)
    _rules.check_args(
        "torch_lbfgs",
        learning_rate=learning_rate,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        history_size=history_size,
    )
    line_search = line_search_fn == "strong_wolfe"
    single = max_iter == 1 and not line_search

    def build(step, h):
        del step
        return _transform(h, history_size, line_search, single)

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
    )
