"""Gradient noise: ``add_noise`` and the ``noisy_sgd`` alias."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, ScalarOrSchedule
from .._transforms._alias import torch_style

__all__ = ["AddNoiseState", "add_noise", "noisy_sgd"]


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        rng_key: the typed random key the next noise is drawn from.
    """

    count: jax.Array | None
    rng_key: jax.Array


def _key_maker(key: Any) -> Callable[[], jax.Array]:
    """A function making a fresh typed key from ``key``, each call a new buffer.

    Accepts what ``optax.noisy_sgd`` accepts: an int seed (a Python, NumPy or JAX
    integer scalar), a typed ``jax.random`` key, or raw ``uint32`` key data. A
    concrete key is kept on the host, so each ``init`` puts a new, uncommitted key
    in the state: donating the state, or placing it on a mesh, touches no shared
    buffer.
    """
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        typed = key
    elif _is_array(key) and key.dtype == np.uint32 and np.ndim(key) == 1:
        typed = jax.random.wrap_key_data(key)
    elif (
        (isinstance(key, int | np.integer) or _is_array(key) and np.ndim(key) == 0)
        and jnp.issubdtype(jnp.result_type(key), jnp.integer)
        and not isinstance(key, bool)
    ):
        typed = jax.random.key(key)
    else:
        raise TypeError(f"key must be an int seed or a jax.random key, got {type(key).__name__}.")
    if isinstance(typed, jax.core.Tracer):
        return lambda: jnp.copy(typed)
    data, impl = np.asarray(jax.random.key_data(typed)), jax.random.key_impl(typed)
    return lambda: jax.random.wrap_key_data(jnp.asarray(data), impl=impl)


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray)


@_validate.checked_arguments
def add_noise(
    eta: ArrayLike = 0.01,
    gamma: ArrayLike = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Adds annealed Gaussian noise to the updates.

    .. math::
        u_t = g_t + \sigma_t\, \xi_t, \qquad \sigma_t = \sqrt{\eta / t^{\gamma}},
        \qquad \xi_t \sim \mathcal N(0, I)

    with :math:`t` the 1-based step. The random key lives in the state, so steps
    are reproducible and the transformation stays pure. Each step splits the key
    as ``optax.add_noise`` does (one new key, one sample key split over the leaves
    in ``jax.tree.leaves`` order), so float32/float64 noise is identical to
    optax's. A complex leaf gets complex noise, as in optax (``jax.random.normal``
    in its dtype: real and imaginary parts of variance 1/2 each). For
    bfloat16/float16 updates the noise is drawn in float32 and the sum rounded
    once (optax draws it in the low precision).

    Args:
        eta: :math:`\eta \ge 0`, the initial variance.
        gamma: :math:`\gamma \ge 0`, the annealing exponent.
        key: an int seed (a Python, NumPy or JAX integer scalar) or a ``jax.random``
            key (typed, or raw ``uint32`` data); ``None`` is seed 0, as in optax
            (which also warns).
        seed: optax's deprecated name for an int ``key`` (a ``DeprecationWarning``;
            giving both is a ``ValueError``).
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`AddNoiseState`.

    References:
        Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep
        Networks <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    _validate.non_negative(eta, "eta")
    _validate.non_negative(gamma, "gamma")
    _rules.check_args("add_noise", eta=eta, gamma=gamma)
    new_key = _key_maker(_key_or_seed("add_noise", key, seed))

    def init_fn(params):
        del params
        count = initial_count(step)
        return AddNoiseState(count, new_key())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = current_count(step, state)
        e = jnp.asarray(eta)
        t = _tree.step_as(
            count, e.dtype if jnp.issubdtype(e.dtype, jnp.floating) else jnp.result_type(float)
        )
        std = jnp.sqrt(e / t ** jnp.asarray(gamma).astype(t.dtype))
        new_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))
        noisy = []
        for u, k in zip(leaves, keys, strict=True):
            u = jnp.asarray(u)  # a Python number too
            uc = _tree.upcast(u)
            noise = jax.random.normal(k, uc.shape, uc.dtype)
            noisy.append((uc + _tree.scalar_like(std, uc) * noise).astype(u.dtype))
        new_count = next_count(step, state)
        return jax.tree.unflatten(treedef, noisy), AddNoiseState(new_count, new_key)

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: ScalarOrSchedule = 0.01,
    gamma: ScalarOrSchedule = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""SGD on gradients with annealed Gaussian noise added.

    .. math::
        u_t = -\alpha\, \big(g_t + \sqrt{\eta / t^{\gamma}}\; \xi_t\big),
        \qquad \xi_t \sim \mathcal N(0, I)

    Same arguments and defaults as ``optax.noisy_sgd`` and the same noise for
    float32/float64 (see :func:`add_noise`); ``key=None`` is seed 0 as in optax,
    without optax's warning.
    ``learning_rate``, ``eta`` and ``gamma`` live in the state, and so does the
    random key.

    Args:
        learning_rate: :math:`\alpha`, a scalar or a schedule.
        eta: :math:`\eta \ge 0`, the initial noise variance.
        gamma: :math:`\gamma \ge 0`, its annealing exponent.
        key: an int seed (a Python, NumPy or JAX integer scalar) or a ``jax.random``
            key (typed, or raw ``uint32`` data); ``None`` is seed 0.
        seed: optax's deprecated name for an int ``key`` (a ``DeprecationWarning``).

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.noisy_sgd(learning_rate=1.0, eta=0.04, key=0)
        >>> g = jnp.zeros(10_000)
        >>> updates, _ = tx.update(g, tx.init(g))
        >>> round(float(updates.std()), 2)  # the noise's scale sqrt(eta / t**gamma) at t = 1
        0.2

    References:
        Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep
        Networks <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    _validate.lr(learning_rate)
    _validate.non_negative(eta, "eta")
    _validate.non_negative(gamma, "gamma")
    _rules.check_args("noisy_sgd", learning_rate=learning_rate, eta=eta, gamma=gamma)
    key = _key_or_seed("noisy_sgd", key, seed)
    _key_maker(key)  # checks it now

    return torch_style(
        lambda step, h: add_noise(h["eta"], h["gamma"], key, step=step),
        learning_rate=learning_rate,
        eta=eta,
        gamma=gamma,
    )


def _key_or_seed(function: str, key: Any, seed: Any) -> Any:
    """optax's key arguments: ``seed`` (deprecated) stands for ``key``; ``None`` is seed 0."""
    if seed is None:
        return 0 if key is None else key
    _rules.check_args(function, seed=seed)
    if key is not None:
        raise ValueError(f"{function}: only one of seed or key can be specified.")
    warnings.warn(
        f"{function}: 'seed' is deprecated (as in optax); use 'key'.",
        DeprecationWarning,
        stacklevel=3,
    )
    return seed
