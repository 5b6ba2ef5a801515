"""Plotting helpers for the notebooks (matplotlib; not a runtime dependency of optimlab)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def plot_schedule(
    fn: Callable[[jax.Array], Any],
    steps: int | Sequence[int] | np.ndarray,
    ax: Any = None,
    label: str | None = None,
) -> Any:
    """Plots a schedule's values against the step.

    Args:
        fn: a schedule, ``step -> value`` (for example from ``optimlab.schedules``).
        steps: the number of steps to plot from 0, or the steps themselves.
        ax: the matplotlib axes to draw on (default: a new figure's).
        label: the line's legend label.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    xs = np.arange(steps) if np.ndim(steps) == 0 else np.asarray(steps)
    values = np.asarray(jax.jit(jax.vmap(fn))(jnp.asarray(xs)))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(xs, values, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    if label is not None:
        ax.legend()
    return ax
