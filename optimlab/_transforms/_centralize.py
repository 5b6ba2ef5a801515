"""Centralizing gradients (private)."""

from __future__ import annotations

from .._core import _tree
from .._core._base import GradientTransformation
from .._core._validate import checked_arguments

__all__ = ["centralize"]


@checked_arguments
def centralize() -> GradientTransformation:
    r"""Gradient centralisation: removes the mean over all axes but the first.

    .. math:: u \leftarrow u - \operatorname{mean}_{\text{axes } 1..}(u)

    Leaves of rank 0 or 1 are unchanged. Same as ``optax.centralize``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.

    Examples:
        >>> tx = optimlab.centralize()
        >>> tx.update(jnp.array([[1.0, 3.0]]), tx.init(jnp.zeros((1, 2))))[0]
        Array([[-1.,  1.]], dtype=float32)

    References:
        Yong et al., `Gradient Centralization: A New Optimization Technique for Deep
        Neural Networks <https://arxiv.org/abs/2004.01461>`_, 2020.
    """
    from .._core._base import EmptyState

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args

        def one(u):
            if u.ndim <= 1:
                return u
            x = _tree.upcast(u)
            return (x - x.mean(tuple(range(1, x.ndim)), keepdims=True)).astype(u.dtype)

        return _tree.tree_map(one, updates), state

    return GradientTransformation(init_fn, update_fn)
