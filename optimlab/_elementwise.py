"""How a transformation treats the leaves of a tree, declared by the code that builds it (private).

A transformation that acts on each element independently, or that couples
elements only through reductions over the whole tree (a global norm), gives the
same result however the leaves are regrouped into flat buffers, which is what
:func:`optimlab.bucketed` does with small leaves. Each factory declares this of
the transformation it returns; combinators (``chain``, ``with_hyperparams``)
declare themselves from their parts. Nothing is guessed from closures or names:
a transformation that declared nothing is not bucket-safe.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, cast

__all__ = ["declare", "declare_parts", "refuse", "bucket_unsafe_part"]

#: update function -> "elementwise" / "global", a refusal message, or a thunk of parts.
_DECLARED: weakref.WeakKeyDictionary[Callable[..., Any], Any] = weakref.WeakKeyDictionary()

ELEMENTWISE = "elementwise"
GLOBAL = "global"


class _Refused(str):
    """A refusal: the reason, with the transformation's name."""


def declare(tx: Any, kind: str = ELEMENTWISE) -> Any:
    """Declares ``tx`` elementwise, or (``kind="global"``) coupled only by global reductions."""
    if kind not in (ELEMENTWISE, GLOBAL):
        raise ValueError(f"declare: kind must be {ELEMENTWISE!r} or {GLOBAL!r}, got {kind!r}.")
    _DECLARED[tx.update] = kind
    return tx


def refuse(tx: Any, reason: str) -> Any:
    """Declares ``tx`` not bucket-safe, with the reason a user is told."""
    _DECLARED[tx.update] = _Refused(reason)
    return tx


def declare_parts(tx: Any, parts: Callable[[], Sequence[Any]]) -> Any:
    """Declares ``tx`` as safe exactly when every transformation ``parts()`` returns is.

    ``parts`` is called only when the question is asked (by ``bucketed``), so
    building an optimizer costs nothing more.
    """
    _DECLARED[tx.update] = parts
    return tx


def _name(tx: Any) -> str:
    # For the message only: which transformation declared nothing.
    update = getattr(tx, "update", tx)
    qual = getattr(update, "__qualname__", type(update).__name__)
    module = getattr(update, "__module__", "") or ""
    name = qual.split(".<locals>")[0]
    return name if module.startswith("optimlab.") else f"{module}.{qual}"


def bucket_unsafe_part(tx: Any) -> str | None:
    """``None`` if ``tx`` is bucket-safe, else a sentence naming the part that is not."""
    update = getattr(tx, "update", None)
    declared: Any = _DECLARED.get(update) if callable(update) else None
    if declared in (ELEMENTWISE, GLOBAL):
        return None
    if isinstance(declared, _Refused):
        return str(declared)
    if callable(declared):
        parts = cast("Callable[[], Sequence[Any]]", declared)
        for part in parts():
            why = bucket_unsafe_part(part)
            if why is not None:
                return why
        return None
    return f"{_name(tx)} is not bucket-safe"
