"""``Muon``: torch.optim.Muon over :func:`optimlab.torch_muon` (private)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._core._base import GradientTransformation
from .._optimizers._muon import NS_COEFFS, ScaleByMuonState, torch_muon
from ._optimizer import Optimizer
from ._params import split_params
from ._spec import LR, Spec, StateKey, same_names

__all__ = ["Muon"]


def _muon(*, ns_a: Any, ns_b: Any, ns_c: Any, **kwargs: Any) -> GradientTransformation:
    return torch_muon(ns_coeffs=(ns_a, ns_b, ns_c), **kwargs)


class Muon(Optimizer):
    """``torch.optim.Muon`` over :func:`optimlab.torch_muon`; state ``{'momentum_buffer'}``.

    As torch, only 2-D parameters are accepted (:func:`optimlab.torch_muon` itself also
    steps the other leaves with AdamW). The Newton–Schulz iteration runs in
    bfloat16, as torch's. Changing ``ns_steps``, ``nesterov`` or ``adjust_lr_fn``
    recompiles the step once; the other options are live. Unlike torch, which
    checks the shapes at construction only, :meth:`add_param_group` checks them too.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        weight_decay: decoupled decay, multiplied by ``lr``.
        momentum: momentum factor.
        nesterov: Nesterov momentum.
        ns_coefficients: the Newton–Schulz coefficients ``(a, b, c)``.
        eps: the smallest norm the Newton–Schulz input is divided by.
        ns_steps: the number of Newton–Schulz iterations.
        adjust_lr_fn: ``None`` or ``"original"``, or ``"match_rms_adamw"``.

    Raises:
        ValueError: a parameter that is not 2-D (torch's message, with the shape as
            a tuple).

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.Muon({"w": jnp.eye(2)}, lr=0.1, weight_decay=0.0)
        >>> opt.step({"w": jnp.eye(2)})
        >>> opt.params["w"].round(2)
        Array([[0.89, 0.  ],
               [0.  , 0.89]], dtype=float32)
    """

    spec = Spec(
        alias=_muon,
        hyperparams={
            **LR,
            **same_names("weight_decay", "momentum"),
            "ns_coefficients": ("ns_a", "ns_b", "ns_c"),
            **same_names("eps", "ns_steps"),
        },
        flags=same_names("nesterov", "adjust_lr_fn"),
        zero_terms={"weight_decay": ()},
        static=("ns_steps",),
        real_only=True,
        state={"momentum_buffer": StateKey(ScaleByMuonState, "momentum")},
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a parameter group of 2-D parameters (see :meth:`Optimizer.add_param_group`).

        Raises:
            ValueError: a parameter that is not 2-D, before anything changes.
        """
        if isinstance(param_group, dict) and "params" in param_group:
            if isinstance(param_group["params"], Iterator):
                param_group["params"] = list(param_group["params"])
            _, leaves = split_params(param_group["params"], 0)
            for leaf in leaves:
                if np.ndim(leaf) != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a "
                        f"parameter with size: {tuple(leaf.shape)}"
                    )
        super().add_param_group(param_group)
