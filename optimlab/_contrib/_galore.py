"""GaLore: an inner optimizer run on low-rank projections of matrix gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._core import _rules, _tree, _validate
from .._core._base import GradientTransformation, _update_with_extra_args
from .._core._paths import is_function_spec
from .._core._step_count import current_count, initial_count, next_count
from .._core._types import ArrayLike, OptState, ScalarOrSchedule, Updates
from .._optimizers._adam import scale_by_adam
from .._transforms._alias import torch_style
from .._transforms._moments import check_betas_eps

__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "scale_by_galore", "galore"]


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the rows (reduction) and columns (output) of its matrix.

    Attributes:
        reduction_axis: axis or axes flattened into the rows.
        output_axis: axis or axes flattened into the columns.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """State of :func:`scale_by_galore`.

    Attributes:
        count: steps taken, or ``None`` when an enclosing optimizer supplies the step.
        base_optimizer_state: the inner optimizer's state, over the low-rank shapes.
        projector: per leaf, the orthonormal projector (``None`` for leaves left full).
    """

    count: jax.Array | None
    base_optimizer_state: OptState
    projector: Updates


def _is_dims(x: Any) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _axes(a: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(x % ndim for x in ((a,) if isinstance(a, int) else a))


def _matrix(shape: tuple[int, ...], dims: GaLoreDimensionNumbers):
    """(to_2d, from_2d, (rows, cols)) for a leaf of this shape."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"galore: projected leaves need rank >= 2, got shape {shape}")
    red, outp = _axes(dims.reduction_axis, ndim), _axes(dims.output_axis, ndim)
    if set(red) & set(outp) or len(set(red) | set(outp)) != ndim:
        raise ValueError(
            f"galore: dimension numbers {dims} must split the {ndim} axes of a "
            f"leaf of shape {shape} into disjoint reduction and output axes"
        )
    perm = red + outp
    inv = tuple(sorted(range(ndim), key=lambda i: perm[i]))
    rows = math.prod(shape[a] for a in red)
    cols = math.prod(shape[a] for a in outp)
    moved = tuple(shape[a] for a in perm)
    return (
        lambda x: x.transpose(perm).reshape(rows, cols),
        lambda y: y.reshape(moved).transpose(inv),
        (rows, cols),
    )


@_validate.checked_arguments
def scale_by_galore(  # noqa: C901 (argument checks inline; to be split)
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: ArrayLike = 1.0,
    base_optimizer: Any = None,
    weight_dimension_numbers: Any = None,
    *,
    step: jax.Array | None = None,
) -> GradientTransformation:
    r"""Runs ``base_optimizer`` on low-rank projections of matrix gradients.

    See :func:`galore` for the rule. ``weight_dimension_numbers`` is ``None``
    (project every 2-D leaf), a :class:`GaLoreDimensionNumbers` (every leaf of rank
    at least 2), a tree of them with ``None`` for leaves left full, or a function of
    the params returning such a tree.

    Args:
        rank: the projection rank :math:`r` (capped by the matrix size).
        update_proj_gap: steps between SVD refreshes of the projectors.
        scale: :math:`\alpha`, multiplies the projected-back updates.
        base_optimizer: the inner transformation (default: Adam's scaling).
        weight_dimension_numbers: which leaves to project, and how (see above).
        step: the step count, when an enclosing optimizer supplies it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a :class:`GaLoreState`.
    """
    _validate.positive_int(rank, "rank")
    rank = int(rank)
    _validate.positive_int(update_proj_gap, "update_proj_gap")
    _rules.check_args("scale_by_galore", rank=rank, update_proj_gap=update_proj_gap, scale=scale)
    _validate.finite(scale, "scale")
    base = base_optimizer if base_optimizer is not None else scale_by_adam(step=step)
    base_update = _update_with_extra_args(base)

    def dims_of(tree):
        leaves, treedef = jax.tree.flatten(tree, is_leaf=_tree.is_none)
        wdn = weight_dimension_numbers
        if is_function_spec(wdn, tree, _is_dims):
            wdn = wdn(tree)
        if wdn is None:
            dims = [
                GaLoreDimensionNumbers() if x is not None and jnp.ndim(x) == 2 else None
                for x in leaves
            ]
        elif isinstance(wdn, GaLoreDimensionNumbers):
            dims = [wdn if x is not None and jnp.ndim(x) >= 2 else None for x in leaves]
        else:
            dims = jax.tree.leaves(wdn, is_leaf=_is_dims)
            if len(dims) != len(leaves):
                raise ValueError(
                    "galore: weight_dimension_numbers must have the params' "
                    "structure, with None for leaves left full."
                )
        return leaves, treedef, dims

    def init_fn(params):
        leaves, treedef, dims = dims_of(params)
        projs, proxies = [], []
        for x, d in zip(leaves, dims, strict=True):
            if x is None or d is None:
                projs.append(None)
                proxies.append(None if x is None else jnp.zeros_like(x))
                continue
            _, _, (m, n) = _matrix(jnp.shape(x), d)
            r = min(rank, m, n)
            dt = jnp.asarray(x).dtype
            projs.append(jnp.zeros((m, r) if m >= n else (n, r), dt))
            proxies.append(jnp.zeros((r, n) if m >= n else (m, r), dt))
        count = initial_count(step)
        return GaLoreState(
            count,
            base.init(jax.tree.unflatten(treedef, proxies)),
            jax.tree.unflatten(treedef, projs),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params
        count = current_count(step, state)
        refresh = count % update_proj_gap == 0
        leaves, treedef, dims = dims_of(updates)
        projs = jax.tree.leaves(state.projector, is_leaf=_tree.is_none)
        if len(projs) != len(leaves):
            # Name where: the projectors' tree (None where a leaf is not projected)
            # with a placeholder at every leaf, compared by structure only.
            filled = jax.tree.map(lambda _: 0, state.projector, is_leaf=_tree.is_none)
            _tree.check_match("galore", updates, filled, shapes=False)
            raise ValueError("galore: the updates' tree structure differs from the state's.")
        low, new_projs = [], []
        for g, d, p in zip(leaves, dims, projs, strict=True):
            if g is None or d is None:
                low.append(g)
                new_projs.append(None)
                continue
            to2d, _, (m, n) = _matrix(jnp.shape(g), d)
            r = p.shape[1]
            g2 = _tree.upcast(to2d(g))

            def svd(g2=g2, p=p, r=r, left=m >= n):
                # as optax: a complex gradient's projector is that of its real part
                u, _, vh = jnp.linalg.svd(jnp.real(g2).astype(jnp.float32), full_matrices=False)
                return (u[:, :r] if left else vh[:r, :].T).astype(p.dtype)

            p_new = jax.lax.cond(refresh, svd, lambda p=p: p)
            pc = p_new.astype(g2.dtype)
            low.append((pc.T @ g2 if m >= n else g2 @ pc).astype(g.dtype))
            new_projs.append(p_new)
        low_u, base_state = base_update(
            jax.tree.unflatten(treedef, low), state.base_optimizer_state, None, **extra_args
        )
        out = []
        for g, d, p, lu in zip(
            leaves, dims, new_projs, jax.tree.leaves(low_u, is_leaf=_tree.is_none), strict=True
        ):
            if g is None or d is None:
                out.append(lu)
                continue
            _, from2d, (m, n) = _matrix(jnp.shape(g), d)
            luc, pc = _tree.upcast(lu), _tree.upcast(p)
            full = from2d(pc @ luc if m >= n else luc @ pc.T)
            out.append((full * _tree.scalar_like(scale, full)).astype(g.dtype))
        new_count = next_count(step, state)
        return jax.tree.unflatten(treedef, out), GaLoreState(
            new_count, base_state, jax.tree.unflatten(treedef, new_projs)
        )

    return GradientTransformation(init_fn, update_fn)


@_validate.checked_arguments
def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: ScalarOrSchedule = 1.0,
    base_optimizer: Any = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
    *,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
) -> GradientTransformation:
    r"""GaLore: gradient low-rank projection, with a periodic SVD refresh of the projector.

    For a matrix gradient :math:`G_t \in \mathbb{R}^{m\times n}`, every
    ``update_proj_gap`` steps :math:`P` is refreshed from the SVD
    :math:`G_t = U \Sigma V^\top` (the first :math:`r` columns of :math:`U` if
    :math:`m \ge n`, else of :math:`V`); then, with :math:`\rho` the inner optimizer:

    .. math::
        R_t = P^\top G_t \ \ (\text{or } G_t P), \qquad
        u_t = -\eta\big(\alpha\, P\,\rho(R_t) \ (\text{or } \alpha\,\rho(R_t) P^\top)
            + \lambda x_t\big)

    Leaves that are not projected go through :math:`\rho` unchanged. The inner
    moments are kept across refreshes, as in the paper. With ``base_optimizer=None``
    the inner optimizer is Adam's scaling with ``b1``, ``b2``, ``eps`` (stored in
    the state, sharing the single step counter); a given ``base_optimizer`` keeps
    its own state. ``rank`` and ``update_proj_gap`` set shapes and the refresh
    period and stay Python ints. Matches optax's ``contrib.galore`` (which, unlike
    the paper's code, projects the larger side when :math:`m \ge n`). Complex
    parameters are projected as optax projects them: onto the singular vectors of
    the gradient's real part.

    Args:
        learning_rate: :math:`\eta`.
        rank: :math:`r`.
        update_proj_gap: steps between projector refreshes.
        scale: :math:`\alpha`.
        base_optimizer: the inner transformation :math:`\rho` (default: Adam's scaling).
        weight_decay: decoupled decay :math:`\lambda` (applied at full rank).
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        weight_dimension_numbers: which leaves to project (see :func:`scale_by_galore`).
        b1: the default inner Adam's :math:`\beta_1`.
        b2: the default inner Adam's :math:`\beta_2`.
        eps: the default inner Adam's :math:`\epsilon`.

    Returns:
        A :class:`~optimlab.GradientTransformation`.

    Examples:
        With an inner optimizer that changes nothing, the step is the gradient's best
        rank-1 approximation :math:`P P^\top G`:

        >>> tx = optimlab.galore(1.0, rank=1, base_optimizer=optimlab.identity())
        >>> w = jnp.zeros((3, 2))
        >>> g = jnp.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        >>> updates, _ = tx.update(g, tx.init(w), w)
        >>> -updates
        Array([[3., 0.],
               [0., 0.],
               [0., 0.]], dtype=float32)

    References:
        Zhao, Zhang, Chen, Wang, Anandkumar & Tian, `GaLore: Memory-Efficient LLM
        Training by Gradient Low-Rank Projection <https://arxiv.org/abs/2403.03507>`_, 2024.
    """
    _validate.lr(learning_rate)
    _validate.weight_decay(weight_decay)
    _validate.positive_int(rank, "rank")
    _validate.positive_int(update_proj_gap, "update_proj_gap")
    _validate.finite(scale, "scale")
    use_adam = base_optimizer is None
    adam: dict[str, Any] = dict(b1=b1, b2=b2, eps=eps)  # the default inner Adam's
    if use_adam:
        check_betas_eps(**adam)
    _rules.check_args(
        "galore",
        learning_rate=learning_rate,
        rank=rank,
        update_proj_gap=update_proj_gap,
        weight_decay=weight_decay,
        **adam,
        scale=scale,
    )

    def primitive(step, h):
        base = scale_by_adam(h["b1"], h["b2"], h["eps"], step=step) if use_adam else base_optimizer
        return scale_by_galore(
            rank, update_proj_gap, h["scale"], base, weight_dimension_numbers, step=step
        )

    return torch_style(
        primitive,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled=True,
        mask=mask,
        scale=scale,
        **(adam if use_adam else {}),
    )
