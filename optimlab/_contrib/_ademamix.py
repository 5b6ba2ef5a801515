"""AdEMAMix: Adam with a second, slow exponential moving average of the gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, never_negative
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import torch_style

__all__ = ["ScaleByAdemamixState", "scale_by_ademamix", "ademamix"]


@never_negative("nu")
class ScaleByAdemamixState(NamedTuple):
    """State of :func:`scale_by_ademamix`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        m1: fast first moment (bias-corrected when used).
        m2: slow first moment (never bias-corrected).
        nu: second moment.
    """

    count: jax.Array | None
    m1: Updates
    m2: Updates
    nu: Updates


def _check(b1: Any, b2: Any, b3: Any, alpha: Any, eps: Any, eps_root: Any) -> None:
    """AdEMAMix's numbers in torch's wording (the betas by index), for primitive and alias."""
    for i, b in enumerate((b1, b2, b3)):
        _validate.beta(b, i)
    _validate.non_negative(alpha, "alpha")
    _validate.eps(eps)
    _validate.eps(eps_root, "eps_root")


@checked_arguments
def scale_by_ademamix(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    b3: ArrayLike = 0.9999,
    alpha: ArrayLike = 6.0,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike = 0.0,
    *,
    mu_dtype: DType | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Rescales updates by AdEMAMix's mixture of a fast and a slow moment.

    See :func:`ademamix` for the rule. ``mu_dtype`` sets the storage of both
    first moments; the second moment is stored in the params' dtype (optax also
    stores it in ``mu_dtype``). Complex parameters are optimized as optax does (the
    second moment is of :math:`|g|^2`, stored real); a real ``mu_dtype`` refuses them.

    Args:
        b1: fast decay :math:`\beta_1`.
        b2: second-moment decay :math:`\beta_2`.
        b3: slow decay :math:`\beta_3`.
        alpha: mixing weight :math:`\alpha` of the slow moment.
        eps: :math:`\epsilon`, outside the square root.
        eps_root: :math:`\epsilon_r`, inside the square root.
        mu_dtype: storage dtype of the first moments.
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByAdemamixState`.
    """
    numbers = dict(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root)
    _check(**numbers)
    _rules.check_args("scale_by_ademamix", **numbers)

    def prepare(count):
        # Once per update, for every leaf (the lifter computes them once).
        return {"bc1": _tree.bias_correction(b1, count), "bc2": _tree.bias_correction(b2, count)}

    def rule(g, m1, m2, v, bc1, bc2):
        m1n = _tree.update_moment(g, m1, b1, 1)
        m2n = _tree.update_moment(g, m2, b3, 1)
        vn = _tree.update_moment(g, v, b2, 2)  # of |g|^2, real for complex g (as optax)
        m1h = m1n / _tree.scalar_like(bc1, g)
        vh = vn / _tree.scalar_like(bc2, vn)
        denom = jnp.sqrt(vh + _tree.scalar_like(eps_root, vn)) + _tree.scalar_like(eps, vn)
        return (m1h + _tree.scalar_like(alpha, g) * m2n) / denom.astype(m1h.dtype), m1n, m2n, vn

    mu = Slot(mu_dtype, "mu_dtype")
    return lift(
        "scale_by_ademamix",
        rule,
        ScaleByAdemamixState,
        (mu, mu, Slot(real=True)),
        step=step,
        prepare=prepare,
    )


@checked_arguments
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: DType | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""AdEMAMix: Adam plus a slow, uncorrected moving average that keeps old gradients useful.

    .. math::
        m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
        m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        u_t &= -\eta\Big(\frac{m^{(1)}_t/(1-\beta_1^t) + \alpha\, m^{(2)}_t}
            {\sqrt{v_t/(1-\beta_2^t) + \epsilon_r} + \epsilon} + \lambda x_t\Big)

    The paper warms up :math:`\alpha` and :math:`\beta_3`; give them as schedules
    (they are evaluated at the optimizer's single step count). Matches optax's
    ``contrib.ademamix``. Complex parameters are optimized as optax does (moments
    of :math:`|g|^2`).

    Args:
        learning_rate: :math:`\eta`.
        b1: :math:`\beta_1`.
        b2: :math:`\beta_2`.
        b3: :math:`\beta_3`, the slow decay.
        alpha: :math:`\alpha`.
        eps: :math:`\epsilon`.
        eps_root: :math:`\epsilon_r`.
        mu_dtype: storage dtype of the first moments.
        weight_decay: decoupled decay :math:`\lambda`.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        The slow moment is not bias-corrected: it adds :math:`\alpha(1-\beta_3) = 0.5`
        to Adam's first step :math:`-\eta\operatorname{sign}(g)`:

        >>> tx = optimlab.ademamix(0.1, b3=0.9, alpha=5.0)
        >>> x = jnp.array([1.0, -1.0])
        >>> updates, _ = tx.update(jnp.array([0.3, -2.0]), tx.init(x), x)
        >>> [round(float(u), 4) for u in updates]
        [-0.15, 0.15]

    References:
        Pagliardini, Ablin & Grangier, `The AdEMAMix Optimizer: Better, Faster, Older
        <https://arxiv.org/abs/2409.03137>`_, 2024.
    """
    _validate.lr(learning_rate)
    numbers: dict[str, Any] = dict(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root)
    _check(**numbers)
    _validate.weight_decay(weight_decay)
    _rules.check_args("ademamix", learning_rate=learning_rate, **numbers, weight_decay=weight_decay)
    return torch_style(  # scale_by_ademamix's numbers, in its order
        lambda step, h: scale_by_ademamix(*[h[k] for k in numbers], mu_dtype=mu_dtype, step=step),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled=True,
        mask=mask,
        **numbers,
    )
