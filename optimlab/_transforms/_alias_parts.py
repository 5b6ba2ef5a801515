"""Pieces the aliases share beside :func:`~optimlab._transforms._alias.torch_style` (private)."""

from __future__ import annotations

from typing import Any

from .._core import _validate
from .._core._base import GradientTransformation
from ._scale import add_decayed_weights, scale

__all__ = ["optional", "torch_prefix"]


def optional(**terms: Any) -> dict[str, Any]:
    """The optional hyperparameters that are present, in the order given.

    An optional term given as ``None`` (no weight decay, no momentum) is left out
    of the state (:func:`~optimlab._core._validate.present`); any number, zero
    included, is kept. For ``with_hyperparams(build, ..., **optional(...))``.
    """
    return {k: v for k, v in terms.items() if _validate.present(v)}


def torch_prefix(h: Any, *, maximize: bool, decay: bool) -> list[GradientTransformation]:
    """torch's ``[scale(-1)] [L2 decay]`` before a primitive (decay: ``h["weight_decay"]``)."""
    txs = [scale(-1.0)] if maximize else []
    if decay:
        txs.append(add_decayed_weights(h["weight_decay"]))
    return txs
