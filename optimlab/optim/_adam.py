"""``Adam`` and ``AdamW``: torch.optim.Adam and AdamW over optimlab.adam and adamw (private)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._core._base import GradientTransformation
from .._optimizers._adam import ScaleByAdamState, adam, adamw
from ._optimizer import Optimizer
from ._spec import ADAM_HYPERPARAMS, STEP, Spec, StateKey, is_array, moments, same_names

__all__ = ["Adam", "AdamW"]


def _adam_or_adamw(
    *, decoupled_weight_decay: bool = False, **kwargs: Any
) -> GradientTransformation:
    # eps_root=None: torch has no term under the root, so none is carried.
    return (adamw if decoupled_weight_decay else adam)(eps_root=None, **kwargs)


_ADAM_SPEC = Spec(
    alias=_adam_or_adamw,
    hyperparams=ADAM_HYPERPARAMS,
    flags=same_names("amsgrad", "maximize", "decoupled_weight_decay"),
    zero_terms={"weight_decay": ()},
    state={
        "step": STEP,
        **moments(ScaleByAdamState),
        "max_exp_avg_sq": StateKey(ScaleByAdamState, "nu_max"),
    },
    order=(
        "lr betas eps weight_decay amsgrad maximize foreach capturable differentiable fused "
        "decoupled_weight_decay"
    ),
)


def _refuse_tensor_options(lr: Any, betas: Any, foreach: Any, capturable: Any) -> None:
    # torch's Adam refuses one-element array options on its multi-tensor path unless
    # capturable; optimlab has no such limit, but refuses what torch refuses.
    if not foreach or capturable:
        return
    if is_array(lr):
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    if isinstance(betas, (tuple, list)) and len(betas) == 2 and all(map(is_array, betas)):
        raise ValueError(
            "betas[0] as a Tensor is not supported for capturable=False and foreach=True"
        )


class Adam(Optimizer):
    """``torch.optim.Adam`` over :func:`optimlab.adam`: same signature, defaults and state dict.

    With ``decoupled_weight_decay=True`` it runs :func:`optimlab.adamw` instead.

    The per-parameter state is ``{'step', 'exp_avg', 'exp_avg_sq'}`` plus
    ``'max_exp_avg_sq'`` with ``amsgrad``; ``step`` is a float32 scalar in the state
    dict (an int32 counter inside). ``capturable``, ``differentiable`` and
    ``fused`` have no effect (``foreach``: see below). As torch, it refuses an array
    ``lr`` or ``betas`` with ``foreach=True`` and ``capturable=False``. See
    :class:`Optimizer` for the differences from torch.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        betas: ``(b1, b2)``.
        eps: added to the denominator.
        weight_decay: L2 penalty (decoupled with ``decoupled_weight_decay``).
        amsgrad: use the running maximum of the second moment.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        capturable: accepted for compatibility; no effect.
        differentiable: accepted for compatibility; no effect.
        fused: accepted for compatibility; no effect.
        decoupled_weight_decay: AdamW's decay.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.Adam([jnp.array([1.0, -1.0])], lr=0.1)
        >>> opt.step([jnp.array([2.0, -2.0])])
        >>> opt.params
        [Array([ 0.9, -0.9], dtype=float32)]
    """

    spec = _ADAM_SPEC

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _refuse_tensor_options(lr, betas, foreach, capturable)
        super().__init__(params, self.spec.defaults(locals()))


class AdamW(Optimizer):
    """``torch.optim.AdamW`` over :func:`optimlab.adamw`: same signature, defaults and state dict.

    As torch, it is :class:`Adam` with ``decoupled_weight_decay=True`` (forced again
    when a state dict is loaded). See :class:`Adam` for the state and the options
    without effect.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        betas: ``(b1, b2)``.
        eps: added to the denominator.
        weight_decay: decoupled weight decay (default ``1e-2``).
        amsgrad: use the running maximum of the second moment.
        maximize: maximise the objective.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        capturable: accepted for compatibility; no effect.
        differentiable: accepted for compatibility; no effect.
        fused: accepted for compatibility; no effect.
    """

    spec = replace(_ADAM_SPEC, fixed={"decoupled_weight_decay": True})

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _refuse_tensor_options(lr, betas, foreach, capturable)
        super().__init__(params, self.spec.defaults(locals()))
