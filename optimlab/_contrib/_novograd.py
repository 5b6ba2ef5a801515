"""NovoGrad: ``scale_by_novograd`` and the ``novograd`` alias."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain, never_negative
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._adam_like import check_optax_adam
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._moments import check_betas_eps
from .._transforms._scale import scale_by_learning_rate

__all__ = ["ScaleByNovogradState", "scale_by_novograd", "novograd"]


@never_negative("nu")
class ScaleByNovogradState(NamedTuple):
    """State of :func:`scale_by_novograd`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: the momentum of normalised gradients (one array per leaf).
        nu: the second moment of each leaf's gradient norm (one scalar per leaf).
    """

    count: jax.Array | None
    mu: Updates
    nu: Updates


@checked_arguments
def scale_by_novograd(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.25,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike = 0.0,
    weight_decay: ArrayLike = 0.0,
    mu_dtype: DType | None = None,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Normalises each leaf's gradient by a running average of its squared norm.

    See :func:`novograd` for the update rule; same numerics and defaults as
    ``optax.scale_by_novograd``. ``params`` are needed by ``update`` only when
    ``weight_decay`` is not a literal zero. Complex parameters are optimized as optax
    does (:math:`v` averages :math:`\lVert g \rVert^2 = \sum |g|^2`, stored real); a real
    ``mu_dtype`` refuses them.

    Args:
        b1: :math:`\beta_1`, the momentum.
        b2: :math:`\beta_2`, the decay of the norm average.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_r`, added inside it.
        weight_decay: :math:`\lambda`, the L2 term added to the normalised gradient.
        mu_dtype: storage dtype of the momentum (default: the params').
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByNovogradState`.
    """
    check_betas_eps(b1, b2, eps)
    _validate.non_negative(eps_root, "eps_root")
    _validate.weight_decay(weight_decay)
    _rules.check_args(
        "scale_by_novograd", b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay
    )
    use_decay = _validate.present(weight_decay)

    def init_fn(params):
        _tree.reject_complex_for_real_dtypes("scale_by_novograd", params, mu_dtype=mu_dtype)
        count = initial_count(step)
        nu = _tree.tree_map(lambda p: jnp.zeros((), _tree.real_dtype(p)), params)
        return ScaleByNovogradState(count, _tree.zeros_like(params, mu_dtype), nu)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.check_match("scale_by_novograd", updates, state.mu)
        if use_decay and params is None:
            raise ValueError(
                "scale_by_novograd: params is None; pass the current params to update() "
                "(needed for weight_decay)."
            )
        count = current_count(step, state)
        first = count == 0

        def one(g, m, v, p=None):
            gc = _tree.upcast(g)
            sq_norm = jnp.sum(_tree.abs_sq(gc))  # ||g||^2, real for complex g (as optax)
            v_new = jnp.where(first, sq_norm, _tree.ema(sq_norm, v.astype(sq_norm.dtype), b2))
            # optax normalises by the stored nu
            v_new = v_new.astype(v.dtype).astype(sq_norm.dtype)
            denom = jnp.sqrt(v_new + _tree.scalar_like(eps_root, v_new)) + _tree.scalar_like(
                eps, v_new
            )
            normed = gc / denom.astype(gc.dtype)
            if p is not None:
                normed = normed + _tree.scalar_like(weight_decay, gc) * _tree.upcast(p).astype(
                    gc.dtype
                )
            m_new = jnp.where(
                first, normed, _tree.scalar_like(b1, gc) * m.astype(gc.dtype) + normed
            )
            m_new = m_new.astype(m.dtype)
            return m_new.astype(g.dtype), m_new, v_new.astype(v.dtype)

        decayed = (params,) if use_decay else ()
        u, mu, nu = _tree.tree_map_multi(one, 3, updates, state.mu, state.nu, *decayed)
        new_count = next_count(step, state)
        return u, ScaleByNovogradState(new_count, mu, nu)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.25,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
) -> GradientTransformation:
    r"""NovoGrad: layer-wise second moments with decoupled-style decay inside the momentum.

    For each leaf (layer), with :math:`\lVert g_t \rVert` its gradient norm:

    .. math::
        v_1 &= \lVert g_1 \rVert^2, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \lVert g_t \rVert^2 \\
        d_t &= \frac{g_t}{\sqrt{v_t + \epsilon_r} + \epsilon} + \lambda\, p_{t-1} \\
        m_1 &= d_1, \qquad m_t = \beta_1 m_{t-1} + d_t \\
        u_t &= -\eta\, m_t

    Same arguments and defaults as ``optax.novograd``. Every numeric argument
    lives in the state, ``weight_decay`` too when it is ``0.0`` (settable later);
    ``None`` leaves the term out (and ``params`` are then not needed). Complex
    parameters are optimized as optax does (:math:`v` averages
    :math:`\lVert g \rVert^2 = \sum |g|^2`).

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        eps_root: :math:`\epsilon_r \ge 0`.
        weight_decay: :math:`\lambda \ge 0`.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.novograd(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> updates, _ = tx.update(jnp.array([3.0, -4.0]), tx.init(params), params)
        >>> [round(float(x), 4) for x in updates]
        [-0.06, 0.08]

    References:
        Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments
        for Training of Deep Networks <https://arxiv.org/abs/1905.11286>`_, 2019.
    """
    _validate.lr(learning_rate)
    moments = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    check_optax_adam(
        "novograd", dict(learning_rate=learning_rate), moments, weight_decay=weight_decay
    )
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        wd = h["weight_decay"] if use_decay else 0.0
        return chain(
            scale_by_novograd(h["b1"], h["b2"], h["eps"], h["eps_root"], wd, step=step),
            scale_by_learning_rate(h["learning_rate"]),
        )

    decay = optional(weight_decay=weight_decay)
    return alias_hyperparams(build, learning_rate=learning_rate, **moments, **decay)
