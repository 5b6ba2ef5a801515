"""DoG and DoWG: step sizes from the distance travelled over the gradient norms."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._transforms._alias import optional, torch_style
from .._transforms._norms import sq_dist, sq_norm

__all__ = ["DoGState", "DoWGState", "scale_by_dog", "scale_by_dowg", "dog", "dowg"]

InitStep = tuple[Literal["distance", "learning_rate", "heuristic"], ArrayLike]
_INIT_TYPES = ("distance", "learning_rate", "heuristic")


def _sq_norms(name: str, updates: Any, init_params: Any, params: Any, dtype: Any) -> tuple:
    r""":math:`\lVert x_t - x_0\rVert^2` and :math:`\lVert g_t\rVert^2`, the inputs checked."""
    _tree.check_match(name, updates, init_params)
    _validate.require_params(name, params)
    return sq_dist(init_params, params, dtype), sq_norm(updates, dtype)


def _scaled(updates: Any, factor: jax.Array) -> Any:
    return _tree.tree_map(
        lambda g: (_tree.upcast(g) * _tree.scalar_like(factor, _tree.upcast(g))).astype(g.dtype),
        updates,
    )


@never_negative("max_dist", "sum_sq_norm_grads")
class DoGState(NamedTuple):
    r"""State of :func:`scale_by_dog`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        init_params: the initial parameters :math:`x_0`.
        max_dist: :math:`\bar r_t = \max(r_\epsilon, \max_i \lVert x_i - x_0\rVert)`.
        sum_sq_norm_grads: :math:`\sum_i \lVert g_i\rVert^2`.
    """

    count: jax.Array | None
    init_params: Updates
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


def _check_init_step(init_step: Any) -> None:
    if not (isinstance(init_step, tuple) and len(init_step) == 2 and init_step[0] in _INIT_TYPES):
        raise ValueError(
            f"Invalid init_step value: {init_step!r} (must be a pair (type, value) "
            f"with type in {_INIT_TYPES})"
        )
    _validate.non_negative(init_step[1], "init_step")


@_validate.checked_arguments
def scale_by_dog(
    init_step: InitStep = ("heuristic", 1e-6),
    eps: ArrayLike = 1e-8,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Scales updates by DoG's step size.

    The step is :math:`\bar r_t / \sqrt{\sum_{i\le t} \lVert g_i\rVert^2 + \epsilon}`.
    See :func:`dog` for the rule and the meaning of ``init_step``.

    Args:
        init_step: ``(type, value)``.
        eps: :math:`\epsilon`.
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`DoGState`.
    """
    _check_init_step(init_step)
    _validate.eps(eps)
    _rules.check_args("scale_by_dog", eps=eps)
    kind, value = init_step

    def init_fn(params):
        sd = _tree.scalar_dtype(params)
        v = jnp.asarray(value).astype(sd)
        if kind == "distance":
            r = v
        elif kind == "heuristic":
            r = v * (1 + jnp.sqrt(sq_norm(params, sd)))
        else:
            r = jnp.zeros([], sd)
        count = initial_count(step)
        return DoGState(count, _tree.copy(params), r, jnp.zeros([], sd))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        sd = state.max_dist.dtype
        dist, grad = _sq_norms("dog", updates, state.init_params, params, sd)
        count = current_count(step, state)
        max_dist = jnp.maximum(state.max_dist, jnp.sqrt(dist))
        total = state.sum_sq_norm_grads + grad
        lr = max_dist / jnp.sqrt(total + jnp.asarray(eps).astype(sd))
        if kind == "learning_rate":
            lr = jnp.where(count == 0, jnp.asarray(value).astype(sd), lr)
        new_count = next_count(step, state)
        return _scaled(updates, lr), DoGState(new_count, state.init_params, max_dist, total)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: InitStep = ("heuristic", 1e-6),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""Distance over Gradients (DoG): a parameter-free SGD step size.

    With :math:`g_t = \nabla f(x_t) + \lambda x_t`:

    .. math::
        \bar r_t = \max\big(r_\epsilon,\ \max_{i \le t} \lVert x_i - x_0\rVert\big), \qquad
        u_t = -\eta\,\frac{\bar r_t}{\sqrt{\sum_{i\le t}\lVert g_i\rVert^2 + \epsilon}}\, g_t

    ``init_step`` sets :math:`r_\epsilon`: ``("distance", r)`` uses it directly,
    ``("heuristic", c)`` uses :math:`c\,(1 + \lVert x_0\rVert)`, and
    ``("learning_rate", s)`` takes a first step of size :math:`s` instead. Its value
    is stored as ``init_step_value``. Matches optax's ``contrib.dog``, complex
    parameters included (norms of :math:`|x|^2`, a real step size).

    Args:
        learning_rate: :math:`\eta`, a multiplier of the DoG step (keep 1).
        init_step: ``(type, value)`` as above.
        eps: :math:`\epsilon`.
        weight_decay: L2 penalty :math:`\lambda`; ``None`` leaves it out (``0.0``
            keeps it in the state, settable later).
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.dog(init_step=("distance", 0.5))
        >>> params = jnp.zeros(2)
        >>> updates, _ = tx.update(jnp.array([30.0, 40.0]), tx.init(params), params)
        >>> [round(float(u), 4) for u in updates]  # a first step of length r_eps = 0.5
        [-0.3, -0.4]

    References:
        Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A Parameter-Free Dynamic
        Step Size Schedule <https://arxiv.org/abs/2302.12022>`_, 2023.
    """
    _validate.lr(learning_rate)
    _check_init_step(init_step)
    _validate.eps(eps)
    if weight_decay is not None:
        _validate.weight_decay(weight_decay)
    _rules.check_args("dog", learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    kind, value = init_step
    return torch_style(
        lambda step, h: scale_by_dog((kind, h["init_step_value"]), h["eps"], step=step),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        mask=mask,
        init_step_value=value,
        eps=eps,
    )


@never_negative("weighted_sq_norm_grads", "estim_sq_dist")
class DoWGState(NamedTuple):
    r"""State of :func:`scale_by_dowg`.

    Attributes:
        init_params: the initial parameters :math:`x_0`.
        weighted_sq_norm_grads: :math:`v_t = \sum_i \bar r_i^2 \lVert g_i\rVert^2`.
        estim_sq_dist: :math:`\bar r_t^2`.
    """

    init_params: Updates
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


@_validate.checked_arguments
def scale_by_dowg(
    init_estim_sq_dist: ArrayLike | None = None, eps: ArrayLike = 1e-4
) -> GradientTransformation:
    r"""Scales updates by DoWG's step :math:`\bar r_t^2 / (\sqrt{v_t} + \epsilon)`.

    See :func:`dowg` for the rule.

    Args:
        init_estim_sq_dist: :math:`\bar r_0^2`, or ``None`` for ``eps``.
        eps: :math:`\epsilon`.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`DoWGState`.
    """
    _validate.eps(eps)
    if init_estim_sq_dist is not None:
        _validate.non_negative(init_estim_sq_dist, "init_estim_sq_dist")
    _rules.check_args("scale_by_dowg", init_estim_sq_dist=init_estim_sq_dist, eps=eps)

    def init_fn(params):
        sd = _tree.scalar_dtype(params)
        r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(_tree.copy(params), jnp.zeros([], sd), jnp.asarray(r0).astype(sd))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        sd = state.estim_sq_dist.dtype
        dist, grad = _sq_norms("dowg", updates, state.init_params, params, sd)
        r2 = jnp.maximum(state.estim_sq_dist, dist)
        v = r2 * grad + state.weighted_sq_norm_grads
        lr = r2 / (jnp.sqrt(v) + jnp.asarray(eps).astype(sd))
        return _scaled(updates, lr), DoWGState(state.init_params, v, r2)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: ScalarOrSchedule | None = None,
    eps: ScalarOrSchedule = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""Distance over Weighted Gradients (DoWG): DoG with distance-weighted gradient sums.

    .. math::
        \bar r_t^2 = \max\big(\bar r_{t-1}^2,\ \lVert x_t - x_0\rVert^2\big), \quad
        v_t = v_{t-1} + \bar r_t^2 \lVert g_t\rVert^2, \quad
        u_t = -\eta\,\frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\, g_t

    with :math:`g_t = \nabla f(x_t) + \lambda x_t` and :math:`\bar r_0^2` given by
    ``init_estim_sq_dist`` (``None``: :math:`\epsilon`). Matches optax's ``contrib.dowg``,
    complex parameters included (norms of :math:`|x|^2`, a real step size).

    Args:
        learning_rate: :math:`\eta`, a multiplier of the DoWG step (keep 1).
        init_estim_sq_dist: :math:`\bar r_0^2`, or ``None``.
        eps: :math:`\epsilon`.
        weight_decay: L2 penalty :math:`\lambda`, ``None`` or a number as in :func:`dog`.
        mask: the leaves to decay, as in :func:`dog`.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.dowg(init_estim_sq_dist=0.25, eps=0.0)
        >>> x = jnp.zeros(2)
        >>> for g in (jnp.array([0.03, 0.04]), jnp.array([300.0, 400.0])):
        ...     updates, _ = tx.update(g, tx.init(x), x)
        ...     print([round(float(u), 4) for u in updates])  # length 0.5 at any scale
        [-0.3, -0.4]
        [-0.3, -0.4]

    References:
        Khaled, Mishchenko & Jin, `DoWG Unleashed: An Efficient Universal Parameter-Free
        Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_, 2023.
    """
    _validate.lr(learning_rate)
    _validate.eps(eps)
    if init_estim_sq_dist is not None:
        _validate.non_negative(init_estim_sq_dist, "init_estim_sq_dist")
    if weight_decay is not None:
        _validate.weight_decay(weight_decay)
    numbers: dict[str, Any] = dict(eps=eps, **optional(init_estim_sq_dist=init_estim_sq_dist))
    _rules.check_args("dowg", learning_rate=learning_rate, **numbers, weight_decay=weight_decay)
    return torch_style(
        lambda step, h: scale_by_dowg(h.get("init_estim_sq_dist"), h["eps"]),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        mask=mask,
        **numbers,
    )
