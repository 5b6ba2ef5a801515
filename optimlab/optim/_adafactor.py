"""``Adafactor``: torch.optim.Adafactor over :func:`optimlab.torch_adafactor` (private)."""

from __future__ import annotations

from typing import Any

from .._optimizers._torch_adafactor import ScaleByTorchAdafactorState, torch_adafactor
from ._optimizer import Optimizer
from ._spec import LR, STEP, Spec, StateKey, same_names

__all__ = ["Adafactor"]


def _check_eps(eps: Any) -> tuple[Any, Any]:
    values = tuple(eps)
    if len(values) != 2:
        raise ValueError(f"eps must have 2 values, got {eps!r}")
    return values[0], values[1]


class Adafactor(Optimizer):
    """``torch.optim.Adafactor`` over :func:`optimlab.torch_adafactor`.

    The per-parameter state is ``{'step', 'row_var', 'col_var'}`` for parameters
    with two or more axes, ``{'step', 'variance'}`` for the others. ``eps=(eps1, eps2)``;
    ``eps1=None`` (the default) uses each parameter dtype's
    machine epsilon, as torch; switching ``eps1`` between ``None`` and a number
    recompiles the step once.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: the cap of the relative step size (``learning_rate``).
        beta2_decay: the exponent of the second-moment weight, at most 0.
        eps: ``(eps1, eps2)``: the floor of the second moment (or ``None``) and of
            the parameter scale.
        d: the clipping threshold of the update's RMS.
        weight_decay: decoupled decay, multiplied by ``lr``.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.Adafactor({"w": jnp.array([3.0, -4.0])}, lr=0.1)
        >>> opt.step({"w": jnp.array([3.0, -4.0])})
        >>> opt.params["w"].round(4)
        Array([ 2.6464, -3.6464], dtype=float32)
    """

    spec = Spec(
        alias=torch_adafactor,
        hyperparams={
            **LR,
            "beta2_decay": "beta2_decay",
            "eps": ("eps1", "eps2"),
            **same_names("d", "weight_decay"),
        },
        flags=same_names("maximize"),
        zero_terms={"weight_decay": ()},
        real_only=True,
        state={
            "step": STEP,
            "row_var": StateKey(ScaleByTorchAdafactorState, "row_var"),
            "col_var": StateKey(ScaleByTorchAdafactorState, "col_var"),
            "variance": StateKey(ScaleByTorchAdafactorState, "variance"),
        },
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        eps = _check_eps(eps)
        super().__init__(params, self.spec.defaults(locals()))
