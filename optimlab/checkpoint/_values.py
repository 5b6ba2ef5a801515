"""The values a restored state may hold (private; see :func:`optimlab.checkpoint.restore`)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .._core import _rules
from .._core._base import never_negative_fields
from .._core._hyperparams import hyperparam_states
from ._archive import CheckpointError

# Integer leaves that count steps, evaluations or history slots: never negative.
_COUNTERS = ("count", "step", "n_iter", "func_evals", "history_start")


def _is_counter(name: str | None) -> bool:
    return name is not None and any(part in name for part in _COUNTERS)


def check_values(path: Any, state: Any) -> None:
    """Refuses a state (of NumPy leaves) the API would refuse, naming the key path.

    Every hyperparameter is checked with the rule table :func:`~optimlab.set_hyperparams`
    uses, by name; every step counter must be non-negative, and so must every entry
    of a state field declared never negative (a second moment, a step size).
    """
    _check_never_negative(path, state)
    for kp, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = getattr(kp[-1], "name", None) if kp else None
        dtype = getattr(leaf, "dtype", None)
        if not isinstance(dtype, np.dtype) or dtype.kind != "i" or not _is_counter(name):
            continue
        arr = np.asarray(leaf)
        if arr.size and int(arr.min()) < 0:
            raise CheckpointError(
                f"{path}: {jax.tree_util.keystr(kp)} is a step count and must be >= 0, got "
                f"{int(arr.min())} (damaged or hostile file)."
            )
    for prefix, node in hyperparam_states(state):
        hp = node.hyperparams
        packed = np.asarray(hp.packed, dtype=np.float64)
        for i, name in enumerate(hp.names):
            where = f"{path}: hyperparameter {prefix + '/' if prefix else ''}{name}"
            for v in packed[..., i].ravel():
                try:
                    _rules.check(name, float(v), where, owner=hp.owner)
                except ValueError as e:
                    raise CheckpointError(f"{e} (damaged or hostile file).") from None
        values = {name: packed[..., i] for i, name in enumerate(hp.names)}
        try:
            _rules.check_order(
                hp.owner, values, f"{path}: hyperparameters{' of ' + prefix if prefix else ''}"
            )
        except ValueError as e:
            raise CheckpointError(f"{e} (damaged or hostile file).") from None


def _declares(node: Any) -> bool:
    return bool(never_negative_fields(type(node)))


def _check_never_negative(path: Any, state: Any) -> None:
    """Refuses a negative entry in a field its state class declares never negative."""
    nodes = jax.tree_util.tree_flatten_with_path(state, is_leaf=_declares)[0]
    for kp, node in nodes:
        if not _declares(node):
            continue
        for field in sorted(never_negative_fields(type(node))):
            for sub, leaf in jax.tree_util.tree_flatten_with_path(getattr(node, field))[0]:
                arr = np.asarray(leaf)
                if arr.dtype.kind in "iuf" and arr.size and bool((arr < 0).any()):
                    where = jax.tree_util.keystr((*kp, jax.tree_util.GetAttrKey(field), *sub))
                    raise CheckpointError(
                        f"{path}: {where} has negative entries (min {float(arr.min())}), but it "
                        "is a sum or average of squares (or a step size), never negative "
                        "(damaged or hostile file)."
                    )
