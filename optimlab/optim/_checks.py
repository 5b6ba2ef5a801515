"""Checks of the values a parameter group or a loaded state brings in (private).

Numeric group options are checked against the shared rule table
(:mod:`optimlab._core._rules`, by the alias's hyperparameter name) when a group is
loaded and whenever a value changes between steps: torch does not re-check edits
of ``param_groups``, but a NaN or infinite learning rate would silently turn the
parameters NaN, and the values pass through the host here anyway.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._core import _rules
from ._params import GroupLayout
from ._spec import Spec, is_array, required

__all__ = [
    "ComplexParamsError",
    "check_closure",
    "check_flags",
    "check_grad_dtype",
    "check_group",
    "check_options",
    "check_new_group",
    "check_params_container",
    "check_real",
    "check_step",
    "is_group_list",
]

#: torch's flags that are kept in the groups with no effect here (``foreach=False`` aside):
#: ``None`` or a bool for the first two, a bool for the others.
OPTIONAL_FLAGS = ("foreach", "fused")
BOOL_FLAGS = ("capturable", "differentiable")


class ComplexParamsError(TypeError, RuntimeError):
    """Complex parameters given to an optimizer that has no complex form.

    A ``TypeError`` (the parameter's dtype is what is wrong) that is also the
    ``RuntimeError`` torch raises for the same input, so code written for either
    catches it.
    """


def check_params_container(params: Any) -> None:
    """torch's refusal of a bare array (or ``None``) as the ``params`` of an optimizer.

    A group's ``"params"`` may be one array (:meth:`add_param_group` wraps it, as
    torch does); the optimizer's own argument must be a tree, a list of arrays or
    ``(name, array)`` pairs, or a list of group dicts.
    """
    if params is None:  # an empty tree to JAX, but no parameters given at all
        raise TypeError(
            "params argument given to the optimizer should be an iterable of Tensors or "
            "dicts, but got None; pass the model's params (a tree of arrays, or a list)."
        )
    if is_array(params):
        kind = type(params)
        raise TypeError(
            "params argument given to the optimizer should be an iterable of Tensors or "
            f"dicts, but got {kind.__module__}.{kind.__qualname__}; pass [array] (or a "
            "tree of arrays)."
        )


def is_group_list(params: Any, options: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a list of parameter group dicts (each then needs ``"params"``).

    The list's dicts look like groups when one of them has ``"params"`` or a key that
    is an option of the optimizer (``options``); a list of dicts of arrays whose keys
    are no option names is a parameter tree. In a list of groups, an entry that is
    not a dict is refused (``TypeError``, as torch's ``add_param_group``) and a dict
    without ``"params"`` too (``KeyError``, as torch).
    """
    if not isinstance(params, (list, tuple)):
        return False
    dicts = [p for p in params if isinstance(p, dict)]
    if not any("params" in d or not options.keys().isdisjoint(d) for d in dicts):
        return False
    for i, group in enumerate(params):
        if not isinstance(group, dict):
            raise TypeError(
                f"params is a list of parameter group dicts, but entry {i} is a "
                f"{type(group).__name__}: put every parameter in a group's 'params'"
            )
        if "params" not in group:
            raise KeyError(
                f"'params': parameter group {i} has no 'params' entry (its keys are "
                f"{sorted(map(str, group))}); each group dict needs one"
            )
    return True


def check_flags(group: Mapping[str, Any], where: str) -> None:
    """Refuses a torch flag of the wrong type: ``foreach``/``fused`` ``None`` or bool, others bool.

    Raises:
        TypeError: naming the option.
    """
    for name in OPTIONAL_FLAGS + BOOL_FLAGS:
        if name not in group:
            continue
        value = group[name]
        if isinstance(value, (bool, np.bool_)) or (value is None and name in OPTIONAL_FLAGS):
            continue
        kinds = "None or a bool" if name in OPTIONAL_FLAGS else "a bool"
        raise TypeError(
            f"{_label(where, name)} must be {kinds}, got {type(value).__name__} {value!r:.80}"
        )


def check_options(spec: Spec, group: Mapping[str, Any], where: str) -> None:
    """Checks run before a group's alias is built: the torch flags and the zero terms.

    A zero term (``momentum``, ``weight_decay``) must be a real number: torch compares
    it with ``0.0`` and raises ``TypeError`` for ``None`` or a string, where the alias
    would take ``None`` for "no term".

    Raises:
        TypeError: naming the option.
    """
    check_flags(group, where)
    for key in spec.zero_terms:
        if key in group:
            value = group[key]
            if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
                raise TypeError(
                    f"{_label(where, key)} must be a real number (0 for none), "
                    f"got {type(value).__name__} {value!r:.80}"
                )


def _label(where: str, key: str) -> str:
    """``param_groups[0]['lr']``, or the bare option name for the defaults (``where`` empty)."""
    return f"{where}[{key!r}]" if where else key


def check_closure(fn: Callable[..., Any]) -> None:
    """Refuses a torch-style closure that takes no argument: here it receives the params.

    Raises:
        TypeError: ``fn`` accepts no positional argument.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    if not any(p.kind in kinds for p in sig.parameters.values()):
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise TypeError(
            f"the closure {name}{sig} takes no positional argument, but it receives the "
            "parameters (JAX computes the gradients from them): write "
            "step(lambda params: loss_fn(params)) instead of torch's step(lambda: loss)"
        )


def check_new_group(
    spec: Spec,
    defaults: Mapping[str, Any],
    param_group: Mapping[str, Any],
    layout: GroupLayout,
    others: Sequence[GroupLayout],
    owner: str,
) -> None:
    """torch's checks of a parameter group being added, in torch's order and words.

    Args:
        spec: the optimizer's table.
        defaults: the optimizer's defaults (``required`` ones must be given).
        param_group: the group as given.
        layout: the new group's parameters.
        others: the layouts of the groups already added.
        owner: the optimizer's class name, for messages.

    Raises:
        ValueError: a required option missing, names on some groups only, a
            parameter already in another group, or a second group where the
            optimizer takes one.
    """
    for name, default in defaults.items():
        if default is required and name not in param_group:
            raise ValueError(
                f"parameter group didn't specify a value of required optimization parameter {name}"
            )
    for other in others:
        if layout.named != other.named:
            txt = "with names" if layout.named else "without names"
            raise ValueError(
                "all optimizer param groups should be with/without names. "
                f"cannot add param group {txt} to the optimizer"
            )
    taken = set().union(*(other.live_handles() for other in others))
    if not taken.isdisjoint(layout.handles):
        raise ValueError("some parameters appear in more than one parameter group")
    # After the checks every group gets, as torch's LBFGS checks once all are added.
    if spec.single_group and others:
        raise ValueError(f"{owner} doesn't support per-parameter options (parameter groups)")


def check_group(spec: Spec, group: Mapping[str, Any], where: str, alias: str = "") -> None:
    """Refuses a group whose hyperparameter options the rule table refuses.

    Args:
        spec: the optimizer's table.
        group: the parameter group.
        where: names the group in messages, as ``param_groups[0]``.
        alias: the alias whose own entries in the rule table apply (its state's
            ``Hyperparams.owner``), as :meth:`Spec.rules_of` gives it.

    Raises:
        TypeError: an option that is not a number (or not a tuple of numbers).
        ValueError: a number out of its range, NaN or infinite.
    """
    for key, names in spec.hyperparams.items():
        if key not in group:
            continue
        value = group[key]
        label = _label(where, key)
        if isinstance(names, tuple):
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise TypeError(
                    f"{label} must be a tuple of {len(names)} numbers, got {value!r:.80}."
                )
            values = tuple(value)
            if len(values) != len(names):
                raise ValueError(f"{label} must have {len(names)} values, got {value!r:.80}.")
            items = [
                (n, v, f"{label}[{i}]") for i, (n, v) in enumerate(zip(names, values, strict=True))
            ]
        else:
            items = [(names, value, label)]
        numbers = {}
        for name, v, lab in items:
            if v is not None:  # options that may be unset (Adafactor's eps1, LBFGS's max_eval)
                numbers[name] = _rules.check_number(name, v, lab, owner=alias)
        _rules.check_order(alias, numbers, label)


def check_step(value: Any, where: str) -> int:
    """A loaded ``step`` as an int32 count: a whole number in ``[0, 2**31]``.

    A saturated count (``2**31 - 1``) exports as the float32 ``2**31``; it loads back
    saturated.
    """
    return min(_rules.check_step(value, f"{where}: 'step'", maximum=2**31), 2**31 - 1)


def check_grad_dtype(grad: Any, param: Any, where: str) -> None:
    """Refuses a complex gradient of a real parameter (the cast would drop its imaginary part)."""
    g, p = jnp.result_type(grad), jnp.result_type(param)
    if jnp.issubdtype(g, jnp.complexfloating) and not jnp.issubdtype(p, jnp.complexfloating):
        raise TypeError(
            f"the gradient of {where} is complex ({g}) but the parameter is real ({p}); "
            "taking the real part silently would be a wrong result."
        )


def check_real(leaves: Sequence[Any], layout: GroupLayout, owner: str) -> None:
    """Refuses complex parameters, with torch's words, when the group is added.

    torch raises at the first step; here the group is refused before it is kept.
    """
    for leaf, name, i in zip(leaves, layout.names, layout.indices, strict=True):
        if jnp.iscomplexobj(leaf):
            raise ComplexParamsError(
                f"{owner} does not support complex parameters: parameter {i} ({name!r}) is "
                f"{jnp.result_type(leaf)}. Optimize the real and imaginary parts as separate "
                "real parameters instead."
            )


def check_groups(
    groups: Any,
    layouts: Sequence[GroupLayout],
    defaults: Mapping[str, Any],
    spec: Spec | None = None,
) -> None:
    """Refuses ``param_groups`` edited where only option values may change.

    Groups are added with ``add_param_group`` and never removed, replaced or
    reordered; a group's ``"params"`` lists the indices of its parameters and is
    never edited; no option is deleted; with ``spec``, the torch flags and zero
    terms keep their types (:func:`check_options`). Cheap enough for every step:
    one length, one list comparison and a few key lookups per option and group.
    """
    n = len(layouts)
    if not isinstance(groups, list) or len(groups) != n:
        got = f"{len(groups)} group(s)" if isinstance(groups, list) else type(groups).__name__
        raise ValueError(
            f"param_groups holds {got}, but the optimizer has {n}: add groups with "
            "add_param_group; groups are never removed, replaced or reordered"
        )
    for gi, (group, layout) in enumerate(zip(groups, layouts, strict=True)):
        if not isinstance(group, dict):
            raise TypeError(f"param_groups[{gi}] must be a dict, got {type(group).__name__}")
        params = group.get("params")
        if not _same_indices(params, layout.indices):
            raise ValueError(
                f"param_groups[{gi}]['params'] was changed to {_short(params)}; it lists "
                f"the indices of the group's parameters, {layout.indices}, and is never "
                "edited: read values from opt.params, add parameters with add_param_group"
            )
        for name in defaults:
            if name not in group:
                raise KeyError(
                    f"param_groups[{gi}] has no {name!r} option (deleted?); set it again, e.g. "
                    f"param_groups[{gi}][{name!r}] = {defaults[name]!r}"
                )
        if spec is not None:
            check_options(spec, group, f"param_groups[{gi}]")


def _same_indices(params: Any, indices: list[int]) -> bool:
    try:
        return bool(params == indices)
    except (TypeError, ValueError):  # arrays put back in place of the indices
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
