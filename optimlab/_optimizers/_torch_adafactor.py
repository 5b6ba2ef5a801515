"""torch's ``Adafactor`` (``torch_adafactor``/``scale_by_torch_adafactor``).

``torch.optim.Adafactor`` is a different algorithm from the classic Adafactor of
optax (:func:`~optimlab.adafactor`): relative step size ``min(lr, 1/sqrt(t))``,
``beta2_decay``, a different epsilon pair and factoring of every leaf with two or
more dimensions.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, descend, optional
from .._transforms._scale import add_decayed_weights

__all__ = ["ScaleByTorchAdafactorState", "scale_by_torch_adafactor", "torch_adafactor"]


@never_negative("row_var", "col_var", "variance")
class ScaleByTorchAdafactorState(NamedTuple):
    """State of :func:`scale_by_torch_adafactor`, with torch's shapes.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        row_var: row statistics of leaves with two or more axes, shape ``(..., R, 1)``
            (``None`` elsewhere), torch's ``row_var``.
        col_var: column statistics, shape ``(..., 1, C)`` (``None`` elsewhere),
            torch's ``col_var``.
        variance: full second moment of scalar and vector leaves (``None`` elsewhere),
            torch's ``variance``.
    """

    count: jax.Array | None
    row_var: Updates
    col_var: Updates
    variance: Updates


@checked_arguments
def scale_by_torch_adafactor(
    learning_rate: ArrayLike = 1e-2,
    beta2_decay: ArrayLike = -0.8,
    eps1: ArrayLike | None = None,
    eps2: ArrayLike = 1e-3,
    d: ArrayLike = 1.0,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""torch's Adafactor step: factored second moment and relative step size.

    See :func:`torch_adafactor` for the update rule. Returns the update *before*
    the sign flip: :math:`\alpha_t \hat u_t / \max(1, \mathrm{rms}(\hat u_t)/d)`,
    which already includes the learning rate (through :math:`\rho_t`), so it is
    followed by ``scale(-1.0)`` and no learning rate. Needs the params.

    Args:
        learning_rate: :math:`\eta`, the cap of the relative step size.
        beta2_decay: :math:`c \le 0`; the moment weight at step t is :math:`t^{c}`.
        eps1: :math:`\epsilon_1`, or None for the machine epsilon of each leaf's dtype.
        eps2: :math:`\epsilon_2`, the smallest parameter scale.
        d: the clipping threshold :math:`d \ge 1`.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a
        :class:`ScaleByTorchAdafactorState`.

    Examples:
        >>> tx = optimlab.scale_by_torch_adafactor(0.5)
        >>> p = jnp.array([3.0, -4.0])
        >>> tx.update(p, tx.init(p), p)[0].round(4)
        Array([ 1.7678, -1.7678], dtype=float32)
    """
    _rules.check_args(
        "scale_by_torch_adafactor",
        learning_rate=learning_rate,
        beta2_decay=beta2_decay,
        eps1=eps1,
        eps2=eps2,
        d=d,
    )

    def init_fn(params):
        _tree.reject_complex("scale_by_torch_adafactor", params, " (torch's Adafactor neither)")
        count = initial_count(step)
        row = _tree.tree_map(
            lambda p: _tree.reduced_zeros(p, -1, p.dtype, keepdims=True) if p.ndim > 1 else None,
            params,
        )
        col = _tree.tree_map(
            lambda p: _tree.reduced_zeros(p, -2, p.dtype, keepdims=True) if p.ndim > 1 else None,
            params,
        )
        var = _tree.tree_map(lambda p: jnp.zeros_like(p) if p.ndim <= 1 else None, params)
        return ScaleByTorchAdafactorState(count, row, col, var)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _validate.require_params("scale_by_torch_adafactor", params)
        _tree.check_match("scale_by_torch_adafactor", updates, params, "params")
        count = current_count(step, state)
        lr = jnp.asarray(learning_rate)
        hdt = lr.dtype if jnp.issubdtype(lr.dtype, jnp.floating) else jnp.result_type(float)
        t = _tree.step_as(count, hdt)
        weight = t ** jnp.asarray(beta2_decay).astype(hdt)
        rho = jnp.minimum(lr.astype(hdt), 1 / jnp.sqrt(t))

        def norm(x):
            return jnp.sqrt(jnp.sum(x * x))

        def one(g, p, rv, cv, v):
            gc = _tree.upcast(g)
            pc = _tree.upcast(p).astype(gc.dtype)
            e1 = jnp.finfo(p.dtype).eps if eps1 is None else eps1
            e1 = _tree.scalar_like(e1, gc)
            w = weight
            alpha = (
                jnp.maximum(
                    jnp.asarray(eps2).astype(hdt), norm(pc).astype(hdt) / np.sqrt(max(p.size, 1))
                )
                * rho
            )
            if g.ndim > 1:
                row_mean = norm_axis(gc, -1) ** 2 / g.shape[-1]
                col_mean = norm_axis(gc, -2) ** 2 / g.shape[-2]
                rv_new = _tree.lerp(rv.astype(gc.dtype), row_mean, w)
                cv_new = _tree.lerp(cv.astype(gc.dtype), col_mean, w)
                est = (rv_new * cv_new) / jnp.maximum(jnp.mean(rv_new, axis=-2, keepdims=True), e1)
                moments = (rv_new.astype(rv.dtype), cv_new.astype(cv.dtype), None)
            else:
                v_new = _tree.lerp(v.astype(gc.dtype), gc * gc, w)
                est = v_new
                moments = (None, None, v_new.astype(v.dtype))
            upd = jax.lax.rsqrt(jnp.maximum(est, e1 * e1)) * gc
            denom = jnp.maximum(
                1, norm(upd).astype(hdt) / (np.sqrt(max(g.size, 1)) * jnp.asarray(d).astype(hdt))
            )
            out = upd * _tree.scalar_like(alpha / denom, gc)
            return (out.astype(g.dtype), *moments)

        def norm_axis(x, axis):
            return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=True))

        u, rv, cv, v = _tree.tree_map_multi(
            one, 4, updates, params, state.row_var, state.col_var, state.variance
        )
        new_count = next_count(step, state)
        return u, ScaleByTorchAdafactorState(new_count, rv, cv, v)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def torch_adafactor(
    learning_rate: ScalarOrSchedule = 1e-2,
    beta2_decay: ScalarOrSchedule = -0.8,
    eps1: ScalarOrSchedule | None = None,
    eps2: ScalarOrSchedule = 1e-3,
    d: ScalarOrSchedule = 1.0,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
) -> GradientTransformation:
    r"""torch's Adafactor, numerically identical to ``torch.optim.Adafactor``.

    With :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``),
    :math:`\hat\beta_t = 1 - t^{c}` and :math:`\rho_t = \min(\eta, 1/\sqrt t)`.
    Leaves with two or more axes keep row and column statistics over their last
    two axes; scalars and vectors keep :math:`V_t`:

    .. math::
        R_t &= \hat\beta_t R_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{-1}(g_t^2), \quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{-2}(g_t^2) \\
        \hat V_t &= \frac{R_t C_t}{\max(\mathrm{mean}_{-2}(R_t), \epsilon_1)}
            \quad\text{or}\quad V_t \\
        \hat u_t &= g_t / \sqrt{\max(\hat V_t, \epsilon_1^2)}, \qquad
        \alpha_t = \max(\epsilon_2, \mathrm{rms}(p_{t-1}))\, \rho_t \\
        u_t &= -\lambda\eta\, p_{t-1} - \frac{\alpha_t}{\max(1, \mathrm{rms}(\hat u_t)/d)}\,\hat u_t

    This is not the classic Adafactor of :func:`adafactor` (optax's): it has no
    :math:`\epsilon` inside the squared gradient, a relative step capped by the
    learning rate, decoupled weight decay scaled by the learning rate, and it
    factors every leaf with two or more axes. ``eps1=None`` uses each leaf dtype's
    machine epsilon (torch's default) and is then not in the state. Complex params
    are refused, as by torch. Zero gradients give zero updates (without weight decay).

    Args:
        learning_rate: :math:`\eta \ge 0`.
        beta2_decay: :math:`c \le 0`.
        eps1: :math:`\epsilon_1 \ge 0`, or None.
        eps2: :math:`\epsilon_2 \ge 0`.
        d: clipping threshold :math:`d \ge 1`.
        weight_decay: :math:`\lambda \ge 0`, decoupled (multiplied by the learning rate).
        maximize: maximise the objective.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.torch_adafactor(learning_rate=0.1)
        >>> params = jnp.array([3.0, -4.0])
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> optimlab.apply_updates(params, updates).round(4)
        Array([ 2.6464, -3.6464], dtype=float32)

    References:
        Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    _validate.check_bounds(
        ("Learning rate", learning_rate, ">=", 0.0),
        ("beta2_decay", beta2_decay, "<=", 0.0),
        ("epsilon1", eps1, ">=", 0.0),
        ("epsilon2", eps2, ">=", 0.0),
        ("Clipping threshold d", d, ">=", 1.0),
        ("weight_decay", weight_decay, ">=", 0.0),
    )
    _rules.check_args(
        "torch_adafactor",
        learning_rate=learning_rate,
        beta2_decay=beta2_decay,
        eps1=eps1,
        eps2=eps2,
        d=d,
        weight_decay=weight_decay,
    )
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = [
            scale_by_torch_adafactor(
                h["learning_rate"], h["beta2_decay"], h.get("eps1"), h["eps2"], h["d"], step=step
            )
        ]
        if use_decay:
            txs.append(add_decayed_weights(h["learning_rate"] * h["weight_decay"]))
        return descend(*txs, maximize=maximize)

    return alias_hyperparams(
        build,
        learning_rate=learning_rate,
        beta2_decay=beta2_decay,
        eps2=eps2,
        d=d,
        **optional(eps1=eps1, weight_decay=weight_decay),
    )
