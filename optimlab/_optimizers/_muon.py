"""torch's Muon: Newton–Schulz orthogonalised momentum for matrices, Adam for the other leaves.

optax's ``muon`` and ``scale_by_muon`` (the shared names) are in ``_muon_optax.py``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, RealDType, ScalarOrSchedule, Updates
from .._core._validate import checked_arguments
from .._transforms._alias import alias_hyperparams, optional
from .._transforms._scale import add_decayed_weights, scale_by_learning_rate
from ._adam import ScaleByAdamState, scale_by_adam

__all__ = ["ScaleByMuonState", "scale_by_torch_muon", "torch_muon", "newton_schulz"]

#: torch's quintic Newton–Schulz coefficients (a, b, c).
NS_COEFFS = (3.4445, -4.7750, 2.0315)
_ADJUST_LR_FNS = ("original", "match_rms_adamw")


class ScaleByMuonState(NamedTuple):
    """State of :func:`scale_by_torch_muon`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        momentum: the momentum buffer of each 2-D leaf (torch's ``momentum_buffer``;
            ``None`` at other leaves).
        adam: the Adam state of the other leaves (``None`` at 2-D leaves).
    """

    count: jax.Array | None
    momentum: Updates
    adam: ScaleByAdamState


@checked_arguments
def newton_schulz(
    x: jax.Array,
    ns_coeffs: tuple[ArrayLike, ArrayLike, ArrayLike] = NS_COEFFS,
    ns_steps: int = 5,
    eps: ArrayLike = 1e-7,
    *,
    ns_dtype: RealDType = jnp.bfloat16,
) -> jax.Array:
    r"""Approximately orthogonalises a matrix with torch's quintic Newton–Schulz iteration.

    With :math:`X_0 = G / \max(\lVert G \rVert_F, \epsilon)` (transposed when it has
    more rows than columns), each of the ``ns_steps`` iterations computes

    .. math::
        A = X X^\top, \quad B = b A + c A^2, \quad X \leftarrow a X + B X

    which drives the singular values of :math:`X` towards (roughly) one. Values
    are rounded to ``ns_dtype`` after each operation, with products accumulated in
    at least float32, as torch does in bfloat16 on CPU; on small matrices the
    result equals torch's bit for bit.

    Args:
        x: a 2-D array.
        ns_coeffs: the coefficients :math:`(a, b, c)`.
        ns_steps: the number of iterations (fewer than 100).
        eps: :math:`\epsilon`, the smallest norm divided by.
        ns_dtype: the dtype of the iteration (torch: bfloat16), a real floating dtype.

    Returns:
        The orthogonalised matrix, in ``ns_dtype``.

    Raises:
        TypeError: ``ns_steps`` is not an int, or ``ns_dtype`` is not a floating dtype.
        ValueError: ``x`` is not 2-D, ``ns_steps`` is negative or 100 or more, or
            ``ns_coeffs`` does not hold 3 values.

    Examples:
        >>> o = optimlab.newton_schulz(jnp.array([[3.0, 0.0], [0.0, 0.1]]))
        >>> o.astype(jnp.float32).round(1)
        Array([[0.7, 0. ],
               [0. , 1.1]], dtype=float32)

    References:
        Jordan et al., `Muon: An optimizer for hidden layers in neural networks
        <https://kellerjordan.github.io/posts/muon/>`_, 2024.
    """
    if x.ndim != 2:
        raise ValueError(f"newton_schulz: expected a 2-D matrix, got shape {x.shape}.")
    _validate.non_negative_int(ns_steps, "ns_steps")
    _check_ns_limits(ns_steps, ns_coeffs)
    nd = jnp.dtype(ns_dtype)
    acc = jnp.dtype(jnp.float32) if jnp.finfo(nd).bits <= 32 else nd
    a, b, c = (jnp.asarray(k).astype(acc) for k in ns_coeffs)
    tall = x.shape[0] > x.shape[1]
    out = x.astype(nd)
    if tall:
        out = out.T
    norm = jnp.sqrt(jnp.sum(jnp.square(out.astype(acc)))).astype(nd)
    norm = jnp.maximum(norm, jnp.asarray(eps).astype(nd))
    out = (out.astype(acc) / norm.astype(acc)).astype(nd)
    for _ in range(ns_steps):
        gram = jnp.matmul(out, out.T, preferred_element_type=acc).astype(nd)
        gram2 = jnp.matmul(gram, gram, preferred_element_type=acc)
        poly = (b * gram.astype(acc) + c * gram2).astype(nd)
        out = (a * out.astype(acc) + jnp.matmul(poly, out, preferred_element_type=acc)).astype(nd)
    return out.T if tall else out


def _lr_ratio(shape: tuple[int, ...], adjust_lr_fn: str) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def _is_matrix(p: jax.Array) -> bool:
    return jnp.ndim(p) == 2


def _check_ns_limits(ns_steps: int, ns_coeffs: tuple[Any, ...]) -> None:
    # torch.optim.Muon's bounds on the Newton-Schulz iteration, with its messages.
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(ns_coeffs) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")


@checked_arguments
def scale_by_torch_muon(
    momentum: ArrayLike = 0.95,
    *,
    nesterov: bool = True,
    ns_coeffs: tuple[ArrayLike, ArrayLike, ArrayLike] = NS_COEFFS,
    ns_steps: int = 5,
    eps: ArrayLike = 1e-7,
    adjust_lr_fn: str = "original",
    ns_dtype: RealDType = jnp.bfloat16,
    adam_b1: ArrayLike = 0.9,
    adam_b2: ArrayLike = 0.999,
    adam_eps: ArrayLike = 1e-8,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""torch Muon's direction for 2-D leaves, Adam's for the others.

    See :func:`torch_muon` for the update rule. 2-D leaves get the orthogonalised
    momentum :math:`r\, O_t` (with the shape-dependent ratio :math:`r` of
    ``adjust_lr_fn``); every other leaf gets :func:`~optimlab.scale_by_adam`'s
    direction. No learning rate or weight decay is applied here.

    Args:
        momentum: :math:`\mu` of the 2-D leaves.
        nesterov: use Nesterov momentum.
        ns_coeffs: the Newton–Schulz coefficients :math:`(a, b, c)`.
        ns_steps: the number of Newton–Schulz iterations.
        eps: the Newton–Schulz :math:`\epsilon`.
        adjust_lr_fn: ``"original"`` or ``"match_rms_adamw"``.
        ns_dtype: the dtype of the Newton–Schulz iteration (torch: bfloat16).
        adam_b1: :math:`\beta_1` of the Adam leaves.
        adam_b2: :math:`\beta_2` of the Adam leaves.
        adam_eps: :math:`\epsilon` of the Adam leaves.
        step: the step count, when an enclosing optimizer supplies it; otherwise the
            state keeps its own counter.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`ScaleByMuonState`.

    Examples:
        >>> tx = optimlab.scale_by_torch_muon()
        >>> g = {"w": jnp.eye(2), "b": jnp.ones(2)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> u["w"].round(2), u["b"].round(2)
        (Array([[1.12, 0.  ],
               [0.  , 1.12]], dtype=float32), Array([1., 1.], dtype=float32))
    """
    if adjust_lr_fn not in _ADJUST_LR_FNS:
        raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
    _validate.non_negative_int(ns_steps, "ns_steps")
    _validate.non_negative(eps, "eps")
    _rules.check_args(
        "scale_by_torch_muon",
        momentum=momentum,
        ns_steps=ns_steps,
        eps=eps,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps=adam_eps,
    )
    _check_ns_limits(ns_steps, ns_coeffs)

    def adam_tx(count):
        return scale_by_adam(adam_b1, adam_b2, adam_eps, step=count)

    def split(tree):
        mats = _tree.tree_map(lambda x: x if _is_matrix(x) else None, tree)
        rest = _tree.tree_map(lambda x: None if _is_matrix(x) else x, tree)
        return mats, rest

    def init_fn(params):
        _tree.reject_complex("muon", params, " (torch's Muon neither)")
        count = initial_count(step)
        mats, rest = split(params)
        return ScaleByMuonState(
            count, _tree.zeros_like(mats), adam_tx(jnp.zeros([], jnp.int32)).init(rest)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        reference = jax.tree.map(
            lambda m, a: a if m is None else m, state.momentum, state.adam.mu, is_leaf=_tree.is_none
        )
        _tree.check_match("scale_by_torch_muon", updates, reference)
        count = current_count(step, state)
        mats, rest = split(updates)
        rest_u, adam_state = adam_tx(count).update(rest, state.adam)

        def one(g, buf):
            gc = _tree.upcast(g)
            new_buf = _tree.lerp(buf.astype(gc.dtype), gc, 1 - jnp.asarray(momentum))
            direction = _tree.lerp(gc, new_buf, momentum) if nesterov else new_buf
            o = newton_schulz(direction, ns_coeffs, ns_steps, eps, ns_dtype=ns_dtype)
            o = o.astype(gc.dtype)
            u = o * _tree.scalar_like(_lr_ratio(g.shape, adjust_lr_fn), o)
            return u.astype(g.dtype), new_buf.astype(buf.dtype)

        mat_u, buf = _tree.tree_map_multi(one, 2, mats, state.momentum)
        merged = _tree.tree_map(lambda g, m, r: m if _is_matrix(g) else r, updates, mat_u, rest_u)
        new_count = next_count(step, state)
        return merged, ScaleByMuonState(new_count, buf, adam_state)

    return GradientTransformation(init_fn, update_fn)


@checked_arguments
def torch_muon(
    learning_rate: ScalarOrSchedule = 1e-3,
    weight_decay: ScalarOrSchedule = 0.1,
    momentum: ScalarOrSchedule = 0.95,
    nesterov: bool = True,
    ns_coeffs: tuple[ScalarOrSchedule, ScalarOrSchedule, ScalarOrSchedule] = NS_COEFFS,
    eps: ScalarOrSchedule = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    ns_dtype: RealDType = jnp.bfloat16,
    adam_b1: ScalarOrSchedule = 0.9,
    adam_b2: ScalarOrSchedule = 0.999,
    adam_eps: ScalarOrSchedule = 1e-8,
    adam_weight_decay: ScalarOrSchedule | None = None,
) -> GradientTransformation:
    r"""torch's Muon for 2-D leaves (equal to ``torch.optim.Muon``), AdamW elsewhere.

    .. note::
        This is torch's algorithm under optimlab's name; optax's ``muon`` (bias
        corrected momentum, Newton–Schulz in the params' precision, another shape
        factor and defaults) is :func:`~optimlab.muon`.

    For a 2-D leaf of shape :math:`(A, B)`, with :math:`g_t = \nabla f(p_{t-1})`
    and :math:`\mathrm{NS}` the Newton–Schulz iteration of :func:`newton_schulz`:

    .. math::
        b_t &= \mu\, b_{t-1} + (1-\mu)\, g_t, \quad b_0 = 0 \\
        \tilde b_t &= (1-\mu)\, g_t + \mu\, b_t \text{ (Nesterov)}, \quad
            \tilde b_t = b_t \text{ (otherwise)} \\
        u_t &= -\eta\,\big(r\,\mathrm{NS}(\tilde b_t) + \lambda\, p_{t-1}\big), \quad
        r = \sqrt{\max(1, A/B)} \text{ (original)}, \quad
        r = 0.2\sqrt{\max(A, B)} \text{ (match\_rms\_adamw)}

    Every other leaf (biases, scalars, embeddings with more axes) takes an AdamW
    step with the same learning rate, ``adam_b1``, ``adam_b2``, ``adam_eps`` and
    decoupled decay ``adam_weight_decay``, as ``optax.contrib.muon`` does; torch's
    ``Muon`` refuses such params. The iteration runs in bfloat16 like torch's
    (``ns_dtype`` can raise it). The momentum buffer starts at zero and is an
    exponential average (torch's ``lerp``), unlike SGD's. The three coefficients are
    in the state as ``ns_a``, ``ns_b`` and ``ns_c``. Complex params are refused,
    as by torch.

    Args:
        learning_rate: :math:`\eta \ge 0`.
        weight_decay: :math:`\lambda \ge 0` for the 2-D leaves (decoupled).
        momentum: :math:`\mu \ge 0`.
        nesterov: use Nesterov momentum.
        ns_coeffs: the Newton–Schulz coefficients :math:`(a, b, c)`.
        eps: the Newton–Schulz :math:`\epsilon`.
        ns_steps: the number of Newton–Schulz iterations (fewer than 100).
        adjust_lr_fn: ``"original"`` (the default, also for None) or ``"match_rms_adamw"``.
        ns_dtype: the dtype of the Newton–Schulz iteration.
        adam_b1: :math:`\beta_1` for the other leaves.
        adam_b2: :math:`\beta_2` for the other leaves.
        adam_eps: :math:`\epsilon` for the other leaves.
        adam_weight_decay: decoupled decay for the other leaves.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        >>> tx = optimlab.torch_muon(learning_rate=0.1, weight_decay=0.0)
        >>> params = {"w": jnp.eye(2), "b": jnp.ones(2)}
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> [round(float(x), 3) for x in updates["w"].ravel()]
        [-0.113, -0.0, -0.0, -0.113]
        >>> [round(float(x), 3) for x in updates["b"]]
        [-0.1, -0.1]

    References:
        Jordan et al., `Muon: An optimizer for hidden layers in neural networks
        <https://kellerjordan.github.io/posts/muon/>`_, 2024. Liu et al., `Muon is
        Scalable for LLM Training <https://arxiv.org/abs/2502.16982>`_, 2025.
    """
    _validate.check_bounds(
        ("Learning rate", learning_rate, ">=", 0.0),
        ("momentum", momentum, ">=", 0.0),
        ("weight decay", weight_decay, ">=", 0.0),
    )
    _validate.weight_decay(adam_weight_decay)
    _validate.in_range(adam_b1, "adam_b1", 0.0, 1.0, hi_open=True)
    _validate.beta(adam_b2, 1)  # torch wording, as tests pin it
    _validate.non_negative(eps, "eps")
    _rules.check_args(
        "torch_muon",
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        momentum=momentum,
        eps=eps,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps=adam_eps,
        adam_weight_decay=adam_weight_decay,
    )
    mode = "original" if adjust_lr_fn is None else adjust_lr_fn
    if mode not in _ADJUST_LR_FNS:
        raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
    _validate.non_negative_int(ns_steps, "ns_steps")
    _check_ns_limits(ns_steps, ns_coeffs)
    use_decay = _validate.present(weight_decay)
    use_adam_decay = _validate.present(adam_weight_decay)

    def mats(params):
        return _tree.tree_map(_is_matrix, params)

    def others(params):
        return _tree.tree_map(lambda p: not _is_matrix(p), params)

    def build(step, h):
        txs = [
            scale_by_torch_muon(
                h["momentum"],
                nesterov=nesterov,
                ns_coeffs=(h["ns_a"], h["ns_b"], h["ns_c"]),
                ns_steps=ns_steps,
                eps=h["eps"],
                adjust_lr_fn=mode,
                ns_dtype=ns_dtype,
                adam_b1=h["adam_b1"],
                adam_b2=h["adam_b2"],
                adam_eps=h["adam_eps"],
                step=step,
            )
        ]
        if use_decay:
            txs.append(add_decayed_weights(h["weight_decay"], mats))
        if use_adam_decay:
            txs.append(add_decayed_weights(h["adam_weight_decay"], others))
        txs.append(scale_by_learning_rate(h["learning_rate"]))
        return chain(*txs)

    a, b, c = ns_coeffs
    hps: dict[str, Any] = {
        "learning_rate": learning_rate,
        "momentum": momentum,
        "eps": eps,
        "ns_a": a,
        "ns_b": b,
        "ns_c": c,
        "adam_b1": adam_b1,
        "adam_b2": adam_b2,
        "adam_eps": adam_eps,
    }
    return alias_hyperparams(
        build, **hps, **optional(weight_decay=weight_decay, adam_weight_decay=adam_weight_decay)
    )
