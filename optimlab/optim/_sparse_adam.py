"""``SparseAdam``: torch.optim.SparseAdam over :func:`optimlab.sparse_adam` (private)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._core._hyperparams import HyperparamsState
from .._optimizers._sparse_adam import ScaleBySparseAdamState, sparse_adam
from ._optimizer import Optimizer
from ._spec import Spec, StateKey, moments, same_names

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    """``torch.optim.SparseAdam`` over :func:`optimlab.sparse_adam`.

    The per-parameter state is ``{'step', 'exp_avg', 'exp_avg_sq'}``. JAX gradients are
    dense: a row (an index along the leading axis; an element of
    a vector) is taken as present in the gradient when it has a non-zero entry,
    which is what torch receives from ``nn.Embedding(sparse=True)``. Differences
    from torch: a row that a torch sparse gradient lists with an exactly zero value
    is updated by torch and skipped here; a dense gradient is accepted (torch
    refuses it); ``step`` in the state dict is a 0-d integer array (torch's is a
    Python int, and it loads from either).

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``), positive.
        betas: ``(b1, b2)``.
        eps: added to the denominator, positive.
        maximize: maximise the objective.

    Raises:
        ValueError: complex parameters, with torch's message.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SparseAdam({"table": jnp.ones((3, 2))}, lr=0.1)
        >>> opt.step({"table": jnp.zeros((3, 2)).at[1].set(1.0)})
        >>> opt.params["table"][:, 0].round(4)
        Array([1. , 0.9, 1. ], dtype=float32)
    """

    spec = Spec(
        alias=sparse_adam,
        hyperparams={"lr": "learning_rate", "betas": ("b1", "b2"), "eps": "eps"},
        flags=same_names("maximize"),
        state={
            "step": StateKey(HyperparamsState, "count", dtype=int),
            **moments(ScaleBySparseAdamState),
        },
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))
        bad = [
            [gi, j]
            for gi, g in enumerate(self.param_groups)
            for j, i in enumerate(g["params"])
            if jnp.iscomplexobj(self._store.params[i].leaf)
        ]
        if bad:
            raise ValueError(
                f"Complex params at indices {bad}: SparseAdam does not support complex parameters"
            )
