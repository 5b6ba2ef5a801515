"""``Adamax``: torch.optim.Adamax over :func:`optimlab.adamax` (private)."""

from __future__ import annotations

from typing import Any

from .._optimizers._adamax import ScaleByAdamaxState, adamax
from ._optimizer import Optimizer
from ._spec import ADAM_HYPERPARAMS, STEP, Spec, StateKey, same_names, with_torch_values

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """``torch.optim.Adamax`` over :func:`optimlab.adamax`.

    The per-parameter state is ``{'step', 'exp_avg', 'exp_inf'}``. Complex parameters are
    optimized componentwise, as torch does.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        betas: ``(b1, b2)``.
        eps: added to :math:`|g|` inside the maximum.
        weight_decay: L2 penalty added to the gradient.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        differentiable: no effect.
        capturable: no effect.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.Adamax({"w": jnp.array([1.0, -1.0])}, lr=0.1)
        >>> opt.step({"w": jnp.array([2.0, -2.0])})
        >>> opt.params["w"].round(4)
        Array([ 0.9, -0.9], dtype=float32)
    """

    spec = Spec(
        alias=with_torch_values(adamax, componentwise=True),
        hyperparams=ADAM_HYPERPARAMS,
        flags=same_names("maximize"),
        zero_terms={"weight_decay": ()},
        state={
            "step": STEP,
            "exp_avg": StateKey(ScaleByAdamaxState, "mu"),
            "exp_inf": StateKey(ScaleByAdamaxState, "nu"),
        },
    )

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))
