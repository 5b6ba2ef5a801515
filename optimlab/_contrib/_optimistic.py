"""Optimism: ``scale_by_optimistic_gradient`` with ``optimistic_gradient_descent`` and ``optimistic_adam`` (and ``_v2``)."""  # noqa: E501 (one sentence, the reference page's section title)

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._lift import Slot, lift
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._optimizers._adam import scale_by_adam_root
from .._transforms._adam_like import check_optax_adam
from .._transforms._alias import alias_hyperparams, optional, torch_style
from .._transforms._scale import scale, scale_by_learning_rate

__all__ = [
    "ScaleByOptimisticGradientState",
    "scale_by_optimistic_gradient",
    "optimistic_gradient_descent",
    "optimistic_adam",
    "optimistic_adam_v2",
]


class ScaleByOptimisticGradientState(NamedTuple):
    """State of :func:`scale_by_optimistic_gradient`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        previous_gradient: the incoming update of the previous step.
    """

    count: jax.Array | None
    previous_gradient: Updates


@checked_arguments
def scale_by_optimistic_gradient(
    alpha: ArrayLike = 1.0,
    beta: ArrayLike = 1.0,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Extrapolates with the previous update: :math:`(\alpha+\beta) g_t - \beta g_{t-1}`.

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}, \qquad g_0 := g_1

    At the first step there is no previous update, so it is taken equal to the
    current one (:math:`u_1 = \alpha g_1`), as in optax. See
    :func:`optimistic_gradient_descent`. optax marks the first step with a boolean
    ``is_initial_step``; here it is ``count == 0``.

    Args:
        alpha: :math:`\alpha`, the weight of the current update.
        beta: :math:`\beta`, the weight of the optimistic correction.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a
        :class:`ScaleByOptimisticGradientState`.
    """
    _validate.non_negative(alpha, "alpha")
    _validate.non_negative(beta, "beta")
    _rules.check_args("scale_by_optimistic_gradient", alpha=alpha, beta=beta)

    def rule(g, prev, first):
        b = _tree.hp(beta, g).astype(g.dtype)
        ab = _tree.hp(jnp.asarray(alpha) + jnp.asarray(beta), g).astype(g.dtype)
        # select_n on the scalar predicate: no broadcast, no nested jit per leaf.
        return ab * g - b * jax.lax.select_n(first, prev, g), g

    return lift(
        "scale_by_optimistic_gradient",
        rule,
        ScaleByOptimisticGradientState,
        (Slot(),),
        step=step,
        prepare=lambda count: {"first": count == 0},
    )


@checked_arguments
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
) -> GradientTransformation:
    r"""Optimistic gradient descent, for saddle-point (min-max) problems.

    .. math::
        u_t = -\eta\,\big((\alpha + \beta)\, g_t - \beta\, g_{t-1}\big),
        \qquad g_0 := g_1

    Same arguments and defaults as ``optax.optimistic_gradient_descent``; the
    three numbers live in the state. Complex parameters are supported.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        alpha: :math:`\alpha \ge 0`.
        beta: :math:`\beta \ge 0`, the optimism.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.optimistic_gradient_descent(learning_rate=0.1)
        >>> params = jnp.zeros(1)
        >>> state = tx.init(params)
        >>> _, state = tx.update(jnp.array([1.0]), state, params)
        >>> updates, _ = tx.update(jnp.array([3.0]), state, params)
        >>> [round(float(x), 4) for x in updates]
        [-0.5]

    References:
        Mokhtari et al., `A Unified Analysis of Extra-gradient and Optimistic
        Gradient Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_,
        2019.
    """
    _validate.lr(learning_rate)
    _validate.non_negative(alpha, "alpha")
    _validate.non_negative(beta, "beta")
    _rules.check_args(
        "optimistic_gradient_descent", learning_rate=learning_rate, alpha=alpha, beta=beta
    )

    return torch_style(
        lambda step, h: scale_by_optimistic_gradient(h["alpha"], h["beta"], step=step),
        learning_rate=learning_rate,
        alpha=alpha,
        beta=beta,
    )


@checked_arguments
def optimistic_adam(
    learning_rate: ScalarOrSchedule,
    optimism: ScalarOrSchedule | None = None,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = True,
    alpha: ScalarOrSchedule | None = None,
    beta: ScalarOrSchedule | None = None,
) -> GradientTransformation:
    r"""Optimistic Adam with optax's ``optimistic_adam`` interface: the learning rate is the step.

    The rule of :func:`optimistic_adam_v2` with :math:`\alpha = \eta`,
    :math:`\beta` = ``optimism`` (:math:`\eta` when ``None``) and a unit
    learning rate:

    .. math::
        u_t = -\big((\eta + \beta)\, r_t - \beta\, r_{t-1}\big)

    Same arguments, defaults and numerics as ``optax.optimistic_adam``, which optax
    deprecates in favour of ``optax.optimistic_adam_v2``
    (:func:`optimistic_adam_v2` here); optax refuses a schedule, which here also
    drives the optimism when ``optimism`` is ``None``. Every numeric argument lives
    in the state. Giving ``alpha`` or ``beta`` (the keywords of optimlab's former
    ``optimistic_adam``, now :func:`optimistic_adam_v2`) builds
    ``optimistic_adam_v2`` with a ``DeprecationWarning``; they will be refused in
    the next release.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        optimism: :math:`\beta \ge 0`, or ``None`` for :math:`\eta`.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added outside the square root.
        eps_root: :math:`\epsilon_r \ge 0`, added inside it.
        mu_dtype: storage dtype of the first moment (default: the params').
        nesterov: use Nesterov's look-ahead of the first moment.
        alpha: deprecated, see above.
        beta: deprecated, see above.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        The same optimizer as :func:`optimistic_adam_v2` with a unit learning rate:

        >>> g, x = jnp.array([1.0, -2.0]), jnp.zeros(2)
        >>> old = optimlab.optimistic_adam(0.1, optimism=0.05)
        >>> new = optimlab.optimistic_adam_v2(1.0, alpha=0.1, beta=0.05)
        >>> bool(jnp.array_equal(old.update(g, old.init(x))[0], new.update(g, new.init(x))[0]))
        True

    References:
        Daskalakis et al., `Training GANs with Optimism
        <https://arxiv.org/abs/1711.00141>`_, 2018.
    """
    if alpha is not None or beta is not None:
        _rules.check_args("optimistic_adam", alpha=alpha, beta=beta)
        warnings.warn(
            "optimistic_adam: 'alpha' and 'beta' are optimistic_adam_v2's arguments "
            "(optimistic_adam now has optax's interface, learning_rate and optimism); "
            "use optimistic_adam_v2.",
            DeprecationWarning,
            stacklevel=2,
        )
        return optimistic_adam_v2(
            learning_rate,
            alpha=1.0 if alpha is None else alpha,
            beta=1.0 if beta is None else beta,
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            mu_dtype=mu_dtype,
            nesterov=nesterov,
        )
    _validate.lr(learning_rate)
    if optimism is not None:
        _validate.non_negative(optimism, "optimism")
    moments = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    build = _adam_then_optimism(
        "optimistic_adam",
        lambda h: (h["learning_rate"], h.get("optimism", h["learning_rate"])),
        lambda h: scale(-1.0),
        dict(learning_rate=learning_rate, optimism=optimism),
        moments,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
    )
    hps = dict(learning_rate=learning_rate, **moments, **optional(optimism=optimism))
    return alias_hyperparams(build, **hps)


@checked_arguments
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: DType | None = None,
    nesterov: bool = True,
) -> GradientTransformation:
    r"""Optimistic Adam: optimistic extrapolation of Adam's (Nesterov) direction.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \hat m_t &= \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g_t}{1-\beta_1^t}
            \quad \Big(\text{or } \frac{m_t}{1-\beta_1^t} \text{ without Nesterov}\Big) \\
        r_t &= \frac{\hat m_t}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_r} + \epsilon} \\
        u_t &= -\eta\,\big((\alpha + \beta)\, r_t - \beta\, r_{t-1}\big), \qquad r_0 := r_1

    The interface of ``optax.optimistic_adam_v2`` (same arguments, keyword-only
    after ``learning_rate``, same defaults and numerics), which optax announces as
    the future interface of ``optax.optimistic_adam``; :func:`optimistic_adam` has
    the older one, ``optimistic_adam(lr, optimism)``, which equals
    ``optimistic_adam_v2(1.0, alpha=lr, beta=optimism)``. Every numeric argument
    lives in the state. Complex parameters are optimized as optax does
    (moments of :math:`|g|^2`); a real ``mu_dtype`` refuses them.

    Args:
        learning_rate: :math:`\eta`, a scalar or a schedule.
        alpha: :math:`\alpha \ge 0`.
        beta: :math:`\beta \ge 0`, the optimism.
        b1: :math:`\beta_1 \in [0, 1)`.
        b2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`, added outside the square root.
        eps_root: :math:`\epsilon_r \ge 0`, added inside it.
        mu_dtype: storage dtype of the first moment (default: the params').
        nesterov: use Nesterov's look-ahead of the first moment.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        When the gradient flips, Adam's direction turns slowly (:math:`r_2 \approx -0.05`);
        subtracting :math:`\beta r_1` turns the step at once:

        >>> tx = optimlab.optimistic_adam_v2(0.1, nesterov=False)
        >>> x = jnp.zeros(1)
        >>> state = tx.init(x)
        >>> for g in (1.0, -1.0):
        ...     updates, state = tx.update(jnp.array([g]), state, x)
        ...     print(round(float(updates[0]), 4))
        -0.1
        0.1105

    References:
        Daskalakis et al., `Training GANs with Optimism
        <https://arxiv.org/abs/1711.00141>`_, 2018.
    """
    _validate.lr(learning_rate)
    _validate.non_negative(alpha, "alpha")
    _validate.non_negative(beta, "beta")
    lead = dict(learning_rate=learning_rate, alpha=alpha, beta=beta)
    moments = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    build = _adam_then_optimism(
        "optimistic_adam_v2",
        lambda h: (h["alpha"], h["beta"]),
        lambda h: scale_by_learning_rate(h["learning_rate"]),
        lead,
        moments,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
    )
    return alias_hyperparams(build, **lead, **moments)


def _adam_then_optimism(name, weights, tail, lead, moments, *, mu_dtype, nesterov):
    """Validates Adam's numbers; returns the alias's ``build`` (Adam's direction, then optimism).

    The build chains Adam's direction in optax's form, its optimistic extrapolation
    with ``weights(h) = (alpha, beta)``, then ``tail(h)``. ``lead``: the alias's
    own numbers, already validated, checked first by name.
    """
    check_optax_adam(name, lead, moments)

    def build(step, h):
        root = scale_by_adam_root(
            **{k: h[k] for k in moments}, mu_dtype=mu_dtype, nesterov=nesterov, step=step, name=name
        )
        return chain(root, scale_by_optimistic_gradient(*weights(h), step=step), tail(h))

    return build
