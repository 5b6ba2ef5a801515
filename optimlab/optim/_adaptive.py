"""More torch.optim-compatible classes, one signature and one :class:`Spec` each (private).

See :class:`~optimlab.optim.Optimizer` for what every class shares and its
differences from torch; ``capturable``, ``differentiable`` and ``fused`` are kept
in the groups with no effect; ``foreach=False`` steps one parameter at a time.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._optimizers._adadelta import ScaleByAdadeltaState, adadelta
from .._optimizers._adagrad import ScaleByAdagradState, adagrad
from .._optimizers._asgd import ScaleByAsgdState, asgd
from .._optimizers._nadam import ScaleByNadamState, nadam
from .._optimizers._radam import ScaleByRadamState, radam
from .._optimizers._rmsprop import ScaleByRmspropState, rmsprop
from .._optimizers._rprop import ScaleByRpropState, rprop
from .._optimizers._sgd import TraceState
from ._optimizer import Optimizer
from ._spec import (
    ADAM_HYPERPARAMS,
    LR,
    STEP,
    Spec,
    StateKey,
    moments,
    same_names,
    with_torch_values,
)

_TORCH_RADAM = {"eps_after_bias_correction": False, "componentwise": True}
__all__ = ["Adagrad", "Adadelta", "RMSprop", "NAdam", "RAdam", "Rprop", "ASGD"]


class Adagrad(Optimizer):
    """``torch.optim.Adagrad`` over :func:`optimlab.adagrad`; state ``{'step', 'sum'}``.

    Unlike torch, which creates every parameter's state at construction, the state
    is created at a parameter's first gradient (as the other classes do); the values
    are the same.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        lr_decay: learning-rate decay.
        weight_decay: L2 penalty.
        initial_accumulator_value: starting value of the sum of squares.
        eps: added to the denominator.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        differentiable: no effect.
        fused: no effect.
    """

    spec = Spec(
        alias=with_torch_values(adagrad, eps_in_sqrt=False, componentwise=True),
        hyperparams={
            **LR,
            **same_names("lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
        },
        flags=same_names("maximize"),
        zero_terms={"weight_decay": ()},
        state={
            "step": STEP,
            "sum": StateKey(ScaleByAdagradState, "sum_of_squares"),
        },
        order=(
            "lr lr_decay eps weight_decay initial_accumulator_value foreach maximize "
            "differentiable fused"
        ),
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


class Adadelta(Optimizer):
    """``torch.optim.Adadelta`` over :func:`optimlab.adadelta`.

    The per-parameter state is ``{'step', 'square_avg', 'acc_delta'}``.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        rho: decay of the running averages.
        eps: added inside the square roots.
        weight_decay: L2 penalty.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        capturable: no effect.
        maximize: maximise the objective.
        differentiable: no effect.
    """

    spec = Spec(
        alias=with_torch_values(adadelta, componentwise=True),
        hyperparams={**LR, **same_names("rho", "eps", "weight_decay")},
        flags=same_names("maximize"),
        zero_terms={"weight_decay": ()},
        state={
            "step": STEP,
            "square_avg": StateKey(ScaleByAdadeltaState, "square_avg"),
            "acc_delta": StateKey(ScaleByAdadeltaState, "acc_delta"),
        },
        order="lr rho eps weight_decay maximize capturable foreach differentiable",
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


class RMSprop(Optimizer):
    """``torch.optim.RMSprop`` over :func:`optimlab.rmsprop` (``alpha`` is ``decay``).

    The per-parameter state is ``{'step', 'square_avg'}`` plus ``'momentum_buffer'``
    and ``'grad_avg'`` when used.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        alpha: smoothing constant (``decay``).
        eps: added to the denominator.
        weight_decay: L2 penalty.
        momentum: momentum factor.
        centered: normalise by the estimated variance.
        capturable: no effect.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        differentiable: no effect.
    """

    spec = Spec(
        alias=with_torch_values(rmsprop, eps_in_sqrt=False, componentwise=True),
        hyperparams={**LR, "alpha": "decay", **same_names("eps", "weight_decay", "momentum")},
        flags=same_names("centered", "maximize"),
        zero_terms={"weight_decay": (), "momentum": ()},
        state={
            "step": STEP,
            "square_avg": StateKey(ScaleByRmspropState, "square_avg"),
            "momentum_buffer": StateKey(TraceState, "trace"),
            "grad_avg": StateKey(ScaleByRmspropState, "grad_avg"),
        },
        order=(
            "lr momentum alpha eps centered weight_decay capturable foreach maximize differentiable"
        ),
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


def _torch_nadam(**kwargs: Any) -> Any:
    # torch keeps ``mu_product`` in its default dtype, float32, whatever the params'.
    return nadam(**kwargs, product_dtype=jnp.float32)


_torch_nadam.__name__ = "nadam"


class NAdam(Optimizer):
    r"""``torch.optim.NAdam`` over :func:`optimlab.nadam`.

    The per-parameter state is ``{'step', 'mu_product', 'exp_avg', 'exp_avg_sq'}``;
    ``mu_product`` is a float32 scalar whatever the parameters' dtype, rounded each
    step as torch rounds it (in torch's default dtype, float32).

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        betas: ``(b1, b2)``.
        eps: added to the denominator.
        weight_decay: L2 penalty (decoupled with ``decoupled_weight_decay``).
        momentum_decay: momentum decay :math:`\psi`.
        decoupled_weight_decay: NAdamW's decay.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        capturable: no effect.
        differentiable: no effect.
    """

    spec = Spec(
        alias=_torch_nadam,
        hyperparams={**ADAM_HYPERPARAMS, "momentum_decay": "momentum_decay"},
        flags=same_names("decoupled_weight_decay", "maximize"),
        zero_terms={"weight_decay": ()},
        state={
            "step": STEP,
            "mu_product": StateKey(ScaleByNadamState, "mu_product"),
            **moments(ScaleByNadamState),
        },
        order=(
            "lr betas eps weight_decay momentum_decay decoupled_weight_decay maximize foreach "
            "capturable differentiable"
        ),
    )

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


class RAdam(Optimizer):
    """``torch.optim.RAdam`` over :func:`optimlab.radam` with torch's epsilon placement.

    The core is built with ``eps_root=None, eps_after_bias_correction=False``:
    epsilon added to the root of the raw second moment, rectification when
    ``rho_t > 5``, as torch.

    The per-parameter state is ``{'step', 'exp_avg', 'exp_avg_sq'}``.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        betas: ``(b1, b2)``.
        eps: added to the denominator.
        weight_decay: L2 penalty (decoupled with ``decoupled_weight_decay``).
        decoupled_weight_decay: RAdamW's decay.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        capturable: no effect.
        differentiable: no effect.
    """

    spec = Spec(
        alias=with_torch_values(radam, eps_root=None, **_TORCH_RADAM),
        hyperparams=ADAM_HYPERPARAMS,
        flags=same_names("decoupled_weight_decay", "maximize"),
        zero_terms={"weight_decay": ()},
        state={"step": STEP, **moments(ScaleByRadamState)},
        order=(
            "lr betas eps weight_decay maximize foreach capturable decoupled_weight_decay "
            "differentiable"
        ),
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


class Rprop(Optimizer):
    """``torch.optim.Rprop`` over :func:`optimlab.rprop`; state ``{'step', 'prev', 'step_size'}``.

    The core is built with ``delayed_update=False``, torch's current-step rule.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: initial step size (``learning_rate``).
        etas: ``(eta_minus, eta_plus)``.
        step_sizes: ``(min_step_size, max_step_size)``.
        capturable: no effect.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        differentiable: no effect.
    """

    spec = Spec(
        alias=with_torch_values(rprop, delayed_update=False),
        hyperparams={
            **LR,
            "etas": ("eta_minus", "eta_plus"),
            "step_sizes": ("min_step_size", "max_step_size"),
        },
        flags=same_names("maximize"),
        state={
            "step": STEP,
            "prev": StateKey(ScaleByRpropState, "prev"),
            "step_size": StateKey(ScaleByRpropState, "step_size"),
        },
        order="lr etas step_sizes foreach maximize differentiable capturable",
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))


class ASGD(Optimizer):
    """``torch.optim.ASGD`` over :func:`optimlab.asgd`; state ``{'step', 'eta', 'mu', 'ax'}``.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list of group dicts.
        lr: learning rate (``learning_rate``).
        lambd: decay term.
        alpha: power for the eta update.
        t0: step at which averaging starts.
        weight_decay: L2 penalty.
        foreach: ``False`` steps one parameter at a time; otherwise each group's
            parameters step in one call (the same numbers, bit for bit).
        maximize: maximise the objective.
        differentiable: no effect.
        capturable: no effect.
    """

    spec = Spec(
        alias=asgd,
        hyperparams={**LR, **same_names("lambd", "alpha", "t0", "weight_decay")},
        flags=same_names("maximize"),
        zero_terms={"weight_decay": ()},
        state={
            "step": STEP,
            "eta": StateKey(ScaleByAsgdState, "eta"),
            "mu": StateKey(ScaleByAsgdState, "mu"),
            "ax": StateKey(ScaleByAsgdState, "ax"),
        },
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(params, self.spec.defaults(locals()))
