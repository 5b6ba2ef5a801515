"""optax's Muon: ``scale_by_muon`` and ``muon`` with optax's arguments and numerics.

torch's Muon (bfloat16 Newton–Schulz, no bias correction, torch's shape ratio) is
:func:`~optimlab.torch_muon` in ``_muon.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain, safe_increment
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, DType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._optimizers._adam import scale_by_adam
from .._transforms._alias import alias_hyperparams
from .._transforms._scale import add_decayed_weights, scale_by_learning_rate
from .._wrappers._partition import partition

__all__ = ["MuonState", "scale_by_muon", "muon"]

#: optax's default quintic Newton–Schulz coefficients (a, b, c).
NS_COEFFS = (3.4445, -4.7750, 2.0315)
_PRECONDITIONINGS = ("frobenius", "spectral")


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon` (optax's fields).

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        mu: the momentum of every leaf.
        ns_coeffs: the Newton–Schulz coefficients, shape ``(3,)`` or ``(n, 3)``.
    """

    count: jax.Array | None
    mu: Updates
    ns_coeffs: jax.Array


def _orthogonalize(x, coeffs, ns_steps, preconditioning, eps):
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = jnp.linalg.norm(x, ord="fro" if preconditioning == "frobenius" else 2)
    x = x / (norm + eps).astype(x.dtype)  # a real norm; complex x as optax's
    coeffs = coeffs.astype(x.dtype)
    rows = [coeffs] * ns_steps if coeffs.ndim == 1 else list(coeffs)
    for c in rows:
        a = x @ x.T.conj()
        b = c[1] * a + c[2] * a @ a
        x = c[0] * x + b @ x
    return x.T if tall else x


@checked_arguments
def scale_by_muon(
    ns_coeffs: Any = NS_COEFFS,
    ns_steps: int = 5,
    beta: ArrayLike = 0.95,
    eps: ArrayLike = 1e-8,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Orthogonalises the bias-corrected momentum of 2-D leaves (optax's ``scale_by_muon``).

    See :func:`muon` for the update rule. Leaves that are not 2-D get the
    bias-corrected momentum itself (optax's :func:`muon` sends them to Adam).

    Args:
        ns_coeffs: Newton–Schulz coefficients, ``(a, b, c)`` or one row per step.
        ns_steps: the number of Newton–Schulz iterations.
        beta: :math:`\beta`, the momentum decay.
        eps: added to the norm the iteration starts by dividing by.
        mu_dtype: storage dtype of the momentum.
        nesterov: Nesterov's look-ahead on the momentum.
        adaptive: scale each orthogonalised update :math:`O` by
            :math:`\langle \hat m, O \rangle` (the dual norm).
        preconditioning: ``"frobenius"`` or ``"spectral"`` normalisation first.
        weight_dimension_numbers: only ``None`` (2-D leaves as matrices) is supported.
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`MuonState`.
    """
    if weight_dimension_numbers is not None:
        raise ValueError(
            "scale_by_muon: weight_dimension_numbers is not supported; only 2-D leaves are "
            "orthogonalised (reshape other leaves to matrices, or leave it None)."
        )
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(
            f"scale_by_muon: preconditioning must be one of {_PRECONDITIONINGS}, got "
            f"{preconditioning!r} ('aol' and 'schatten' are not implemented)."
        )
    _validate.non_negative_int(ns_steps, "ns_steps")
    _rules.check_args("scale_by_muon", beta=beta, eps=eps)
    coeffs = jnp.asarray(ns_coeffs)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
        raise ValueError(
            f"scale_by_muon: ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}."
        )
    if coeffs.ndim == 2:
        if coeffs.shape[0] < ns_steps:
            raise ValueError(f"scale_by_muon: not enough ns_coeffs rows for {ns_steps} steps.")
        coeffs = coeffs[-ns_steps:]

    def init_fn(params):
        count = initial_count(step)
        mu = _tree.tree_map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return MuonState(count, mu, coeffs)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_match("scale_by_muon", updates, state.mu)
        count = current_count(step, state)

        def one(g, m):
            gc = _tree.upcast(g)
            b = _tree.hp(beta, gc).astype(gc.dtype)
            m_new = _tree.update_moment(gc, m.astype(gc.dtype), beta, 1)
            bc = _tree.bias_correction(beta, count).astype(b.dtype)
            if nesterov:
                bc_next = _tree.bias_correction(beta, safe_increment(count)).astype(b.dtype)
                m_hat = b * m_new / bc_next + (1 - b) * gc / bc
            else:
                m_hat = m_new / bc
            u = m_hat
            if jnp.ndim(g) == 2:
                u = _orthogonalize(
                    m_hat, state.ns_coeffs, ns_steps, preconditioning, _tree.hp(eps, gc)
                )
                if adaptive:
                    u = jnp.sum(m_hat.conj() * u) * u
            return u.astype(g.dtype), m_new.astype(m.dtype)

        u, mu = _tree.tree_map_multi(one, 2, updates, state.mu)
        new_count = next_count(step, state)
        return u, MuonState(new_count, mu, state.ns_coeffs)

    return GradientTransformation(init_fn, update_fn)


def _scale_by_shape(consistent_rms: ArrayLike | None) -> GradientTransformation:
    def init_fn(params):
        del params
        return ()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            fan_in, fan_out = u.shape  # optax's default dimension numbers
            if consistent_rms is None:
                s = max(1.0, fan_out / fan_in) ** 0.5
                return u * jnp.asarray(s, u.dtype)
            r = jnp.asarray(consistent_rms).astype(u.dtype)
            return u * jnp.asarray(max(fan_in, fan_out) ** 0.5, u.dtype) * r

        return _tree.tree_map(one, updates), state

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def muon(
    learning_rate: ScalarOrSchedule = 1e-3,
    ns_coeffs: Any = NS_COEFFS,
    ns_steps: int = 5,
    beta: ScalarOrSchedule = 0.95,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: DType | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: ScalarOrSchedule = 0.9,
    adam_b2: ScalarOrSchedule = 0.999,
    adam_eps_root: ScalarOrSchedule = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: ArrayLike | None = None,
) -> GradientTransformation:
    r"""Muon for 2-D leaves with (N)AdamW elsewhere: optax's ``contrib.muon``.

    For a 2-D leaf of shape :math:`(A, B)`, with :math:`g_t = \nabla f(p_{t-1})`:

    .. math::
        m_t &= \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad
        \hat m_t = \frac{\beta\, m_t}{1-\beta^{t+1}} + \frac{(1-\beta)\, g_t}{1-\beta^t}
            \ \text{(Nesterov; else } m_t/(1-\beta^t)) \\
        O_t &= \mathrm{NS}\big(\hat m_t / (\lVert \hat m_t \rVert_F + \epsilon)\big)
            \ \big(\times \langle \hat m_t, O_t\rangle \text{ if adaptive}\big) \\
        u_t &= -\eta\,\big(\sqrt{\max(1, B/A)}\; O_t + \lambda\, p_{t-1}\big)

    with :math:`\mathrm{NS}` ``ns_steps`` quintic Newton–Schulz iterations
    :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^\top`, in the params'
    precision; ``consistent_rms`` :math:`\rho` replaces the shape factor by
    :math:`\rho\sqrt{\max(A, B)}`. Every other leaf takes optax's AdamW (NAdamW
    with ``nesterov``) step with ``adam_learning_rate`` (default: the learning
    rate), ``adam_b1``, ``adam_b2``, ``eps``, ``adam_eps_root`` and decay
    ``adam_weight_decay``. ``torch.optim.Muon`` (bfloat16 iteration, no bias
    correction, factor :math:`\sqrt{\max(1, A/B)}`) is :func:`~optimlab.torch_muon`.

    Not supported (a ``ValueError`` says so): string presets of ``ns_coeffs``,
    ``muon_weight_dimension_numbers`` other than ``None``, and the ``"aol"`` and
    ``"schatten"`` preconditionings.

    Args:
        learning_rate: :math:`\eta` of the 2-D leaves.
        ns_coeffs: Newton–Schulz coefficients ``(a, b, c)``, or one row per step.
        ns_steps: the number of Newton–Schulz iterations.
        beta: :math:`\beta`, the momentum decay.
        eps: :math:`\epsilon` of the normalisation, and Adam's epsilon.
        weight_decay: decoupled decay :math:`\lambda` of the 2-D leaves.
        weight_decay_mask: pytree of bools (or ``params -> mask``) for that decay.
        mu_dtype: storage dtype of the momenta.
        nesterov: Nesterov's look-ahead (Muon's and Adam's).
        adaptive: scale the orthogonalised update by the dual norm.
        preconditioning: ``"frobenius"`` or ``"spectral"``.
        adam_b1: :math:`\beta_1` of the other leaves.
        adam_b2: :math:`\beta_2` of the other leaves.
        adam_eps_root: Adam's epsilon inside the square root.
        adam_weight_decay: decoupled decay of the other leaves.
        adam_learning_rate: the other leaves' learning rate (default ``learning_rate``).
        muon_weight_dimension_numbers: only ``None`` is supported.
        consistent_rms: :math:`\rho`, or ``None`` for the width factor.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.muon(learning_rate=0.1)
        >>> params = {"w": jnp.eye(2), "b": jnp.ones(2)}
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(float(x), 3) for x in updates["w"].ravel()]
        [-0.111, -0.0, -0.0, -0.111]

    References:
        Jordan et al., `Muon: An optimizer for hidden layers in neural networks
        <https://kellerjordan.github.io/posts/muon/>`_, 2024. Bernstein & Newhouse,
        `Old Optimizer, New Norm: An Anthology <https://arxiv.org/abs/2409.20325>`_, 2024.
    """
    if isinstance(ns_coeffs, str):
        raise ValueError(
            f"muon: ns_coeffs presets ({ns_coeffs!r}) are not supported; pass the "
            "coefficients as (a, b, c) or one row per step."
        )
    if muon_weight_dimension_numbers is not None:
        raise ValueError(
            "muon: muon_weight_dimension_numbers is not supported; 2-D leaves take Muon "
            "and the others Adam (leave it None)."
        )
    scale_by_muon(ns_coeffs, ns_steps, preconditioning=preconditioning)  # validates
    _rules.check_args(
        "muon",
        learning_rate=learning_rate,
        adam_learning_rate=adam_learning_rate,
        beta=beta,
        eps=eps,
        weight_decay=weight_decay,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps_root=adam_eps_root,
        adam_weight_decay=adam_weight_decay,
    )
    hps: dict[str, ScalarOrSchedule] = {
        "learning_rate": learning_rate,
        "adam_learning_rate": learning_rate if adam_learning_rate is None else adam_learning_rate,
        "beta": beta,
        "eps": eps,
        "weight_decay": weight_decay,
        "adam_b1": adam_b1,
        "adam_b2": adam_b2,
        "adam_eps_root": adam_eps_root,
        "adam_weight_decay": adam_weight_decay,
    }

    def build(step, h):
        muon_tx = chain(
            scale_by_muon(
                ns_coeffs,
                ns_steps,
                h["beta"],
                h["eps"],
                mu_dtype,
                nesterov=nesterov,
                adaptive=adaptive,
                preconditioning=preconditioning,
                step=step,
            ),
            _scale_by_shape(consistent_rms),
            add_decayed_weights(h["weight_decay"], weight_decay_mask),
            scale_by_learning_rate(h["learning_rate"]),
        )
        adam_tx = chain(
            scale_by_adam(
                h["adam_b1"],
                h["adam_b2"],
                h["eps"],
                h["adam_eps_root"],
                mu_dtype,
                nesterov=nesterov,
                step=step,
            ),
            add_decayed_weights(h["adam_weight_decay"]),
            scale_by_learning_rate(h["adam_learning_rate"]),
        )
        return partition(
            {"muon": muon_tx, "adam": adam_tx},
            lambda path, leaf: "muon" if jnp.ndim(leaf) == 2 else "adam",
        )

    return alias_hyperparams(build, **hps)
