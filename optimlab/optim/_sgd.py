"""``SGD``: torch.optim.SGD over :func:`optimlab.sgd` (private)."""

from __future__ import annotations

from typing import Any

from .._optimizers._sgd import TraceState, sgd
from ._optimizer import Optimizer
from ._spec import LR, Spec, StateKey, same_names

__all__ = ["SGD"]


class SGD(Optimizer):
    """``torch.optim.SGD`` over :func:`optimlab.sgd`: same signature, defaults and state dict.

    The per-parameter state is ``{'momentum_buffer': array}`` when ``momentum`` is
    non-zero, nothing otherwise. ``differentiable`` and ``fused`` are kept in the
    groups and have no effect (every step is one fused jitted call, and
    differentiable in JAX); ``foreach=False`` steps one parameter at a time. See
    :class:`Optimizer` for the differences from torch.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        momentum: momentum factor.
        dampening: dampening for momentum.
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum.
        maximize: maximise the objective.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        differentiable: accepted for compatibility; no effect.
        fused: accepted for compatibility; no effect.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.array([1.0, -2.0])}, lr=0.1, momentum=0.9)
        >>> loss = opt.backward(lambda p: jnp.sum(p["w"] ** 2))
        >>> opt.step()
        >>> opt.params["w"]
        Array([ 0.8, -1.6], dtype=float32)
    """

    spec = Spec(
        alias=sgd,
        hyperparams={**LR, **same_names("momentum", "dampening", "weight_decay")},
        flags=same_names("nesterov", "maximize"),
        zero_terms={"momentum": ("dampening",), "weight_decay": ()},
        state={"momentum_buffer": StateKey(TraceState, "trace", optional=True)},
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))
