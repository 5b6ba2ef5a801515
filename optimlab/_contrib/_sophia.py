"""Sophia: a clipped diagonal-Hessian preconditioner, with a Hutchinson estimator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import (
    EmptyState,
    GradientTransformation,
    _update_with_extra_args,
    safe_increment,
)
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, OptState, Params, RealDType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import optional, torch_style
from .._transforms._moments import check_betas_eps, check_moments

__all__ = ["SophiaState", "scale_by_sophia", "sophia", "hutchinson_estimator"]


@checked_arguments
def hutchinson_estimator(
    loss_fn: Callable[[Params], jax.Array], params: Params, key: jax.Array
) -> Params:
    r"""Hutchinson's unbiased estimate :math:`z \odot (\nabla^2 f(x)\, z)` of the Hessian diagonal.

    :math:`z` has independent Rademacher (:math:`\pm 1`) entries; one
    Hessian-vector product (forward over reverse) is computed. The key is split
    into one key per leaf, in leaf order, as optax's estimator does.

    Args:
        loss_fn: the scalar objective :math:`f(x)`.
        params: the point :math:`x`.
        key: a PRNG key.

    Returns:
        A tree like ``params`` holding the estimate.

    Examples:
        >>> f = lambda x: jnp.sum(jnp.array([1.0, 2.0, 3.0]) * x ** 2)
        >>> optimlab.hutchinson_estimator(f, jnp.ones(3), jax.random.key(0))
        Array([2., 4., 6.], dtype=float32)
    """
    _check_key("hutchinson_estimator", key)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    signs = [
        jax.random.rademacher(k, jnp.shape(x), dtype=jnp.float32).astype(jnp.asarray(x).dtype)
        for k, x in zip(keys, leaves, strict=True)
    ]
    z = jax.tree.unflatten(treedef, signs)
    hvp = jax.jvp(jax.grad(loss_fn), (params,), (z,))[1]
    return jax.tree.map(lambda h, s: h * s, hvp, z)


def _check_key(function: str, key: Any) -> None:
    """Raises ``TypeError`` unless ``key`` is a PRNG key: typed, or a raw ``uint32`` pair."""
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == jnp.uint32 and jnp.shape(key)[-1:] == (2,)
    if not (typed or raw):
        raise TypeError(
            f"{function}: key must be a PRNG key (jax.random.key(0)), got "
            f"{type(key).__name__} {key!r:.60}."
        )


class SophiaState(NamedTuple):
    """State of :func:`scale_by_sophia`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: momentum of the gradients.
        nu: moving average :math:`h_t` of the Hessian-diagonal estimates.
        hessian_fn_state: the state of ``hessian_diagonal_fn`` (an
            :class:`~optimlab.EmptyState` without one).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates
    hessian_fn_state: OptState = EmptyState()


@checked_arguments
def scale_by_sophia(
    b1: ArrayLike = 0.965,
    b2: ArrayLike = 0.99,
    eps: ArrayLike = 1e-8,
    gamma: ArrayLike = 0.01,
    clip_threshold: ArrayLike | None = 1.0,
    update_interval: ArrayLike = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: RealDType | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by Sophia's clipped ratio :math:`\hat m_t / \max(\gamma h_t, \epsilon)`.

    See :func:`sophia` for the rule and the Hessian-diagonal estimate.

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`, the decay of the Hessian average.
        eps: :math:`\epsilon`.
        gamma: :math:`\gamma`.
        clip_threshold: :math:`\rho`, or ``None`` for no clipping.
        update_interval: :math:`k`, the Hessian average refreshes when ``count % k == 0``.
        hessian_diagonal_fn: a transformation whose ``update(grads, state, params,
            **extra_args)`` returns the estimate :math:`\hat h_t`, run on refresh steps
            only; ``None`` reads it from ``update(..., hessian_diag=tree)``.
        mu_dtype: storage dtype of the momentum.
        verbose: print the win rate (see :func:`sophia`).
        print_win_rate_every_n_steps: the printing period; 0 never prints.
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`SophiaState`.
    """
    check_moments(
        "scale_by_sophia",
        b1,
        b2,
        eps,
        gamma=gamma,
        clip_threshold=clip_threshold,
        update_interval=update_interval,
    )
    _check_options("scale_by_sophia", hessian_diagonal_fn, print_win_rate_every_n_steps)
    every = int(print_win_rate_every_n_steps) if verbose and clip_threshold is not None else 0
    hess_update = (
        None if hessian_diagonal_fn is None else _update_with_extra_args(hessian_diagonal_fn)
    )

    def init_fn(params):
        _tree.reject_complex("sophia", params)
        count = initial_count(step)
        hs = EmptyState() if hessian_diagonal_fn is None else hessian_diagonal_fn.init(params)
        return SophiaState(count, _tree.zeros_like(params, mu_dtype), _tree.zeros_like(params), hs)

    def update_fn(updates, state, params=None, **extra_args):
        _tree.check_match("sophia", updates, state.nu)
        count = current_count(step, state)
        k = jnp.maximum(jnp.round(jnp.asarray(update_interval)).astype(jnp.int32), 1)
        refresh = (count % k) == 0
        hs = state.hessian_fn_state
        if hess_update is None:
            hess = extra_args.get("hessian_diag")
        else:
            hess, hs = _estimate(hess_update, refresh, updates, state, params, extra_args)
        if hess is not None:
            _tree.check_match("sophia", hess, state.nu, what="hessian_diag")

        def one(g, m, v, hd=None):
            gc = _tree.upcast(g)
            sc = lambda x: _tree.scalar_like(x, gc)
            vc = v.astype(gc.dtype)
            m_new, out = _ratio(gc, m, vc, count, b1, gamma, eps)
            if clip_threshold is not None:
                out = jnp.clip(out, -sc(clip_threshold), sc(clip_threshold))
            if hd is not None:
                vc = jnp.where(
                    refresh, _tree.update_moment(_tree.upcast(hd).astype(gc.dtype), vc, b2, 1), vc
                )
            return out.astype(g.dtype), m_new.astype(m.dtype), vc.astype(v.dtype)

        rest = (state.mu, state.nu) if hess is None else (state.mu, state.nu, hess)
        out, mu, nu = _tree.tree_map_multi(one, 3, updates, *rest)
        if every:
            _print_win_rate(updates, state, count, b1, gamma, eps, clip_threshold, every)
        new_count = next_count(step, state)
        return out, SophiaState(new_count, mu, nu, hs)

    return GradientTransformation(init_fn, update_fn)


def _check_options(function: str, hessian_fn: Any, every: Any) -> None:
    if hessian_fn is not None and not (
        hasattr(hessian_fn, "init") and hasattr(hessian_fn, "update")
    ):
        raise TypeError(
            f"{function}: hessian_diagonal_fn is {type(hessian_fn).__name__}, not a gradient "
            "transformation (or None)."
        )
    _rules.check_args(function, print_win_rate_every_n_steps=every)


def _estimate(hess_update, refresh, grads, state, params, extra_args):
    """The estimator's Hessian diagonal and state, run on refresh steps only (as optax)."""
    if params is None:
        raise ValueError("sophia: params must be given to update when hessian_diagonal_fn is set.")

    def run(hs):
        h, hs = hess_update(grads, hs, params, **extra_args)
        return jax.tree.map(lambda x, v: jnp.asarray(x).astype(v.dtype), h, state.nu), hs

    return jax.lax.cond(refresh, run, lambda hs: (state.nu, hs), state.hessian_fn_state)


def _ratio(gc, m, vc, count, b1, gamma, eps):
    r"""One leaf's new momentum and unclipped ratio :math:`\hat m_t / \max(\gamma h, \epsilon)`.

    ``gc`` is the upcast gradient and ``vc`` the Hessian average in its dtype.
    """
    sc = lambda x: _tree.scalar_like(x, gc)
    m_new = _tree.update_moment(gc, m.astype(gc.dtype), b1, 1)
    m_hat = m_new / sc(_tree.bias_correction(b1, count))
    return m_new, m_hat / jnp.maximum(sc(gamma) * vc, sc(eps))


def _print_win_rate(grads, state, count, b1, gamma, eps, rho, every) -> None:
    """Prints the share of unclipped coordinates every ``every`` steps (optax's win rate)."""

    def unclipped(g, m, v):
        gc = _tree.upcast(g)
        _, ratio = _ratio(gc, m, v.astype(gc.dtype), count, b1, gamma, eps)
        return jnp.sum(jnp.abs(ratio) < _tree.scalar_like(rho, gc))

    counts = jax.tree.leaves(_tree.tree_map(unclipped, grads, state.mu, state.nu))
    win_rate = sum(counts) / sum(jnp.size(x) for x in jax.tree.leaves(grads))
    step = safe_increment(count)
    jax.lax.cond(
        step % every == 0,
        lambda: jax.debug.print("Sophia optimizer win rate: {}", win_rate),
        lambda: None,
    )


@checked_arguments
def sophia(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.965,
    b2: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    weight_decay_mask: Any = None,
    gamma: ScalarOrSchedule = 0.01,
    clip_threshold: ScalarOrSchedule | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: RealDType | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    r"""Sophia: momentum preconditioned by a clipped, rarely refreshed Hessian diagonal.

    Give the Hessian-diagonal estimate :math:`\hat h_t` with
    ``update(grads, state, params, hessian_diag=h)``, for example from
    :func:`hutchinson_estimator`. It is folded into the average when
    ``count % update_interval == 0`` and ignored at other steps (so it only needs
    computing then); without it the average is kept. Or, as optax, give an
    estimator transformation as ``hessian_diagonal_fn`` (such as
    ``optax.contrib.hutchinson_estimator_diag_hessian()``, which takes
    ``update(..., obj_fn=loss)``): it is run on refresh steps with ``update``'s
    extra arguments, and its state is kept in :class:`SophiaState`.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        h_t = \beta_2 h_{t-1} + (1-\beta_2)\,\hat h_t \ \text{(refresh steps)} \\
        u_t &= -\eta\Big(\operatorname{clip}\Big(\frac{m_t/(1-\beta_1^t)}{\max(\gamma h_{t-1},
            \epsilon)},\ \pm\rho\Big) + \lambda x_t\Big)

    With ``verbose=True`` and a clipping threshold, the win rate (the share of
    coordinates the clip leaves alone, which the authors keep in [0.1, 0.5]) is
    printed with ``jax.debug.print`` every ``print_win_rate_every_n_steps`` steps
    (0 never prints). Difference from optax's ``contrib.sophia``: without
    ``hessian_diagonal_fn`` the estimate comes in through ``hessian_diag``
    (optax's default estimator needs ``obj_fn``). Fed the same estimates, the two
    agree.

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`, the momentum's decay.
        b2: :math:`\beta_2`, the Hessian average's decay.
        eps: :math:`\epsilon`, the floor of :math:`\gamma h`.
        weight_decay: decoupled decay :math:`\lambda`.
        weight_decay_mask: pytree of bools (or ``params -> mask``) selecting the
            leaves to decay.
        gamma: :math:`\gamma`.
        clip_threshold: :math:`\rho`, or ``None`` for no clipping.
        update_interval: the refresh period :math:`k` (stored as a number).
        hessian_diagonal_fn: an estimator transformation returning :math:`\hat h_t`,
            or ``None`` (the default) for the ``hessian_diag`` extra argument.
        mu_dtype: storage dtype of the momentum.
        verbose: print the win rate every ``print_win_rate_every_n_steps`` steps.
        print_win_rate_every_n_steps: the printing period (an integer; 0 never prints).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        Before any curvature is averaged in, the ratio is clipped to :math:`\pm\rho`
        (a sign step); then a large curvature shortens its coordinate's step:

        >>> tx = optimlab.sophia(0.1, weight_decay=0.0, update_interval=1)
        >>> x = jnp.zeros(2)
        >>> state = tx.init(x)
        >>> g, h = jnp.array([1.0, -1.0]), jnp.array([1e6, 1.0])
        >>> for _ in range(2):
        ...     updates, state = tx.update(g, state, x, hessian_diag=h)
        ...     print([round(float(u), 4) for u in updates])
        [-0.1, 0.1]
        [-0.001, 0.1]

    References:
        Liu, Li, Hall, Liang & Ma, `Sophia: A Scalable Stochastic Second-order Optimizer
        for Language Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023.
    """
    _validate.lr(learning_rate)
    check_betas_eps(b1, b2, eps)
    _validate.weight_decay(weight_decay)
    _validate.positive(gamma, "gamma")
    if clip_threshold is not None:
        _validate.positive(clip_threshold, "clip_threshold")
    _validate.positive_int(update_interval, "update_interval")
    # the numbers the state keeps, in its order (clip_threshold when given)
    numbers = dict(b1=b1, b2=b2, eps=eps, gamma=gamma, update_interval=update_interval)
    terms = dict(clip_threshold=clip_threshold, weight_decay=weight_decay)  # None: left out
    _rules.check_args("sophia", learning_rate=learning_rate, **numbers, **terms)
    _check_options("sophia", hessian_diagonal_fn, print_win_rate_every_n_steps)
    options = dict(
        hessian_diagonal_fn=hessian_diagonal_fn,
        mu_dtype=mu_dtype,
        verbose=verbose,
        print_win_rate_every_n_steps=print_win_rate_every_n_steps,
    )

    def primitive(step, h):
        now = {k: h[k] for k in numbers}
        return scale_by_sophia(**now, clip_threshold=h.get("clip_threshold"), **options, step=step)

    return torch_style(
        primitive,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled=True,
        mask=weight_decay_mask,
        owner="sophia",
        **numbers,
        **optional(clip_threshold=clip_threshold),
    )
