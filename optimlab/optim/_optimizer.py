"""``Optimizer``: torch.optim's stateful interface as a thin shell over a pure alias (private)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from . import _apply, _checks, _state_dict, _step
from ._hooks import Hooks, RemovableHandle
from ._params import Layout, split_params
from ._spec import Spec, required
from ._store import Store

__all__ = ["Optimizer", "RemovableHandle"]


class Optimizer(Hooks):
    """Base class of the torch.optim-compatible optimizers: state lives in the object.

    Each subclass is a signature and a :class:`~optimlab.optim.Spec` naming the
    optimlab alias behind it. Parameters, gradients and per-parameter states are
    held as JAX arrays; :meth:`step` is one jitted call (parameters and states
    donated) whatever the number of groups and leaves, and group options such as
    ``lr`` are fed to it as arrays, so changing them never recompiles.

    ``params`` is a pytree (one group), an iterable of ``(name, array)`` pairs
    (:func:`named_parameters`), or a list of group dicts whose ``"params"`` are
    either, with per-group option overrides. A list whose dicts have ``"params"`` or
    an option name as a key is a list of groups: every dict must have ``"params"``
    (``KeyError``, as torch's); other dicts of arrays make a tree.

    Differences from torch, all following from JAX arrays being immutable values:

    - ``param_groups[i]["params"]`` holds parameter *indices* (the ids of
      :meth:`state_dict`), not arrays; read values from :attr:`params`. Only the
      groups' option values may be edited: a changed ``"params"``, a deleted
      option, or a group appended, removed or reordered by hand (not with
      :meth:`add_param_group`) is refused by the next step, state read or load,
      naming the group.
    - :attr:`state` is keyed by the same indices and holds JAX arrays that the next
      step donates; :meth:`state_dict` returns NumPy snapshots that later steps do
      not change (torch's shares storage with the optimizer).
    - Arrays read from :attr:`params` before a step are donated by it (deleted):
      read :attr:`params` again after stepping. The arrays given at construction
      are copied, never donated.
    - Gradients come from :meth:`backward`, from :meth:`step` (a closure, or a
      gradient tree), never from the arrays themselves. A gradient of ``None`` skips
      the parameter as torch skips a missing ``.grad``; a loss that does not depend
      on a parameter gives it a zero gradient (JAX cannot tell "unused"), so it is
      stepped.
    - Options are validated for every group (torch validates only the defaults).
      ``foreach`` and ``fused`` must be ``None`` or a bool, ``capturable`` and
      ``differentiable`` a bool, and a term torch skips at zero (``momentum``,
      ``weight_decay``) a number (torch takes ``False``): checked when a group is
      added and when an edited group is stepped.
    - Two different arrays with one name in a group are refused (one would hide the
      other); the same array twice warns, as torch.
    - An optimizer without complex support (``Adafactor``, ``Muon``) refuses complex
      parameters when their group is added, where torch raises at the first step
      (the same message; the error is both torch's ``RuntimeError`` and a
      ``TypeError``).
    - A plain tree that appears in two groups is detected by array identity;
      named parameters by name (or tree position).
    - Changing a flag (``nesterov``, ``amsgrad``, ``maximize``...) or moving a
      term such as ``momentum`` or ``weight_decay`` to or from zero recompiles
      the step once.

    Args:
        params: the parameters, as above.
        defaults: the default options (torch's names), used by groups that do not
            override them.
    """

    spec: ClassVar[Spec]

    def __init__(self, params: Any, defaults: Mapping[str, Any]):
        self.defaults: dict[str, Any] = dict(defaults)
        super().__init__()
        self.param_groups: list[dict[str, Any]] = []
        # One record per parameter and per group, and their compiled forms.
        self._store = Store(self.spec)
        self._grad_fns: dict[Any, Any] = {}
        if not any(v is required for v in self.defaults.values()):
            self._store.compile(self.defaults)  # validates the defaults first, as torch does
        if isinstance(params, Iterator):
            params = list(params)
        _checks.check_params_container(params)
        if isinstance(params, (list, tuple)) and len(params) == 0:
            raise ValueError("optimizer got an empty parameter list")
        self._single_tree = not _checks.is_group_list(params, self.defaults)
        for group in [{"params": params}] if self._single_tree else params:
            self.add_param_group(group)
        if not self._store.params:
            raise ValueError("optimizer got an empty parameter list")

    # ----------------------------------------------------------------- groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a parameter group, with torch's checks and messages.

        The dict is completed with the defaults and kept (as torch keeps it); its
        ``"params"`` entry becomes the list of the new parameters' indices. A group
        added later (to unfreeze a layer) compiles a new step once.

        Args:
            param_group: ``{"params": tree or (name, array) pairs, **option overrides}``.

        Raises:
            TypeError: not a dict, ``None`` or a set of params, a leaf that is not a float array
                (or a complex one, for an optimizer without complex support: also a
                ``RuntimeError``, as torch's), or an option of the wrong type (``foreach``
                and ``fused`` are ``None`` or a bool, ``capturable`` and ``differentiable``
                a bool).
            KeyError: no ``"params"`` entry (torch's error).
            ValueError: a required option missing, names on some groups only, a
                parameter already in another group, or two different parameters with
                one name in the group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        if "params" not in param_group:
            raise KeyError(f"'params': the parameter group has no 'params' entry: {param_group}")
        if param_group["params"] is None:  # an empty tree to JAX; torch iterates it and fails
            raise TypeError(
                "'NoneType' object is not iterable: the parameter group's 'params' is None; "
                "pass an array, a list or a tree of arrays."
            )
        store = self._store
        layout, leaves = split_params(param_group["params"], len(store.params))
        layouts = [g.layout for g in store.groups]
        _checks.check_new_group(
            self.spec, self.defaults, param_group, layout, layouts, type(self).__name__
        )
        if self.spec.real_only:
            _checks.check_real(leaves, layout, type(self).__name__)
        group = {**param_group}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        key = store.compile(group, f"param_groups[{len(self.param_groups)}]")
        # Validated: commit, mutating the given dict as torch does.
        param_group.update(group)
        param_group["params"] = list(layout.indices)
        if layout.named:
            param_group["param_names"] = list(layout.names)
        self.param_groups.append(param_group)
        store.add(key, layout, leaves)
        self._layout = Layout([*layouts, layout], self._single_tree)
        self._grad_fns.clear()

    # ------------------------------------------------------- params and grads
    @property
    def params(self) -> Any:
        """The current parameters, in the structure they were given.

        A tree when one tree was given; the whole tree when every group holds named
        parameters of one tree (leaves in no group are returned as given); the tree
        the names spell when every group holds ``(name, array)`` pairs (``"enc.0.w"``
        is ``params["enc"][0]["w"]``, whether the pairs came from
        :func:`named_parameters` or were written by hand); otherwise a list with one
        tree per group.
        """
        return self._layout.assemble(self._store.leaves(), self._layout.frozen())

    @property
    def grads(self) -> Any:
        """The held gradients, in the structure of :attr:`params` (``None`` where none)."""
        frozen = [None] * len(self._layout.frozen())
        return self._layout.assemble(self._store.grads(), frozen)

    def _value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        vg = self._grad_fns.get(fn)
        if vg is None:
            _checks.check_closure(fn)
            layout = self._layout

            def loss(leaves, frozen, *args):
                return fn(layout.assemble(leaves, frozen), *args)

            vg = jax.jit(jax.value_and_grad(loss))
            if len(self._grad_fns) >= 16:
                self._grad_fns.pop(next(iter(self._grad_fns)))
            self._grad_fns[fn] = vg
        return vg

    def backward(self, loss_fn: Callable[..., Any], *args: Any) -> jax.Array:
        """Evaluates ``loss_fn(opt.params, *args)`` and adds its gradients to the held ones.

        The counterpart of ``loss.backward()``: gradients accumulate until
        :meth:`zero_grad`. ``loss_fn`` is jitted once per function object: define it
        once, outside the loop (a new ``lambda`` at every step compiles at every step).

        Args:
            loss_fn: ``(params, *args) -> scalar loss``.
            *args: further arguments (a batch...).

        Returns:
            The loss.
        """
        params = self._store.params
        vg = self._value_and_grad(loss_fn)
        loss, grads = vg(self._store.leaves(), self._layout.frozen(), *args)
        held = [i for i, p in enumerate(params) if p.grad is not None]
        if held:
            summed = _step.add([params[i].grad for i in held], [grads[i] for i in held])
            for i, g in zip(held, summed, strict=True):
                grads[i] = g
        self._store.set_grads(grads)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops the held gradients (``set_to_none``), or sets the existing ones to zero.

        As in torch, a parameter whose gradient is ``None`` is skipped by :meth:`step`,
        while a zero gradient is applied (momentum and step counts still advance).

        Args:
            set_to_none: drop them instead of zeroing.
        """
        for p in self._store.params:
            p.grad = None if set_to_none or p.grad is None else jnp.zeros_like(p.grad)

    # ------------------------------------------------------------------ step
    def step(self, closure: Any = None) -> Any:
        """Applies one update, running the step hooks around it.

        - ``step()`` applies the held gradients (from :meth:`backward`);
        - ``step(grads)`` applies a gradient tree shaped like :attr:`params`
          (``None`` leaves skip their parameters); the held gradients are untouched;
        - ``step(closure)``, with ``closure(params) -> loss``, evaluates the loss
          and its gradients, holds those gradients (replacing any held ones, as a
          torch closure that calls ``zero_grad`` does), applies them and returns
          the loss.

        Args:
            closure: ``None``, a gradient tree, or a callable of the parameters.

        Returns:
            The closure's loss, or ``None``.
        """
        self._check_groups()
        return self._hooked_step(self._step, () if closure is None else (closure,))

    def _check_groups(self) -> None:
        _checks.check_groups(
            self.param_groups, [g.layout for g in self._store.groups], self.defaults, self.spec
        )

    def _step(self, closure: Any = None) -> Any:
        loss = None
        if closure is None:
            grads = self._store.grads()
        elif callable(closure):
            vg = self._value_and_grad(closure)
            loss, grads = vg(self._store.leaves(), self._layout.frozen())
            self._store.set_grads(grads)
        else:
            grads = self._layout.flatten(closure, len(self._store.params))
        _apply.apply(self._store, self.param_groups, grads)
        return loss

    # ----------------------------------------------------------------- state
    @property
    def state(self) -> dict[int, dict[str, jax.Array]]:
        """Per-parameter state with torch's keys, keyed by parameter index.

        Parameters that never received a gradient (or keep no state) are absent. The
        arrays are the live ones: the next step donates them.
        """
        self._check_groups()
        _apply.unbucket(self._store, self.param_groups)
        return _state_dict.torch_state(self._store)

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{'state': {id: {...}}, 'param_groups': [{..., 'params': [id]}]}``.

        Arrays are NumPy snapshots (``step`` a float32 scalar, as torch's), of the
        subclass :class:`~optimlab.optim.SavableArray`; the rest is numbers,
        strings, tuples, lists and dicts. Files: :func:`~optimlab.optim.save`
        writes torch's format without torch, ``torch.save(opt.state_dict(), f)``
        writes the arrays as tensors; a plain ``torch.load(f)`` reads either.

        Returns:
            The state dict (after the state-dict hooks).
        """
        return self._hooked_state_dict(lambda: _state_dict.pack(self.param_groups, self.state))

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _state_dict.LoadResult | None:
        """Loads a state dict from :meth:`state_dict` or from a real ``torch.optim`` one.

        Everything is validated before anything changes: group count and sizes
        (torch's messages), the optimizer kind (each group's options, each state's
        keys), and every state's shapes. Tensors are converted; states are cast to
        the parameter's dtype (``step`` to the step counter).

        Args:
            state_dict: the state dict.
            strict: ``False`` matches saved parameters to these by name (saved
                ``param_names``), loads the states that fit, leaves the groups'
                options and every other state as they are, and reports the rest.

        Returns:
            ``None``, or with ``strict=False`` a :class:`LoadResult`.

        Raises:
            TypeError: ``state_dict`` is not a dict, ``strict`` not a bool, or a saved
                value of the wrong type; the optimizer is unchanged.
            ValueError: the state dict does not fit; the optimizer is unchanged.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                "state_dict must be a dict with 'state' and 'param_groups' entries (from "
                f"state_dict()), got {type(state_dict).__name__}"
            )
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__} {strict!r:.80}")
        self._check_groups()
        _apply.unbucket(self._store, self.param_groups)
        return self._hooked_load(state_dict, lambda sd: self._load(sd, strict))

    def _load(self, sd: Mapping[str, Any], strict: bool) -> _state_dict.LoadResult | None:
        groups, states, report = _state_dict.plan_load(
            self._store, self.param_groups, self.defaults, sd, strict, type(self).__name__
        )
        if groups is not None:
            self.param_groups = groups
        self._store.load(groups, states)
        return report

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(
                f"    {k}: {v}" for k, v in sorted(g.items()) if k not in ("params", "param_names")
            )
        lines.append(")")
        return "\n".join(lines)
