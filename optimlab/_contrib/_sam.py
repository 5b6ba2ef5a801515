"""Sharpness-aware minimisation (SAM) as a wrapper of an outer and an adversarial optimizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._stateless import stateless
from .._core._types import OptState, Params
from .._core._update import apply_updates
from .._core._validate import checked_arguments

__all__ = ["SAMState", "normalize", "sam"]


@checked_arguments
def normalize() -> GradientTransformation:
    r"""Divides the updates by their global l2 norm: :math:`u \leftarrow u / \lVert u\rVert_2`.

    Zero updates stay zero (optax's ``contrib.normalize`` returns NaN there).

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.normalize()
        >>> tx.update(jnp.array([3.0, 4.0]), tx.init(None))[0]
        Array([0.6, 0.8], dtype=float32)
    """

    def normalized(updates, params, **extra_args):
        del params, extra_args
        norm = _tree.global_norm(updates)
        inv = jnp.where(norm > 0, 1 / jnp.where(norm > 0, norm, 1), 0)
        return _tree.tree_map(
            lambda u: (_tree.upcast(u) * _tree.scalar_like(inv, _tree.upcast(u))).astype(u.dtype),
            updates,
        )

    return stateless(normalized)


class SAMState(NamedTuple):
    """State of :func:`sam`.

    Attributes:
        steps_since_sync: position in the cycle, in ``[0, sync_period)``.
        opt_state: the outer optimizer's state.
        adv_state: the adversarial optimizer's state.
        cache: the parameters at the start of the cycle (``None`` in opaque mode).
    """

    steps_since_sync: jax.Array
    opt_state: OptState
    adv_state: OptState
    cache: Params | None


def _pick(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


@checked_arguments
def sam(
    optimizer: Any,
    adv_optimizer: Any,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformation:
    r"""Sharpness-aware minimisation: step from an adversarially perturbed point.

    One SAM step with the usual adversary ``chain(normalize(), sgd(rho))`` is

    .. math::
        \tilde x_t = x_t + \rho\,\frac{\nabla f(x_t)}{\lVert \nabla f(x_t)\rVert}, \qquad
        x_{t+1} = x_t + \operatorname{opt}\big(\nabla f(\tilde x_t)\big)

    In the default (transparent) mode each ``update`` call is one of
    ``sync_period`` calls: the first ``sync_period - 1`` return the adversarial
    moves (the negated ``adv_optimizer`` updates, so that it climbs), the last
    returns the outer step taken from the cached start point with the gradient at
    the perturbed point. In opaque mode one call does a whole cycle and needs
    ``update(..., grad_fn=lambda params, i: grads)``. The numbers (``rho``,
    learning rates) live in the two optimizers' own states. Matches optax's
    ``contrib.sam`` (see :func:`normalize` for zero gradients).

    Args:
        optimizer: the outer optimizer.
        adv_optimizer: the adversarial optimizer (its updates are negated).
        sync_period: calls per cycle, at least 1 (a structure flag).
        reset_state: re-initialise the adversarial state at the end of each cycle.
        opaque_mode: run the adversarial steps inside one call through ``grad_fn``.
        batch_axis_name: in opaque mode, ``pmean`` the adversarial gradients over it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`SAMState`.

    Examples:
        One cycle (``sync_period=2``): the first call climbs :math:`\rho = 0.5`
        along the normalised gradient, the second steps from the start point with
        the gradient taken at the perturbed one:

        >>> f = lambda x: jnp.sum(x ** 2)
        >>> adversary = optimlab.chain(optimlab.normalize(), optimlab.sgd(0.5))
        >>> tx = optimlab.sam(optimlab.sgd(0.1), adversary)
        >>> x = jnp.array([3.0, 4.0])
        >>> state = tx.init(x)
        >>> climb, state = tx.update(jax.grad(f)(x), state, x)
        >>> x_adv = optimlab.apply_updates(x, climb)
        >>> x_adv
        Array([3.3, 4.4], dtype=float32)
        >>> step, state = tx.update(jax.grad(f)(x_adv), state, x_adv)
        >>> optimlab.apply_updates(x_adv, step)  # x - 0.1 * grad f(x_adv)
        Array([2.34, 3.12], dtype=float32)

    References:
        Foret, Kleiner, Mobahi & Neyshabur, `Sharpness-Aware Minimization for Efficiently
        Improving Generalization <https://arxiv.org/abs/2010.01412>`_, 2021.
    """
    _validate.positive_int(sync_period, "sync_period")
    _rules.check_args("sam", sync_period=sync_period)
    names = batch_axis_name if isinstance(batch_axis_name, tuple) else (batch_axis_name,)
    if batch_axis_name is not None and not all(isinstance(n, str) and n for n in names):
        raise TypeError(
            "sam: batch_axis_name must be None or the name of a mapped axis (a non-empty "
            f"str, or a tuple of them), got {batch_axis_name!r}."
        )
    opt_update = _update_with_extra_args(optimizer)
    adv_update = _update_with_extra_args(adv_optimizer)

    def init_fn(params):
        return SAMState(
            jnp.zeros([], jnp.int32),
            optimizer.init(params),
            adv_optimizer.init(params),
            None if opaque_mode else _tree.copy(params),
        )

    def neg(tree):
        return _tree.tree_map(lambda x: -x, tree)

    def transparent(updates, state, params=None, **extra_args):
        _validate.state_type("sam", state, SAMState)
        _validate.require_params("sam", params)
        _tree.check_match("sam", updates, state.cache)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_u, adv_state = adv_update(updates, state.adv_state, params, **extra_args)
        opt_u, opt_state = opt_update(updates, state.opt_state, state.cache, **extra_args)

        def outer(c, p, u):
            cc = _tree.upcast(c)
            return (
                cc - _tree.upcast(p).astype(cc.dtype) + _tree.upcast(u).astype(cc.dtype)
            ).astype(u.dtype)

        opt_u = _tree.tree_map(outer, state.cache, params, opt_u)
        cache = _pick(
            first,
            _tree.tree_map(lambda p, c: jnp.asarray(p).astype(c.dtype), params, state.cache),
            state.cache,
        )
        out = _pick(last, opt_u, neg(adv_u))
        fresh = adv_optimizer.init(params) if reset_state else state.adv_state
        adv_state = _pick(last, fresh, adv_state)
        opt_state = _pick(last, opt_state, state.opt_state)
        steps = (state.steps_since_sync + 1) % sync_period
        return out, SAMState(steps, opt_state, adv_state, cache)

    def opaque(updates, state, params=None, **extra_args):
        _validate.state_type("sam", state, SAMState)
        grad_fn: Callable[[Params, int], Any] | None = extra_args.pop("grad_fn", None)
        if grad_fn is None:
            raise ValueError(
                "sam: opaque_mode needs update(..., grad_fn=fn) with "
                "fn(params, i) returning the gradients at params."
            )
        _validate.require_params("sam", params)
        adv_params, adv_u, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_u, adv_state = adv_update(adv_u, adv_state, adv_params, **extra_args)
            adv_params = apply_updates(adv_params, neg(adv_u))
            adv_u = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_u = jax.lax.pmean(adv_u, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        out, opt_state = opt_update(adv_u, state.opt_state, params, **extra_args)
        return out, SAMState(jnp.zeros([], jnp.int32), opt_state, adv_state, None)

    return GradientTransformation(init_fn, opaque if opaque_mode else transparent)
