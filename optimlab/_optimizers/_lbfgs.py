"""L-BFGS with torch's numerics: the ``torch_lbfgs`` alias and the jitted ``minimize`` driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation
from .._core._hyperparams import hyperparam_dtype
from .._core._types import ArrayLike, Params
from .._transforms._alias import alias_hyperparams
from ._lbfgs_iteration import (
    LBFGSInfo,
    LBFGSState,
    flatten,
    init_state,
    step,
    value_and_grad,
)

__all__ = ["torch_lbfgs", "minimize"]


def _int_option(function: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | jnp.integer):
        raise TypeError(f"{function}: {name} must be an int, got {value!r}")
    _validate.check(value > 0, f"{function}: Invalid {name} value: {value} (must be > 0)")
    return int(value)


def _check_options(
    function: str, learning_rate, max_iter, max_eval, history_size, line_search_fn
) -> int:
    """Validates the options torch validates (and the integer ones); returns ``max_eval``."""
    _validate.lr(learning_rate)
    max_iter = _int_option(function, "max_iter", max_iter)
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    else:
        max_eval = _int_option(function, "max_eval", max_eval)
    _int_option(function, "history_size", history_size)
    if line_search_fn is not None and line_search_fn != "strong_wolfe":
        raise ValueError(
            f"{function}: only 'strong_wolfe' is supported, got line_search_fn={line_search_fn!r}"
        )
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


def _minimize(fun, params, state, h, line_search):
    x, unflatten = flatten(params)
    vg = value_and_grad(fun, unflatten, x.dtype)
    loss, grad = vg(x)
    c = step(vg, x, loss, grad, state, h, line_search)
    return unflatten(c.x), c.state, LBFGSInfo(loss, c.loss, c.n_iter, c.evals)


_minimize_jit = jax.jit(_minimize, static_argnames=("fun", "line_search"))


@_validate.checked_arguments
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
    max_eval = _check_options(
        "minimize", learning_rate, max_iter, max_eval, history_size, line_search_fn
    )
    if state is None:
        state = init_state(params, history_size)
    else:
        _check_state(state, flatten(params)[0], history_size, "minimize")
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
        return init_state(params, history_size)

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args
    ):
        del grad, extra_args
        if params is not None:
            _tree.check_match("lbfgs", updates, params, what="params")
        g, unflatten = flatten(updates)
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
            x, unflatten_params = flatten(params)
            x = x.astype(dt)
            _check_state(state, x, history_size, "lbfgs")
            loss = jnp.asarray(value).astype(dt)
            vg = value_and_grad(value_fn, unflatten_params, dt)
            h_run = h
        if g.shape != state.d.shape:
            raise ValueError(
                f"lbfgs: the updates flatten to {g.shape[0]} entries but the state "
                f"is for {state.d.shape[0]}."
            )
        c = step(vg, x, loss, g, state, h_run, line_search)
        return unflatten(c.x - x), c.state

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
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
    max_eval = _check_options(
        "torch_lbfgs", learning_rate, max_iter, max_eval, history_size, line_search_fn
    )
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

    return alias_hyperparams(
        build,
        learning_rate=learning_rate,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
    )
