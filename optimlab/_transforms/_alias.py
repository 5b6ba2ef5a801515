"""The chain most aliases build around their scaling primitive (private).

``maximize`` sign flip, L2 decay, the primitive, decoupled decay, learning rate:
written once here, in that order, so every alias using it has the same state
layout as one that spells the chain out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from .._core import _elementwise, _tree, _validate
from .._core._base import GradientTransformation, chain
from .._core._hyperparams import Builder, build_hyperparams
from .._core._stateless import stateless
from .._core._types import ScalarOrSchedule
from ._scale import add_decayed_weights, scale, scale_by_learning_rate

Primitive = Callable[[jax.Array, Mapping[str, jax.Array]], GradientTransformation]


def torch_style(
    primitive: Primitive,
    *,
    learning_rate: ScalarOrSchedule | None,
    weight_decay: ScalarOrSchedule | None = None,
    maximize: bool = False,
    decoupled: bool = False,
    learning_rate_optional: bool = False,
    mask: Any = None,
    owner: str = "",
    **hyperparameters: ScalarOrSchedule,
) -> GradientTransformation:
    r"""Builds ``[scale(-1)] [L2 decay] primitive [decoupled decay] learning rate``.

    Every numeric hyperparameter lives in the state (:func:`with_hyperparams`), in
    the order ``learning_rate``, ``**hyperparameters``, ``weight_decay``. A
    ``weight_decay`` of ``None`` leaves the decay out, and its name out of the
    state; any number, zero included, keeps it there, settable later.

    Args:
        primitive: ``(step, h) -> GradientTransformation``, the scaling primitive
            built from the hyperparameter values ``h`` (and ``step`` if it needs it).
        learning_rate: the step size, applied last (a descent step). ``None`` is
            refused, naming the argument, unless ``learning_rate_optional``.
        weight_decay: :math:`\lambda`, or ``None`` for no decay term; added to the
            gradient before ``primitive``
            (L2), or with ``decoupled`` to the direction after it.
        maximize: flip the sign of the gradient first.
        decoupled: place the decay after ``primitive`` (AdamW's form).
        learning_rate_optional: ``learning_rate=None`` means no learning-rate scaling
            and no sign flip (optax's ``adadelta``), and no ``learning_rate`` in the
            state.
        mask: pytree of bools (or ``params -> mask``) selecting the leaves to decay.
        owner: the alias whose entries in the rule table validate the values.
        **hyperparameters: the primitive's numeric hyperparameters, read from ``h``.

    Returns:
        A :class:`~optimlab.GradientTransformation` with a ``HyperparamsState``.
    """
    use_decay = _validate.present(weight_decay)

    def build(step, h):
        txs = torch_prefix(h, maximize=maximize, decay=use_decay and not decoupled, mask=mask)
        txs.append(primitive(step, h))
        if use_decay and decoupled:
            txs.append(add_decayed_weights(h["weight_decay"], mask))
        if learning_rate is not None:
            txs.append(scale_by_learning_rate(h["learning_rate"]))
        return chain(*txs)

    hps: dict[str, Any] = {}
    if learning_rate is not None or not learning_rate_optional:
        hps["learning_rate"] = learning_rate  # None: with_hyperparams refuses it
    hps.update(hyperparameters)
    if use_decay:
        hps["weight_decay"] = weight_decay
    # Its transformations read the hyperparameters only as they run: built once.
    return build_hyperparams(build, hps, once=True, owner=owner)


def matches_params(name: str) -> GradientTransformation:
    """Checks (at trace time) that updates have the params' structure and shapes.

    Stateless aliases have no state to compare the updates with; this catches a
    wrong gradient tree early, naming ``name`` and the key path, instead of in
    ``apply_updates`` (or never).
    """

    def checked(updates, params, **extra_args):
        del extra_args
        if params is not None:
            _tree.check_fits(name, updates, params)
        return updates

    return _elementwise.declare(stateless(checked))


def descend(*txs: GradientTransformation, maximize: bool) -> GradientTransformation:
    """``[scale(-1)] *txs scale(-1)``: for ``txs`` that apply the learning rate themselves.

    Such a primitive (torch's Rprop or Adafactor) returns the step to subtract; the
    last ``scale(-1)`` makes it a descent update, and ``maximize`` flips the
    gradient first.
    """
    return chain(*([scale(-1.0)] if maximize else []), *txs, scale(-1.0))


def validate_adam_like(learning_rate: Any, b1: Any, b2: Any, eps: Any, weight_decay: Any) -> None:
    """Checks Adam-style hyperparameters in torch's order (lr, eps, betas, weight_decay).

    torch.optim's Adam, AdamW, Adamax, NAdam and RAdam all check in this order, so
    the first failing check, and its message, are the same as theirs.
    """
    _validate.lr(learning_rate)
    _validate.eps(eps)
    _validate.beta(b1, 0)
    _validate.beta(b2, 1)
    _validate.weight_decay(weight_decay)


def optional(**terms: Any) -> dict[str, Any]:
    """The optional hyperparameters that are present, in the order given.

    An optional term given as ``None`` (no weight decay, no momentum) is left out
    of the state (:func:`~optimlab._core._validate.present`); any number, zero
    included, is kept. For ``with_hyperparams(build, ..., **optional(...))``.
    """
    return {k: v for k, v in terms.items() if _validate.present(v)}


def torch_prefix(
    h: Any, *, maximize: bool, decay: bool, mask: Any = None
) -> list[GradientTransformation]:
    """torch's ``[scale(-1)] [L2 decay]`` before a primitive (decay: ``h["weight_decay"]``).

    ``mask`` selects the leaves to decay, as in :func:`add_decayed_weights`.
    """
    txs = [scale(-1.0)] if maximize else []
    if decay:
        txs.append(add_decayed_weights(h["weight_decay"], mask))
    return txs


def alias_hyperparams(
    build: Builder, owner: str = "", /, **hyperparameters: ScalarOrSchedule
) -> GradientTransformation:
    """``with_hyperparams`` for optimlab's own aliases: ``build`` is called once (private).

    See ``build_hyperparams``: the alias's transformations read the
    hyperparameters through references bound at each call, and a ``build`` that
    reads one while building is called at each trace instead. ``owner`` names the
    alias whose rules in the rule table validate its values.
    """
    return build_hyperparams(build, hyperparameters, once=True, owner=owner)
