"""Transformations without state, from one function of the updates (private).

Clipping, normalisation, trust ratios and decay terms keep no state: their
``init`` returns an :class:`~optimlab.EmptyState` and their ``update`` maps the
updates (and, for some, the params) to new updates. :func:`stateless` writes
that pair once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _tree
from ._base import EmptyState, GradientTransformation

__all__ = ["per_leaf", "stateless"]


def stateless(
    fn: Callable[..., Any], *, needs_params: str | None = None, origin: Any = None
) -> GradientTransformation:
    """The transformation whose ``update`` returns ``fn(updates, params, **extra_args)``.

    Args:
        fn: ``fn(updates, params, **extra_args) -> updates``; ``params`` may be
            ``None`` unless ``needs_params`` is given.
        needs_params: the public name, when ``update`` requires the params: a
            ``None`` is refused with a message naming it.
        origin: the function whose name and module the ``update`` takes (default
            ``fn``), so messages that name a transformation by its ``update``
            (``bucketed``'s) name the public factory that defined it.

    Returns:
        A :class:`~optimlab.GradientTransformation` with an :class:`~optimlab.EmptyState`.
    """

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        if needs_params is not None and params is None:
            raise ValueError(
                f"{needs_params}: params is None; pass the current params to update()."
            )
        return fn(updates, params, **extra_args), state

    named = fn if origin is None else origin
    update_fn.__qualname__ = named.__qualname__
    update_fn.__module__ = named.__module__
    return GradientTransformation(init_fn, update_fn)


def per_leaf(one: Callable[..., Any], *, needs_params: str | None = None) -> GradientTransformation:
    """:func:`stateless` mapping ``one(u)`` over the updates (``one(u, p)``, ``needs_params``)."""

    def fn(updates, params, **extra_args):
        del extra_args
        if needs_params is None:
            return _tree.tree_map(one, updates)
        _tree.check_fits(needs_params, updates, params)
        return _tree.tree_map(one, updates, params)

    return stateless(fn, needs_params=needs_params, origin=one)
