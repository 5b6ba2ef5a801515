"""The alias body shared by the Adam-style families: adam, adamax, radam, nadam (private).

Each of these aliases checks its numbers in torch's order with torch's wording,
then every number against its rule, and builds ``[scale(-1)] [L2 decay]
scale_by_<family>(b1, b2, eps, ...) [decoupled decay] learning rate`` with every
number in the state (:func:`~optimlab._transforms._alias.torch_style`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._core import _rules, _validate
from .._core._base import GradientTransformation
from ._alias import torch_style, validate_adam_like
from ._moments import check_betas_eps

__all__ = ["adam_like", "adam_like_alias", "check_adam_like", "check_optax_adam"]


def check_adam_like(
    name: str,
    learning_rate: Any,
    b1: Any,
    b2: Any,
    eps: Any,
    weight_decay: Any,
    *,
    mask: Any = None,
    decoupled: bool = True,
    hint: str = "",
    then: Callable[[], None] | None = None,
    **extra: Any,
) -> None:
    """torch's checks and messages first, then each number's rule, named after ``name``.

    ``then``: the family's further checks in torch's order, run right after
    torch's Adam ones. A ``mask`` without ``decoupled`` decay is refused next
    (``hint`` ends the message). ``extra``: the family's further numbers, checked
    by their rules after ``eps`` and before ``weight_decay``.
    """
    validate_adam_like(learning_rate, b1, b2, eps, weight_decay)
    if then is not None:
        then()
    if mask is not None and not decoupled:
        raise ValueError(
            f"{name}: mask applies to decoupled weight decay only; pass "
            f"decoupled_weight_decay=True{hint}."
        )
    adam = dict(learning_rate=learning_rate, b1=b1, b2=b2, eps=eps)
    _rules.check_args(name, **adam, **extra, weight_decay=weight_decay)


def adam_like(
    primitive: Callable[..., GradientTransformation],
    learning_rate: Any,
    b1: Any,
    b2: Any,
    eps: Any,
    weight_decay: Any,
    *,
    maximize: bool,
    decoupled: bool = False,
    mask: Any = None,
    extra: Mapping[str, Any] | None = None,
    **options: Any,
) -> GradientTransformation:
    r"""The alias ``primitive(b1, b2, eps, *extra, step=step, **options)`` with torch's decay.

    Args:
        primitive: the family's ``scale_by_<family>``.
        learning_rate: the step size.
        b1: the first moment's decay.
        b2: the second moment's decay.
        eps: the denominator's epsilon.
        weight_decay: the decay :math:`\lambda`, or ``None`` for none.
        maximize: flip the gradient's sign first.
        decoupled: decay the params after the direction (AdamW's form).
        mask: the leaves to decay (decoupled only).
        extra: the primitive's further numbers, in its positional order after
            ``eps``; a ``None`` is passed as ``None`` and not kept in the state.
        **options: the primitive's keyword arguments (dtypes, flags), as given.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a ``HyperparamsState``.
    """
    extra = dict(extra or {})
    held = {k: v for k, v in extra.items() if _validate.present(v)}

    def build(step: Any, h: Any) -> GradientTransformation:
        more = [h[k] if k in held else None for k in extra]
        return primitive(h["b1"], h["b2"], h["eps"], *more, step=step, **options)

    return torch_style(
        build,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled,
        mask=mask,
        b1=b1,
        b2=b2,
        eps=eps,
        **held,
    )


def adam_like_alias(
    name: str,
    primitive: Callable[..., GradientTransformation],
    numbers: tuple[Any, Any, Any, Any, Any],
    *,
    extra: Mapping[str, Any] | None = None,
    **options: Any,
) -> GradientTransformation:
    """:func:`check_adam_like`, then :func:`adam_like`.

    ``numbers`` is ``(learning_rate, b1, b2, eps, weight_decay)``; ``extra`` and
    ``options`` are :func:`adam_like`'s.
    """
    check_adam_like(name, *numbers, **(extra or {}))
    return adam_like(primitive, *numbers, extra=extra, **options)


def check_optax_adam(
    name: str, lead: Mapping[str, Any], moments: Mapping[str, Any], **weight_decay: Any
) -> None:
    """optax-style Adam numbers: ``b1``, ``b2``, ``eps`` (and ``eps_root``), then the decay.

    ``lead``: the alias's own numbers (learning rate first), already validated by
    the caller, checked first by their rules. ``moments`` holds ``b1``, ``b2``,
    ``eps`` and optionally ``eps_root``, validated in that order with torch's
    wording; ``weight_decay`` (at most that one keyword) comes last.
    """
    check_betas_eps(moments["b1"], moments["b2"], moments["eps"])
    if "eps_root" in moments:
        _validate.non_negative(moments["eps_root"], "eps_root")
    if "weight_decay" in weight_decay:
        _validate.weight_decay(weight_decay["weight_decay"])
    _rules.check_args(name, **lead, **moments, **weight_decay)
