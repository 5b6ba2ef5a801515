"""``LBFGS``: torch.optim.LBFGS over :func:`optimlab.minimize` (private).

L-BFGS keeps one global state (torch files it under the first parameter) and
its ``step`` needs a closure, so this class keeps the groups, hooks, parameter
records and validation of :class:`~optimlab.optim.Optimizer` and replaces the
per-parameter states and step: the state is one :class:`~optimlab.LBFGSState`,
stepped by the jitted body of :func:`optimlab.minimize` and converted to and
from torch's layout by the pure functions of ``_lbfgs_state``; groups are
loaded through ``_state_dict.check_groups``, as every optimizer's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from .._optimizers._lbfgs import torch_lbfgs
from .._optimizers._lbfgs_iteration import (
    LBFGSState,
    flatten,
    init_state,
    step,
    value_and_grad,
)
from . import _checks, _state_dict
from ._lbfgs_state import al_first, export_entry, import_entry
from ._optimizer import Optimizer
from ._serialization import savable
from ._spec import LR, Spec, same_names

__all__ = ["LBFGS"]


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
            **LR,
            **same_names("max_iter", "max_eval", "tolerance_grad", "tolerance_change"),
        },
        flags=same_names("history_size", "line_search_fn"),
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
        if max_eval is None and isinstance(max_iter, int) and not isinstance(max_iter, bool):
            max_eval = max_iter * 5 // 4  # as torch; another max_iter is refused by the core
        super().__init__(params, self.spec.defaults(locals()))

    # ------------------------------------------------------------------ step
    def _step(self, closure: Any = None) -> Any:
        if not callable(closure):
            raise TypeError(
                "LBFGS.step needs a closure: step(closure), with closure(params) -> loss"
            )
        _checks.check_closure(closure)
        group = self.param_groups[0]
        store = self._store
        store.compile(group, "param_groups[0]")  # validates the current options
        history_size = group["history_size"]
        if self._lstate is None:
            self._lstate = init_state(store.leaves(), history_size)
        elif self._lstate.ro.shape[0] != history_size:
            entry = export_entry(self._lstate, self._al_first)
            self._lstate = import_entry(entry, store.leaves(), history_size, keep_newest=True)
        hdt = store.hdtype
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
            store.leaves(),
            self._layout.frozen(),
            self._lstate,
            h,
            group["line_search_fn"] == "strong_wolfe",
        )
        store.set_leaves(leaves)
        self._lstate = state
        if self._al_first is None:
            # torch creates 'al' at the second iteration ever; it precedes 'd' in the
            # state when that happens in the call that first stores 'd'.
            n_iter = int(state.n_iter)
            if n_iter >= 1:
                self._al_first = n_iter >= 2
        return loss

    @property
    def state(self) -> dict[int, dict[str, Any]]:  # type: ignore[override]
        """``{0: torch's state entry}`` (a snapshot), or ``{}`` before the first step."""
        self._check_groups()
        entry = export_entry(self._lstate, self._al_first)
        return {self.param_groups[0]["params"][0]: entry} if entry else {}

    def state_dict(self) -> dict[str, Any]:
        """The state dict, in torch's layout: ``{'state': {0: {...}}, 'param_groups': [...]}``.

        Returns:
            The state dict (after the state-dict hooks).
        """
        return self._hooked_state_dict(
            lambda: {
                "state": savable(self.state),
                "param_groups": _state_dict.pack_groups(self.param_groups),
            }
        )

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
        self._check_groups()
        return self._hooked_load(state_dict, lambda sd: self._load(sd, strict))

    def _load(self, sd: Mapping[str, Any], strict: bool) -> None:
        if not isinstance(sd, Mapping) or "state" not in sd or "param_groups" not in sd:
            raise ValueError("a state dict is a dict with 'state' and 'param_groups' entries")
        groups = _state_dict.check_groups(
            self._store, self.param_groups, self.defaults, sd["param_groups"], type(self).__name__
        )
        first = sd["param_groups"][0]["params"][0]
        saved = dict(sd["state"])
        entry = saved.pop(first, {})
        if saved:
            raise ValueError(
                f"the state dict has state for parameter id {next(iter(saved))!r}; "
                f"LBFGS keeps its state under the first parameter ({first!r})"
            )
        try:
            state = import_entry(entry, self._store.leaves(), groups[0]["history_size"])
        except ValueError as e:
            raise ValueError(f"loaded LBFGS state: {e}") from None
        self.param_groups = groups
        self._store.rekey(groups)
        self._lstate = state
        self._al_first = al_first(list(entry))
        return None
