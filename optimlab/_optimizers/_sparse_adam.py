"""Lazy Adam: the ``scale_by_sparse_adam`` primitive and the ``sparse_adam`` alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, RealDType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import torch_style

__all__ = ["ScaleBySparseAdamState", "scale_by_sparse_adam", "sparse_adam"]


@never_negative("nu")
class ScaleBySparseAdamState(NamedTuple):
    """State of :func:`scale_by_sparse_adam`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: first moment (torch's ``exp_avg``), changed only at rows with a gradient.
        nu: second moment (torch's ``exp_avg_sq``), changed only at rows with a gradient.
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


def _row_mask(g: jax.Array) -> jax.Array:
    """True at the leading-axis rows of ``g`` holding a non-zero entry, broadcast to ``g``."""
    nonzero = g != 0
    if g.ndim <= 1:
        return nonzero
    rows = jnp.any(nonzero, axis=tuple(range(1, g.ndim)), keepdims=True)
    return jnp.broadcast_to(rows, g.shape)


@checked_arguments
def scale_by_sparse_adam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    *,
    mu_dtype: RealDType | None = None,
    nu_dtype: RealDType | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Adam's moment ratio applied lazily, only at rows with a gradient (torch's ``SparseAdam``).

    See :func:`sparse_adam` for the update rule. A row is an index along the
    leading axis (an element for vectors and scalars); it is *active* when its
    gradient has any non-zero entry. Inactive rows keep their moments and get a
    zero update. Math is done in at least float32; moments are stored in
    ``mu_dtype``/``nu_dtype`` (default: the params').

    Args:
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        eps: :math:`\epsilon`, added to :math:`\sqrt{v}` (not bias-corrected, as torch).
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleBySparseAdamState`.

    Examples:
        >>> tx = optimlab.scale_by_sparse_adam()
        >>> g = jnp.array([[1.0, 2.0], [0.0, 0.0]])
        >>> tx.update(g, tx.init(g))[0].round(3)
        Array([[1., 1.],
               [0., 0.]], dtype=float32)
    """
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _rules.check_args("scale_by_sparse_adam", b1=b1, b2=b2, eps=eps)

    def init_fn(params):
        _tree.reject_complex("sparse_adam", params, " (torch's SparseAdam neither)")
        count = initial_count(step)
        return ScaleBySparseAdamState(
            count, _tree.zeros_like(params, mu_dtype), _tree.zeros_like(params, nu_dtype)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_sparse_adam", updates, state.mu)
        count = current_count(step, state)
        scalar = jnp.sqrt(_tree.bias_correction(b2, count)) / _tree.bias_correction(b1, count)

        def one(g, m, v):
            gc = _tree.upcast(g)
            active = _row_mask(gc)
            mc, vc = m.astype(gc.dtype), v.astype(gc.dtype)
            dm = (gc - mc) * _tree.scalar_like(1 - jnp.asarray(b1), gc)
            dv = (gc * gc - vc) * _tree.scalar_like(1 - jnp.asarray(b2), gc)
            m_new, v_new = mc + dm, vc + dv
            denom = jnp.sqrt(v_new) + _tree.scalar_like(eps, gc)
            u = (m_new / denom) * _tree.scalar_like(scalar, gc)
            zero = jnp.zeros_like(gc)
            return (
                jnp.where(active, u, zero).astype(g.dtype),
                jnp.where(active, m_new, mc).astype(m.dtype),
                jnp.where(active, v_new, vc).astype(v.dtype),
            )

        u, mu, nu = _tree.tree_map_multi(one, 3, updates, state.mu, state.nu)
        new_count = next_count(step, state)
        return u, ScaleBySparseAdamState(new_count, mu, nu)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def sparse_adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    maximize: bool = False,
    *,
    mu_dtype: RealDType | None = None,
    nu_dtype: RealDType | None = None,
) -> GradientTransformation:
    r"""Lazy Adam, numerically identical to ``torch.optim.SparseAdam``.

    For embedding tables and other params whose gradients touch few rows. With
    :math:`g_t = \pm\nabla f(p_{t-1})` (sign flipped by ``maximize``) and
    :math:`R_t` the set of leading-axis rows where :math:`g_t` has a non-zero
    entry, for :math:`r \in R_t`:

    .. math::
        m_{t,r} &= m_{t-1,r} + (1-\beta_1)(g_{t,r} - m_{t-1,r}) \\
        v_{t,r} &= v_{t-1,r} + (1-\beta_2)(g_{t,r}^2 - v_{t-1,r}) \\
        u_{t,r} &= -\eta\, \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_{t,r}}{\sqrt{v_{t,r}} + \epsilon}

    and, for :math:`r \notin R_t`, :math:`m, v` are unchanged and :math:`u_{t,r} = 0`.
    The step :math:`t` counts every update, as torch's does.

    torch receives sparse gradients (``nn.Embedding(sparse=True)``) and updates the
    rows they list; JAX gradients are dense, so a row is taken as listed when its
    gradient is non-zero. The one difference: a row listed by torch with an
    exactly zero gradient is updated by torch (its moments decay) and skipped here.
    Complex params are refused, as by torch.

    Args:
        learning_rate: :math:`\eta > 0`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon > 0`.
        maximize: maximise the objective.
        mu_dtype: storage dtype of the first moment.
        nu_dtype: storage dtype of the second moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.sparse_adam(learning_rate=0.1)
        >>> table = jnp.ones((3, 2))
        >>> grads = jnp.zeros((3, 2)).at[1].set(1.0)
        >>> updates, state = tx.update(grads, tx.init(table), table)
        >>> optimlab.apply_updates(table, updates).round(4)
        Array([[1. , 1. ],
               [0.9, 0.9],
               [1. , 1. ]], dtype=float32)

    References:
        Kingma & Ba, `Adam: A Method for Stochastic Optimization
        <https://arxiv.org/abs/1412.6980>`_, 2014.
    """
    lr = _validate.concrete(learning_rate)
    if lr is not None:
        _validate.check(0.0 < lr, f"Invalid learning rate: {lr}")
    e = _validate.concrete(eps)
    if e is not None:
        _validate.check(0.0 < e, f"Invalid epsilon value: {e}")
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    numbers: dict[str, Any] = dict(b1=b1, b2=b2, eps=eps)
    _rules.check_args("sparse_adam", learning_rate=learning_rate, **numbers)
    return torch_style(
        lambda step, h: scale_by_sparse_adam(
            *[h[k] for k in numbers], mu_dtype=mu_dtype, nu_dtype=nu_dtype, step=step
        ),
        learning_rate=learning_rate,
        maximize=maximize,
        owner="sparse_adam",
        **numbers,
    )
