"""torch.optim.LBFGS's state entry to and from an :class:`~optimlab.LBFGSState` (private).

L-BFGS keeps one global state, which torch files under the first parameter as
one dict of tensors, lists and numbers: :func:`export_entry` and
:func:`import_entry` convert between the two, and :func:`al_first` reads
where torch put its scratch entry ``al``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core._validate import check
from .._optimizers._lbfgs_iteration import LBFGSState, init_state
from ._state_dict import to_numpy

__all__ = ["KEYS", "al_first", "export_entry", "import_entry"]

#: torch's per-state keys, in the order torch creates them (``al`` moves, see below).
KEYS = (
    "func_evals",
    "n_iter",
    "d",
    "t",
    "old_dirs",
    "old_stps",
    "ro",
    "H_diag",
    "prev_flat_grad",
    "prev_loss",
    "al",
)


def _as_float(value: Any) -> float:
    return float(to_numpy(value))


def al_first(keys: list[str]) -> bool | None:
    """Whether ``al`` precedes ``d`` in a loaded entry's keys (``None``: no ``d`` yet)."""
    if "d" not in keys:
        return None
    return "al" in keys and keys.index("al") < keys.index("d")


def export_entry(s: LBFGSState | None, al_first: bool | None) -> dict[str, Any]:
    """torch's state entry of ``s``: NumPy snapshots and Python numbers (``{}`` for ``None``).

    ``al_first``: whether torch's ``al`` precedes ``d`` in the entry (see
    :func:`al_first`).
    """
    if s is None:
        return {}
    n_iter = int(s.n_iter)
    out: dict[str, Any] = {"func_evals": int(s.func_evals), "n_iter": n_iter}
    if n_iter < 1:
        return out
    m = s.ro.shape[0]
    idx = (int(s.history_start) + np.arange(int(s.history_count))) % m
    dirs, stps, ro = (np.asarray(a)[idx] for a in (s.old_dirs, s.old_stps, s.ro))
    out.update(
        d=np.array(s.d),
        t=float(s.t),
        old_dirs=list(dirs),
        old_stps=list(stps),
        ro=[np.array(r) for r in ro],
        H_diag=np.array(s.H_diag),
        prev_flat_grad=np.array(s.prev_flat_grad),
        prev_loss=float(s.prev_loss),
    )
    if n_iter >= 2:
        # The last iteration's first loop, on its gradient and history.
        q = -out["prev_flat_grad"]
        al: list[Any] = [None] * m
        for i in range(len(idx) - 1, -1, -1):
            al[i] = np.array(np.dot(stps[i], q) * ro[i])
            q = q - al[i] * dirs[i]
        out["al"] = al
        if al_first:
            out = {k: out[k] for k in ("func_evals", "n_iter", "al", *KEYS[2:-1])}
    return out


def import_entry(
    entry: Mapping[str, Any],
    leaves: list[Any],
    history_size: int,
    *,
    keep_newest: bool = False,
) -> LBFGSState | None:
    """An :class:`LBFGSState` over ``leaves`` from torch's state entry.

    ``None`` for an empty entry. ``keep_newest``: keep the newest pairs of a longer
    history (else refused).

    Raises:
        ValueError: the entry does not fit.
    """
    if not entry:
        return None
    unknown = [k for k in entry if k not in KEYS]
    check(
        not unknown,
        f"{unknown[0]!r} is not a state key of LBFGS (its keys are "
        f"{list(KEYS)}): is the state dict from another optimizer?"
        if unknown
        else "",
    )
    fresh = init_state(leaves, history_size)
    n, dt = fresh.d.shape[0], fresh.d.dtype
    for key in ("func_evals", "n_iter"):
        check(key in entry, f"the LBFGS state has no {key!r}")
    s = fresh._replace(
        func_evals=jnp.asarray(int(_as_float(entry["func_evals"])), jnp.int32),
        n_iter=jnp.asarray(int(_as_float(entry["n_iter"])), jnp.int32),
    )
    rest = [k for k in KEYS[2:-1] if k not in entry]
    if len(rest) == len(KEYS) - 3:
        return s
    check(not rest, f"the LBFGS state has no {rest[0]!r}" if rest else "")

    def vector(key: str) -> jax.Array:
        arr = to_numpy(entry[key])
        check(
            arr.shape == (n,),
            f"the LBFGS state's {key!r} has shape {arr.shape}, but "
            f"the parameters flatten to ({n},)",
        )
        return jnp.asarray(arr).astype(dt)

    pairs = [list(entry[k]) for k in ("old_dirs", "old_stps", "ro")]
    check(
        len(pairs[0]) == len(pairs[1]) == len(pairs[2]),
        "the LBFGS state's old_dirs, old_stps and ro differ in length",
    )
    count = len(pairs[0])
    if count > history_size:
        check(
            keep_newest,
            f"the LBFGS state holds {count} curvature pairs, more than history_size={history_size}",
        )
        pairs = [p[count - history_size :] for p in pairs]
        count = history_size
    dirs, stps = fresh.old_dirs, fresh.old_stps
    ro = np.zeros(history_size, dt)
    for i in range(count):
        for arr, key in ((pairs[0][i], "old_dirs"), (pairs[1][i], "old_stps")):
            check(
                to_numpy(arr).shape == (n,),
                f"an entry of the LBFGS state's {key!r} does not have shape ({n},)",
            )
        dirs = dirs.at[i].set(jnp.asarray(to_numpy(pairs[0][i])).astype(dt))
        stps = stps.at[i].set(jnp.asarray(to_numpy(pairs[1][i])).astype(dt))
        ro[i] = _as_float(pairs[2][i])
    scalar = lambda key: jnp.asarray(_as_float(entry[key])).astype(dt)
    return s._replace(
        d=vector("d"),
        t=scalar("t"),
        old_dirs=dirs,
        old_stps=stps,
        ro=jnp.asarray(ro),
        history_start=jnp.zeros((), jnp.int32),
        history_count=jnp.asarray(count, jnp.int32),
        H_diag=scalar("H_diag"),
        prev_flat_grad=vector("prev_flat_grad"),
        prev_loss=scalar("prev_loss"),
    )
