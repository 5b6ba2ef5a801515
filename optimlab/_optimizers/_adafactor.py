"""Adafactor as optax has it: ``adafactor`` and ``scale_by_factored_rms``.

They follow Shazeer & Stern (2018) with optax's arguments and defaults. torch's
``Adafactor``, a different algorithm, is ``torch_adafactor`` (its own module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _rules, _tree, _validate
from .._core._base import EmptyState, GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, descend, optional
from .._transforms._scale import add_decayed_weights, scale

__all__ = ["ScaleByFactoredRmsState", "scale_by_factored_rms", "adafactor"]


# ----------------------------------------------------------------------------- classic


@never_negative("v_row", "v_col", "v")
class ScaleByFactoredRmsState(NamedTuple):
    """State of :func:`scale_by_factored_rms`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        v_row: per-leaf row statistics (``None`` for leaves that are not factored).
        v_col: per-leaf column statistics (``None`` for leaves that are not factored).
        v: per-leaf full second moment (``None`` for factored leaves).
    """

    count: jax.Array | None
    v_row: Updates
    v_col: Updates
    v: Updates


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim: int) -> tuple[int, int] | None:
    """The two largest axes (second largest, largest), or None (optax's rule)."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim:
        return None
    return int(order[-2]), int(order[-1])


def _check_factored(name, updates, state, factored, min_dim) -> None:
    """check_match for factored statistics: structure first, then each leaf's shapes."""
    merged = jax.tree.map(
        lambda v, r: r if v is None else v, state.v, state.v_row, is_leaf=_tree.is_none
    )
    _tree.check_match(
        name,
        _tree.tree_map(lambda u: jnp.zeros(()), updates),
        _tree.tree_map(lambda u: jnp.zeros(()), merged),
    )
    flat = jax.tree_util.tree_flatten_with_path(updates, is_leaf=_tree.is_none)[0]
    stats = [jax.tree.leaves(t, is_leaf=_tree.is_none) for t in (state.v, state.v_row)]
    for (path, u), v, r in zip(flat, *stats, strict=True):
        if u is None:
            continue
        dims = _factored_dims(jnp.shape(u), factored, min_dim)
        expected = jnp.shape(v) if v is not None else None
        if dims is not None and r is not None:
            expected = (
                jnp.shape(u) if tuple(np.delete(jnp.shape(u), dims[1])) == jnp.shape(r) else None
            )
        if expected != jnp.shape(u):
            raise ValueError(
                f"{name}: the update at {_tree.keystr(path)} has shape "
                f"{jnp.shape(u)}, which does not match the state."
            )


def _decay_rate_pow(i: ArrayLike, exponent: ArrayLike = 0.8) -> jax.Array:
    """:math:`1 - (i + 1)^{-c}`, in the exponent's (floating) dtype (optax's default rule)."""
    c = jnp.asarray(exponent)
    c = c if jnp.issubdtype(c.dtype, jnp.floating) else c.astype(jnp.result_type(float))
    return 1 - (jnp.asarray(i).astype(c.dtype) + 1) ** (-c)


@checked_arguments
def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: ArrayLike = 0.8,
    step_offset: ArrayLike = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: ArrayLike = 1e-30,
    decay_rate_fn: Callable[[ArrayLike, ArrayLike], ArrayLike] = _decay_rate_pow,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Scales updates by a factored estimate of the gradient's RMS (classic Adafactor).

    See :func:`adafactor` for the update rule. Leaves whose two largest axes are
    both at least ``min_dim_size_to_factor`` keep a row and a column statistic
    (over those two axes); other leaves keep a full second moment. Same math as
    ``optax.scale_by_factored_rms``; the statistics are stored in at least float32
    (optax stores them in the params' dtype, where ``epsilon=1e-30`` underflows in
    float16), and unused statistics are ``None`` instead of placeholders. Complex
    parameters are optimized as optax does (statistics of :math:`|g|^2`, stored real).

    Args:
        factored: factor the statistics of leaves with two or more axes.
        decay_rate: the exponent :math:`c` of the decay :math:`\hat\beta_t = 1 - t^{-c}`.
        step_offset: subtracted from the step (for fine-tuning).
        min_dim_size_to_factor: factor only when the two largest axes are this big.
        epsilon: :math:`\epsilon_1`, added to the squared gradient.
        decay_rate_fn: :math:`\hat\beta_t` as a function ``(step - step_offset,
            decay_rate)`` of the zero-based step (as optax's); the default is
            :math:`1 - (\text{step} + 1)^{-c}`, formed in ``decay_rate``'s dtype.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByFactoredRmsState`.

    Examples:
        >>> tx = optimlab.scale_by_factored_rms()
        >>> g = jnp.array([3.0, -4.0])
        >>> tx.update(g, tx.init(g))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    _rules.check_args(
        "scale_by_factored_rms",
        decay_rate=decay_rate,
        step_offset=step_offset,
        min_dim_size_to_factor=min_dim_size_to_factor,
        epsilon=epsilon,
    )
    _validate.finite(step_offset, "step_offset")
    _validate.non_negative_int(min_dim_size_to_factor, "min_dim_size_to_factor")
    if not callable(decay_rate_fn):
        raise TypeError(
            "scale_by_factored_rms: decay_rate_fn must be a function (step, decay_rate) -> "
            f"decay, got {type(decay_rate_fn).__name__}."
        )

    def stat_dtype(p):  # real, as the statistics are of |g|^2
        return _tree.real_dtype(_tree.compute_dtype(p.dtype))

    def init_fn(params):
        count = initial_count(step)

        def rows(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return None if dims is None else _tree.reduced_zeros(p, dims[1], stat_dtype(p))

        def cols(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return None if dims is None else _tree.reduced_zeros(p, dims[0], stat_dtype(p))

        def full(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return jnp.zeros_like(p, dtype=stat_dtype(p)) if dims is None else None

        return ScaleByFactoredRmsState(
            count,
            _tree.tree_map(rows, params),
            _tree.tree_map(cols, params),
            _tree.tree_map(full, params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _check_factored("scale_by_factored_rms", updates, state, factored, min_dim_size_to_factor)
        count = jnp.asarray(current_count(step, state))
        beta = jnp.asarray(
            decay_rate_fn(count - jnp.asarray(step_offset).astype(count.dtype), decay_rate)
        )

        def one(g, vr, vc, v):
            gc = _tree.upcast(g)
            b = _tree.hp(beta, gc)
            one_minus = _tree.hp(1 - beta, gc)
            # |g|^2 for complex g, as optax: the statistics are real
            sq = _tree.abs_sq(gc) + _tree.hp(epsilon, gc)
            dims = _factored_dims(g.shape, factored, min_dim_size_to_factor)
            if dims is None:
                v_new = b * v.astype(sq.dtype) + one_minus * sq
                u = gc * (v_new**-0.5).astype(gc.dtype)
                return u.astype(g.dtype), None, None, v_new.astype(v.dtype)
            d1, d0 = dims
            vr_new = b * vr.astype(sq.dtype) + one_minus * jnp.mean(sq, axis=d0)
            vc_new = b * vc.astype(sq.dtype) + one_minus * jnp.mean(sq, axis=d1)
            reduced_d1 = d1 - 1 if d1 > d0 else d1
            row_factor = (vr_new / jnp.mean(vr_new, axis=reduced_d1, keepdims=True)) ** -0.5
            row_factor = jnp.expand_dims(row_factor, d0).astype(gc.dtype)
            u = gc * row_factor * jnp.expand_dims(vc_new**-0.5, d1).astype(gc.dtype)
            return u.astype(g.dtype), vr_new.astype(vr.dtype), vc_new.astype(vc.dtype), None

        def wrapped(g, vr, vc, v):
            return one(g, vr, vc, v)

        u, vr, vc, v = _tree.tree_map_multi(wrapped, 4, updates, state.v_row, state.v_col, state.v)
        new_count = next_count(step, state)
        return u, ScaleByFactoredRmsState(new_count, vr, vc, v)

    return GradientTransformation(init_fn, update_fn)


def _block_rms(x: jax.Array) -> jax.Array:
    """``sqrt(mean(|x|^2))``, real for complex ``x`` (as optax)."""
    return jnp.sqrt(jnp.mean(_tree.abs_sq(x)))


def _clip_by_block_rms(threshold: ArrayLike) -> GradientTransformation:
    """Divides each leaf by ``max(1, rms(leaf) / threshold)`` (optax's ``clip_by_block_rms``)."""

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            uc = _tree.upcast(u)
            denom = jnp.maximum(1, _block_rms(uc) / _tree.hp(threshold, uc))
            return (uc / denom.astype(uc.dtype)).astype(u.dtype)

        return _tree.tree_map(one, updates), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


def _scale_by_param_block_rms(min_scale: float = 1e-3) -> GradientTransformation:
    """Multiplies each leaf by ``max(rms(param), min_scale)``.

    As optax's ``scale_by_param_block_rms``.
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _validate.require_params("adafactor", params)

        def one(u, p):
            uc = _tree.upcast(u)
            rms = _block_rms(_tree.upcast(p).astype(uc.dtype))
            ms = _tree.hp(min_scale, uc)
            return (uc * jnp.where(rms <= ms, ms, rms).astype(uc.dtype)).astype(u.dtype)

        return _tree.tree_map(one, updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


class _EmaState(NamedTuple):
    ema: Updates


def _ema(decay: ArrayLike, dtype: DType | None) -> GradientTransformation:
    """Momentum without bias correction: ``m = decay * m + (1 - decay) * u`` (optax's ``ema``)."""

    def rule(u, m):
        new = _tree.ema(u, m, decay)
        return new, new

    # a real dtype would drop the imaginary part of complex updates: refused
    slot = Slot(dtype, "dtype_momentum")
    return lift("adafactor", rule, _EmaState, (slot,), counter=False)


@checked_arguments
def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: ScalarOrSchedule = 0.8,
    decay_offset: ScalarOrSchedule = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: ScalarOrSchedule | None = 1.0,
    momentum: ScalarOrSchedule | None = None,
    dtype_momentum: DType | None = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: ScalarOrSchedule = 1e-30,
    factored: bool = True,
    weight_decay_mask: object = None,
) -> GradientTransformation:
    r"""Classic Adafactor (Shazeer & Stern), equal to ``optax.adafactor`` with the same arguments.

    With :math:`G_t = g_t^2 + \epsilon_1` and :math:`\hat\beta_t = 1 - t^{-c}`, a
    leaf whose two largest axes are big enough keeps row and column statistics
    :math:`R_t, C_t` (means of :math:`G_t` over one axis each); others keep
    :math:`V_t`:

    .. math::
        R_t &= \hat\beta_t R_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{\mathrm{col}}(G_t), \quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{\mathrm{row}}(G_t) \\
        \hat u_t &= g_t \Big/ \sqrt{\frac{R_t C_t}{\mathrm{mean}(R_t)}}
            \quad\text{or}\quad g_t / \sqrt{V_t} \\
        \tilde u_t &= \hat u_t / \max(1, \mathrm{rms}(\hat u_t)/d) \\
        u_t &= -\Big(\eta\, \max(\mathrm{rms}(p_{t-1}), 10^{-3})\, \tilde u_t
            \text{ (then momentum } \beta_1 \text{ without bias correction)}
            + \lambda\, p_{t-1}\Big)

    ``eta`` is the learning rate (omitted when ``None``), the parameter scale is
    used when ``multiply_by_parameter_scale``, clipping at :math:`d` is off when
    ``clipping_threshold`` is None, and the weight-decay term (not multiplied by
    the learning rate, as in optax) is added when ``weight_decay_rate`` is given.
    Every numeric argument lives in the state. For ``torch.optim.Adafactor``
    (a different algorithm) see :func:`torch_adafactor`. Complex parameters are
    optimized as optax does (statistics of :math:`|g|^2`, stored real; RMS of
    :math:`|x|`); with ``momentum``, ``dtype_momentum`` must then be complex (a real
    one, the default, refuses them). Statistics are stored in at least float32.

    Args:
        learning_rate: :math:`\eta`, or None for no learning-rate scaling.
        min_dim_size_to_factor: factor only leaves whose two largest axes are this big.
        decay_rate: :math:`c`.
        decay_offset: subtracted from the step in :math:`\hat\beta_t` (for fine-tuning).
        multiply_by_parameter_scale: scale by the params' root mean square.
        clipping_threshold: :math:`d \ge 1`, or None for no clipping.
        momentum: :math:`\beta_1`, or None for no momentum.
        dtype_momentum: storage dtype of the momentum (``None``: the params').
        weight_decay_rate: :math:`\lambda`, or None.
        eps: :math:`\epsilon_1`.
        factored: use factored statistics at all.
        weight_decay_mask: pytree of bools (or ``params -> mask``) selecting leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.adafactor(learning_rate=0.1)
        >>> params = jnp.array([3.0, -4.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> optimlab.apply_updates(params, updates).round(4)
        Array([ 2.6464, -3.6464], dtype=float32)

    References:
        Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    if learning_rate is not None:
        _validate.lr(learning_rate)
    if clipping_threshold is not None:
        d = _validate.concrete(clipping_threshold)
        if d is not None:
            _validate.check(d >= 1.0, f"Invalid clipping_threshold value: {d} (must be >= 1)")
    if momentum is not None:
        _validate.in_range(momentum, "momentum", 0.0, 1.0)
    if weight_decay_rate is not None:
        _validate.at_least_zero(weight_decay_rate, "weight_decay_rate")
    _validate.non_negative(eps, "epsilon")
    _validate.non_negative(decay_rate, "decay_rate")
    _rules.check_args(
        "adafactor",
        learning_rate=learning_rate,
        decay_rate=decay_rate,
        clipping_threshold=clipping_threshold,
        momentum=momentum,
        weight_decay_rate=weight_decay_rate,
        eps=eps,
        decay_offset=decay_offset,
    )
    _validate.finite(decay_offset, "decay_offset")
    _validate.non_negative_int(min_dim_size_to_factor, "min_dim_size_to_factor")

    def build(step, h):
        txs = [
            scale_by_factored_rms(
                factored,
                h["decay_rate"],
                h["decay_offset"],
                min_dim_size_to_factor,
                h["eps"],
                step=step,
            )
        ]
        if clipping_threshold is not None:
            txs.append(_clip_by_block_rms(h["clipping_threshold"]))
        if learning_rate is not None:
            txs.append(scale(h["learning_rate"]))
        if multiply_by_parameter_scale:
            txs.append(_scale_by_param_block_rms())
        if momentum is not None:
            txs.append(_ema(h["momentum"], dtype_momentum))
        if weight_decay_rate is not None:
            txs.append(add_decayed_weights(h["weight_decay_rate"], weight_decay_mask))
        return descend(*txs, maximize=False)

    hps = {"decay_rate": decay_rate, "decay_offset": decay_offset, "eps": eps}
    terms = optional(
        learning_rate=learning_rate,
        clipping_threshold=clipping_threshold,
        momentum=momentum,
        weight_decay_rate=weight_decay_rate,
    )
    return alias_hyperparams(build, **hps, **terms)
