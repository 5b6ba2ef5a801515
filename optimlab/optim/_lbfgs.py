"""``LBFGS``: torch.optim.LBFGS over :func:`optimlab.minimize` (private).

L-BFGS keeps one global state (torch files it under the first parameter) and
its ``step`` needs a closure, so this class keeps the groups, hooks and
validation of :class:`~optimlab.optim.Optimizer` and replaces the per-parameter
machinery: the state is one :class:`~optimlab.LBFGSState`, converted to and
from torch's layout by :meth:`LBFGS.state_dict` and :meth:`LBFGS.load_state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core._validate import check
from .._optimizers._lbfgs import torch_lbfgs
from .._optimizers._lbfgs_iteration import (
    LBFGSState,
    flatten,
    init_state,
    step,
    value_and_grad,
)
from . import _state_dict
from ._optimizer import Optimizer
from ._serialization import savable
from ._spec import Spec

__all__ = ["LBFGS"]

#: torch's per-state keys, in the order torch creates them (``al`` moves, see below).
_KEYS = (
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


def _run(closure, layout, leaves, frozen, state, h, line_search):
    # optimlab.minimize's body, with the frozen leaves of the user's tree passed as
    # arguments (not baked into the program) and the closure seeing the user's tree.
    x, unflatten = flatten(leaves)
    vg = value_and_grad(lambda ls: closure(layout.assemble(ls, frozen)), unflatten, x.dtype)
    loss, grad = vg(x)
    c = step(vg, x, loss, grad, state, h, line_search)
    return unflatten(c.x), c.state, loss


# The state is not donated: XLA may return one buffer for two of its equal fields.
_run_jit = jax.jit(_run, static_argnums=(0, 1, 6), donate_argnums=2)


def _as_float(value: Any) -> float:
    return float(_state_dict.to_numpy(value))


class LBFGS(Optimizer):
    """``torch.optim.LBFGS`` over :func:`optimlab.minimize`, with torch's iterates.

    Same signature, defaults and stopping rules as torch. ``step(closure)`` runs what one
    torch ``step(closure)`` does (up to
    ``max_iter`` iterations, each re-evaluating the loss, with the optional
    strong-Wolfe line search) as one jitted call, and returns the loss at the
    parameters it started from, as torch does. ``closure(params) -> loss`` is a
    pure JAX function of the parameters (in the structure of :attr:`params`);
    gradients are taken by JAX. It is compiled once per closure object: define it
    once, outside the loop. Changing ``lr``, ``max_iter``, ``max_eval`` or the
    tolerances never recompiles; ``history_size`` and ``line_search_fn`` do, once.

    The state dict has torch's layout: ``{'state': {0: {...}}, ...}``, filed under
    the first parameter's id, with ``func_evals``, ``n_iter`` (ints), ``d``, ``t``
    (a float), ``old_dirs``, ``old_stps``, ``ro`` (lists, oldest pair first),
    ``H_diag``, ``prev_flat_grad``, ``prev_loss`` (a float) and ``al``, in torch's
    order. torch's state loads here, and ours into torch. Differences from torch:

    - the history is stored as a preallocated ring buffer of ``history_size``
      pairs (torch's lists grow up to that), so memory is that of a full history
      from the first step;
    - ``al`` is scratch space of the two-loop recursion (torch rewrites it before
      reading it): it is recomputed from the history for the state dict, ignored
      when loading;
    - ``H_diag`` is always an array (torch's is the int ``1`` until the first
      curvature pair is accepted); :attr:`state` is a snapshot like
      :meth:`state_dict`'s entries, not live arrays;
    - ``step()`` without a closure, or with a gradient tree, raises a
      ``TypeError``; :attr:`grads` is not updated by ``step``;
    - after a change of ``history_size``, the newest pairs that fit are kept
      (torch keeps growing its lists past a smaller size);
    - ``load_state_dict(strict=False)`` is refused: the state is global, not
      per parameter.

    Args:
        params: a pytree, ``(name, array)`` pairs, or a list with one group dict.
        lr: learning rate (``learning_rate``).
        max_iter: the most iterations per ``step``.
        max_eval: the most loss evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad: a step ends once the largest gradient entry is at most this.
        tolerance_change: a step ends once a parameter or loss change is below this.
        history_size: the number of curvature pairs kept.
        line_search_fn: ``None`` or ``"strong_wolfe"``.

    Raises:
        ValueError: more than one parameter group (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> from optimlab import optim
        >>> def rosenbrock(p):
        ...     return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2
        >>> opt = optim.LBFGS({"x": jnp.array(-1.0), "y": jnp.array(1.5)},
        ...                   line_search_fn="strong_wolfe")
        >>> for _ in range(5):
        ...     loss = opt.step(rosenbrock)
        >>> round(float(opt.params["x"]), 4), round(float(opt.params["y"]), 4)
        (1.0, 1.0)
        >>> sorted(opt.state_dict()["state"][0])[:3]
        ['H_diag', 'al', 'd']
    """

    spec = Spec(
        alias=torch_lbfgs,
        hyperparams={
            "lr": "learning_rate",
            "max_iter": "max_iter",
            "max_eval": "max_eval",
            "tolerance_grad": "tolerance_grad",
            "tolerance_change": "tolerance_change",
        },
        flags={"history_size": "history_size", "line_search_fn": "line_search_fn"},
        state={},
        single_group=True,
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        self._lstate: LBFGSState | None = None
        self._al_first: bool | None = None
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(
            params,
            dict(
                lr=lr,
                max_iter=max_iter,
                max_eval=max_eval,
                tolerance_grad=tolerance_grad,
                tolerance_change=tolerance_change,
                history_size=history_size,
                line_search_fn=line_search_fn,
            ),
        )

    # ------------------------------------------------------------------ step
    def _step(self, closure: Any = None) -> Any:
        if not callable(closure):
            raise TypeError(
                "LBFGS.step needs a closure: step(closure), with closure(params) -> loss"
            )
        group = self.param_groups[0]
        self._tx_for(group)  # validates the current options
        history_size = group["history_size"]
        if self._lstate is None:
            self._lstate = init_state(self._leaves, history_size)
        elif self._lstate.ro.shape[0] != history_size:
            self._lstate = self._import(self._export(), history_size, keep_newest=True)
        hdt = self._hdtype
        max_eval = group["max_eval"]
        max_eval = group["max_iter"] * 5 // 4 if max_eval is None else max_eval
        h = {
            "learning_rate": np.asarray(float(group["lr"]), hdt),
            "tolerance_grad": np.asarray(float(group["tolerance_grad"]), hdt),
            "tolerance_change": np.asarray(float(group["tolerance_change"]), hdt),
            "max_iter": np.asarray(group["max_iter"], np.int32),
            "max_eval": np.asarray(max_eval, np.int32),
        }
        leaves, state, loss = _run_jit(
            closure,
            self._layout,
            self._leaves,
            self._layout.frozen(),
            self._lstate,
            h,
            group["line_search_fn"] == "strong_wolfe",
        )
        self._leaves = list(leaves)
        self._lstate = state
        if self._al_first is None:
            # torch creates 'al' at the second iteration ever; it precedes 'd' in the
            # state when that happens in the call that first stores 'd'.
            n_iter = int(state.n_iter)
            if n_iter >= 1:
                self._al_first = n_iter >= 2
        return loss

    # ----------------------------------------------------------------- state
    def _export(self) -> dict[str, Any]:
        """The torch state entry: NumPy snapshots and Python numbers (``{}`` before a step)."""
        s = self._lstate
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
            if self._al_first:
                out = {k: out[k] for k in ("func_evals", "n_iter", "al", *_KEYS[2:-1])}
        return out

    def _import(
        self, entry: Mapping[str, Any], history_size: int, *, keep_newest: bool = False
    ) -> LBFGSState | None:
        """An :class:`LBFGSState` from torch's state entry (``ValueError`` if it does not fit)."""
        if not entry:
            return None
        unknown = [k for k in entry if k not in _KEYS]
        check(
            not unknown,
            f"{unknown[0]!r} is not a state key of LBFGS (its keys are "
            f"{list(_KEYS)}): is the state dict from another optimizer?"
            if unknown
            else "",
        )
        fresh = init_state(self._leaves, history_size)
        n, dt = fresh.d.shape[0], fresh.d.dtype
        for key in ("func_evals", "n_iter"):
            check(key in entry, f"the LBFGS state has no {key!r}")
        s = fresh._replace(
            func_evals=jnp.asarray(int(_as_float(entry["func_evals"])), jnp.int32),
            n_iter=jnp.asarray(int(_as_float(entry["n_iter"])), jnp.int32),
        )
        rest = [k for k in _KEYS[2:-1] if k not in entry]
        if len(rest) == len(_KEYS) - 3:
            return s
        check(not rest, f"the LBFGS state has no {rest[0]!r}" if rest else "")

        def vector(key: str) -> jax.Array:
            arr = _state_dict.to_numpy(entry[key])
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
                f"the LBFGS state holds {count} curvature pairs, more than "
                f"history_size={history_size}",
            )
            pairs = [p[count - history_size :] for p in pairs]
            count = history_size
        dirs, stps = fresh.old_dirs, fresh.old_stps
        ro = np.zeros(history_size, dt)
        for i in range(count):
            for arr, key in ((pairs[0][i], "old_dirs"), (pairs[1][i], "old_stps")):
                check(
                    _state_dict.to_numpy(arr).shape == (n,),
                    f"an entry of the LBFGS state's {key!r} does not have shape ({n},)",
                )
            dirs = dirs.at[i].set(jnp.asarray(_state_dict.to_numpy(pairs[0][i])).astype(dt))
            stps = stps.at[i].set(jnp.asarray(_state_dict.to_numpy(pairs[1][i])).astype(dt))
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

    @property
    def state(self) -> dict[int, dict[str, Any]]:  # type: ignore[override]
        """``{0: torch's state entry}`` (a snapshot), or ``{}`` before the first step."""
        entry = self._export()
        return {self.param_groups[0]["params"][0]: entry} if entry else {}

    def state_dict(self) -> dict[str, Any]:
        """The state dict, in torch's layout: ``{'state': {0: {...}}, 'param_groups': [...]}``.

        Returns:
            The state dict (after the state-dict hooks).
        """
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self)
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = list(g["params"])
            groups.append(packed)
        sd: dict[str, Any] = {"state": savable(self.state), "param_groups": groups}
        for hook in list(self._state_dict_post_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _state_dict.LoadResult | None:
        """Loads a state dict from :meth:`state_dict` or from a real ``torch.optim.LBFGS``.

        Everything is validated before anything changes (torch's messages for the
        groups). ``al`` is ignored (see the class docstring).

        Args:
            state_dict: the state dict.
            strict: must be ``True``.

        Returns:
            ``None``.

        Raises:
            ValueError: the state dict does not fit, or ``strict=False``; the optimizer
                is unchanged.
        """
        if not strict:
            raise ValueError(
                "LBFGS keeps one global state, not one per parameter: "
                "load_state_dict(strict=False) is not supported"
            )
        sd = dict(state_dict)
        for hook in list(self._load_pre_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        if not isinstance(sd, Mapping) or "state" not in sd or "param_groups" not in sd:
            raise ValueError("a state dict is a dict with 'state' and 'param_groups' entries")
        groups = _state_dict._check_groups(self, sd["param_groups"])
        first = sd["param_groups"][0]["params"][0]
        saved = dict(sd["state"])
        entry = saved.pop(first, {})
        if saved:
            raise ValueError(
                f"the state dict has state for parameter id {next(iter(saved))!r}; "
                f"LBFGS keeps its state under the first parameter ({first!r})"
            )
        try:
            state = self._import(entry, groups[0]["history_size"])
        except ValueError as e:
            raise ValueError(f"loaded LBFGS state: {e}") from None
        self.param_groups = groups
        self._group_keys = [self.spec.key(g) for g in groups]
        self._lstate = state
        keys = list(entry)
        self._al_first = (
            keys.index("al") < keys.index("d")
            if "al" in keys and "d" in keys
            else False
            if "d" in keys
            else None
        )
        for hook in list(self._load_post_hooks.values()):
            hook(self)
        return None
