"""Weight averaging: ``ema_params`` and ``swa_params``, read with ``averaged_params``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _paths, _rules, _tree, _validate
from .._core._base import GradientTransformation, safe_increment
from .._core._types import ArrayLike, Params
from .._core._update import apply_updates
from .._core._validate import checked_arguments

__all__ = ["AveragedParamsState", "ema_params", "swa_params", "averaged_params"]


class AveragedParamsState(NamedTuple):
    """State of :func:`ema_params` and :func:`swa_params`.

    Attributes:
        n_averaged: int32 number of parameter values averaged so far (torch's
            ``AveragedModel.n_averaged``).
        params: the averaged parameters (the initial params before any step).
    """

    n_averaged: jax.Array
    params: Params


def _averaging(name: str, weight_fn) -> GradientTransformation:
    def init_fn(params):
        return AveragedParamsState(
            jnp.zeros([], jnp.int32), _tree.tree_map(lambda p: jnp.array(p, copy=True), params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _validate.require_params(name, params)
        _tree.check_match(name, updates, state.params)
        current = apply_updates(params, updates)
        n = state.n_averaged
        first = n == 0

        def one(avg, p):
            if not jnp.issubdtype(avg.dtype, jnp.inexact):
                return p  # integer leaves (counters, indices) track the latest value
            return jnp.where(first, p, _tree.lerp(avg, p, weight_fn(n)))

        return updates, AveragedParamsState(
            safe_increment(n), _tree.tree_map(one, state.params, current)
        )

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def ema_params(decay: ArrayLike = 0.999, *, debias: bool = False) -> GradientTransformation:
    r"""Keeps an exponential moving average of the parameters in the state.

    Place it last in a chain: it passes the updates through unchanged and
    averages the parameters they produce, :math:`p_t = p_{t-1} + u_t`. Read the
    average with :func:`averaged_params`.

    .. math::
        \bar p_1 = p_1, \qquad \bar p_t = \bar p_{t-1} + w_t\,(p_t - \bar p_{t-1}),
        \qquad w_t = 1 - \delta \ \ \text{or, with } \texttt{debias},\ \
        w_t = \frac{1-\delta}{1-\delta^t}

    Without ``debias`` this is torch's ``AveragedModel(model,
    multi_avg_fn=get_ema_multi_avg_fn(decay))`` called after each step, with the
    same ``lerp`` numerics. With ``debias`` it is the bias-corrected average of a
    zero-initialised EMA (optax's ``ema(decay, debias=True)`` of the parameter
    sequence), stored already corrected so that no second buffer is needed.
    Integer leaves are not averaged; they hold the latest value.

    Args:
        decay: :math:`\delta \in [0, 1]`.
        debias: use the bias-corrected weights :math:`(1-\delta)/(1-\delta^t)`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`AveragedParamsState`.

    Examples:
        >>> tx = optimlab.chain(optimlab.sgd(1.0), optimlab.ema_params(0.5))
        >>> params = jnp.array([4.0])
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update(jnp.array([1.0]), state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> params, optimlab.averaged_params(state)
        (Array([2.], dtype=float32), Array([2.5], dtype=float32))

    References:
        Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging
        <https://doi.org/10.1137/0330046>`_, 1992.
    """
    _validate.in_range(decay, "decay", 0.0, 1.0)
    _rules.check_args("ema_params", decay=decay)

    def weight(n):
        d = jnp.asarray(decay)
        if not jnp.issubdtype(d.dtype, jnp.floating):
            d = d.astype(jnp.result_type(float))
        if not debias:
            return 1 - d
        return (1 - d) / (1 - d ** (n.astype(d.dtype) + 1))

    return _averaging("ema_params", weight)


@checked_arguments
def swa_params() -> GradientTransformation:
    r"""Keeps the running mean of the parameters in the state (stochastic weight averaging).

    Place it last in a chain; it passes the updates through unchanged:

    .. math:: \bar p_n = \bar p_{n-1} + \frac{1}{n}\,(p_n - \bar p_{n-1}), \qquad
        \bar p_1 = p_1

    with :math:`n` = ``n_averaged`` after the step. Same numerics as torch's
    ``AveragedModel(model, multi_avg_fn=get_swa_multi_avg_fn())``. To average only
    from some step on, or once per epoch, wrap it in
    :func:`~optimlab.conditionally_transform`. Read the average with
    :func:`averaged_params`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`AveragedParamsState`.

    Examples:
        >>> tx = optimlab.chain(optimlab.sgd(1.0), optimlab.swa_params())
        >>> params = jnp.array([4.0])
        >>> state = tx.init(params)
        >>> for _ in range(3):
        ...     updates, state = tx.update(jnp.array([1.0]), state, params)
        ...     params = optimlab.apply_updates(params, updates)
        >>> optimlab.averaged_params(state), int(state[1].n_averaged)
        (Array([2.], dtype=float32), 3)

    References:
        Izmailov et al., `Averaging Weights Leads to Wider Optima and Better
        Generalization <https://arxiv.org/abs/1803.05407>`_, 2018.
    """

    def weight(n):
        # torch computes 1 / (n_averaged + 1) on a tensor of the default float dtype.
        return 1 / (n.astype(jnp.result_type(float)) + 1)

    return _averaging("swa_params", weight)


def _nodes(state: Any) -> list[Any]:
    from ._lookahead import LookaheadState

    return [x for _, x in _paths.find_nodes(state, (AveragedParamsState, LookaheadState))]


@checked_arguments
def averaged_params(state: Any) -> Params:
    """Returns the averaged parameters held in an optimizer state.

    Finds the :func:`ema_params` or :func:`swa_params` state (or the slow
    weights of :func:`~optimlab.lookahead`) anywhere in ``state``.

    Args:
        state: an optimizer state holding exactly one of them.

    Returns:
        The averaged parameters, with the params' structure.

    Raises:
        ValueError: the state holds none, or several.

    Examples:
        >>> state = optimlab.chain(optimlab.adam(), optimlab.ema_params()).init(jnp.ones(2))
        >>> optimlab.averaged_params(state)
        Array([1., 1.], dtype=float32)
    """
    found = _nodes(state)
    if len(found) != 1:
        raise ValueError(
            f"averaged_params: the state holds {len(found)} averaging states (ema_params, "
            "swa_params or lookahead); it needs exactly one. With several, read each "
            "node's `params` (or `slow`) field."
        )
    node = found[0]
    return node.params if isinstance(node, AveragedParamsState) else node.slow
