"""Whole-tree norms the global (not elementwise) primitives share (private).

Each is summed over the leaves in a given scalar dtype (``_tree.tree_sum``), every
leaf upcast to at least float32 first. The squares of complex leaves are of
:math:`|x|^2`, real, as optax's ``tree.norm`` squares real and imaginary parts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._core import _tree
from .._core._types import DType

__all__ = ["l1_norm", "sq_dist", "sq_norm"]


def sq_norm(tree: Any, dtype: DType) -> jax.Array:
    r""":math:`\lVert x\rVert_2^2` over the whole tree."""
    return _tree.tree_sum(lambda x: _tree.abs_sq(_tree.upcast(x)), dtype, tree)


def sq_dist(a: Any, b: Any, dtype: DType) -> jax.Array:
    r""":math:`\lVert a - b\rVert_2^2` over two trees of the same structure."""
    return _tree.tree_sum(lambda x, y: _tree.abs_sq(_tree.upcast(x) - _tree.upcast(y)), dtype, a, b)


def l1_norm(tree: Any, dtype: DType) -> jax.Array:
    r""":math:`\lVert x\rVert_1` over the whole tree."""
    return _tree.tree_sum(lambda x: jnp.abs(_tree.upcast(x)), dtype, tree)
