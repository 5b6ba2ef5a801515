"""The optional step counter of a transformation written out by hand (private).

Given ``step`` (the count an enclosing optimizer supplies), a transformation keeps
no counter of its own and its state's ``count`` is ``None``; otherwise it keeps an
int32 count, read at each update and advanced with a saturating increment. The
per-leaf lifter (``_lift``) writes the same three expressions inline, on its hot path.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._base import safe_increment

__all__ = ["current_count", "initial_count", "next_count"]


def initial_count(step: jax.Array | None) -> jax.Array | None:
    """The state's ``count`` at ``init``: zero, or ``None`` when ``step`` is supplied."""
    return None if step is not None else jnp.zeros([], jnp.int32)


def current_count(step: jax.Array | None, state: Any) -> jax.Array:
    """The count this update uses: ``step`` when supplied, else the state's ``count``."""
    return step if step is not None else state.count


def next_count(step: jax.Array | None, state: Any) -> jax.Array | None:
    """The state's ``count`` after this update (``None`` when ``step`` is supplied)."""
    return None if step is not None else safe_increment(state.count)
