"""Adamax, SparseAdam, Adafactor and Muon as torch.optim-compatible classes (private).

One signature and one :class:`Spec` each, as in ``_classes.py``. See
:class:`~optimlab.optim.Optimizer` for what every class shares and its
differences from torch; ``foreach``, ``capturable`` and ``differentiable`` are
kept in the groups and have no effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._core._base import GradientTransformation
from .._core._hyperparams import HyperparamsState
from .._optimizers._adafactor import ScaleByTorchAdafactorState, torch_adafactor
from .._optimizers._adamax import ScaleByAdamaxState, adamax
from .._optimizers._muon import NS_COEFFS, ScaleByMuonState, torch_muon
from .._optimizers._sparse_adam import ScaleBySparseAdamState, sparse_adam
from ._optimizer import Optimizer
from ._params import split_params
from ._spec import STEP, Spec, StateKey

__all__ = ["Adamax", "SparseAdam", "Adafactor", "Muon"]


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
        foreach: no effect.
        maximize: maximise the objective.
        differentiable: no effect.
        capturable: no effect.

    Examples:
        >>> import jax.numpy as jnp
        >>> from optimlab import optim
        >>> opt = optim.Adamax({"w": jnp.array([1.0, -1.0])}, lr=0.1)
        >>> opt.step({"w": jnp.array([2.0, -2.0])})
        >>> opt.params["w"].round(4)
        Array([ 0.9, -0.9], dtype=float32)
    """

    spec = Spec(
        alias=adamax,
        hyperparams={
            "lr": "learning_rate",
            "betas": ("b1", "b2"),
            "eps": "eps",
            "weight_decay": "weight_decay",
        },
        flags={"maximize": "maximize"},
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
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                capturable=capturable,
            ),
        )


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
        >>> import jax.numpy as jnp
        >>> from optimlab import optim
        >>> opt = optim.SparseAdam({"table": jnp.ones((3, 2))}, lr=0.1)
        >>> opt.step({"table": jnp.zeros((3, 2)).at[1].set(1.0)})
        >>> opt.params["table"][:, 0].round(4)
        Array([1. , 0.9, 1. ], dtype=float32)
    """

    spec = Spec(
        alias=sparse_adam,
        hyperparams={"lr": "learning_rate", "betas": ("b1", "b2"), "eps": "eps"},
        flags={"maximize": "maximize"},
        state={
            "step": StateKey(HyperparamsState, "count", dtype=int),
            "exp_avg": StateKey(ScaleBySparseAdamState, "mu"),
            "exp_avg_sq": StateKey(ScaleBySparseAdamState, "nu"),
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
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))
        bad = [
            [gi, j]
            for gi, g in enumerate(self.param_groups)
            for j, i in enumerate(g["params"])
            if jnp.iscomplexobj(self._leaves[i])
        ]
        if bad:
            raise ValueError(
                f"Complex params at indices {bad}: SparseAdam does not support complex parameters"
            )


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
        foreach: no effect.
        maximize: maximise the objective.

    Examples:
        >>> import jax.numpy as jnp
        >>> from optimlab import optim
        >>> opt = optim.Adafactor({"w": jnp.array([3.0, -4.0])}, lr=0.1)
        >>> opt.step({"w": jnp.array([3.0, -4.0])})
        >>> opt.params["w"].round(4)
        Array([ 2.6464, -3.6464], dtype=float32)
    """

    spec = Spec(
        alias=torch_adafactor,
        hyperparams={
            "lr": "learning_rate",
            "beta2_decay": "beta2_decay",
            "eps": ("eps1", "eps2"),
            "d": "d",
            "weight_decay": "weight_decay",
        },
        flags={"maximize": "maximize"},
        zero_terms={"weight_decay": ()},
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
        super().__init__(
            params,
            dict(
                lr=lr,
                beta2_decay=beta2_decay,
                eps=_check_eps(eps),
                d=d,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
            ),
        )


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
        >>> import jax.numpy as jnp
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
            "lr": "learning_rate",
            "weight_decay": "weight_decay",
            "momentum": "momentum",
            "ns_coefficients": ("ns_a", "ns_b", "ns_c"),
            "eps": "eps",
            "ns_steps": "ns_steps",
        },
        flags={"nesterov": "nesterov", "adjust_lr_fn": "adjust_lr_fn"},
        zero_terms={"weight_decay": ()},
        static=("ns_steps",),
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
        super().__init__(
            params,
            dict(
                lr=lr,
                weight_decay=weight_decay,
                momentum=momentum,
                nesterov=nesterov,
                ns_coefficients=tuple(ns_coefficients),
                eps=eps,
                ns_steps=ns_steps,
                adjust_lr_fn=adjust_lr_fn,
            ),
        )

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
