"""``Optimizer``: torch.optim's stateful interface as a thin shell over a pure alias (private)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from .._core._hyperparams import hyperparam_dtype
from . import _apply, _checks, _state_dict, _step
from ._hooks import Hooks, RemovableHandle
from ._params import GroupLayout, Layout, split_params
from ._spec import Spec, required

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
    either, with per-group option overrides.

    Differences from torch, all following from JAX arrays being immutable values:

    - ``param_groups[i]["params"]`` holds parameter *indices* (the ids of
      :meth:`state_dict`), not arrays; read values from :attr:`params`.
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
        self._leaves: list[jax.Array] = []
        self._grads: list[jax.Array | None] = []
        # Per-parameter states are kept flat (their arrays, and their tree structures
        # apart) and without their step counts, which states with equal counts share.
        self._states: list[Any] = []
        self._treedefs: list[Any] = []
        self._counts: list[Any] = []
        self._fed: dict[int, tuple[Any, Any]] = {}
        # Groups stepped as one bucketed state (their parameters' entries above are None).
        self._bucket: dict[int, tuple[Any, Any]] = {}
        self._bucketable: dict[Any, bool] = {}
        self._dormant: list[dict[str, jax.Array]] = []
        self._names: list[str] = []
        self._group_of: list[int] = []
        self._group_keys: list[Any] = []
        self._layouts: list[GroupLayout] = []
        self._txs: dict[Any, Any] = {}
        self._grad_fns: dict[Any, Any] = {}
        self._hdtype = hyperparam_dtype()
        self._counts_shared = True
        if not any(v is required for v in self.defaults.values()):
            self._tx_for(self.defaults)  # validates the defaults first, as torch does
        if isinstance(params, Iterator):
            params = list(params)
        if isinstance(params, (list, tuple)) and len(params) == 0:
            raise ValueError("optimizer got an empty parameter list")
        self._single_tree = not (
            isinstance(params, (list, tuple))
            and isinstance(params[0], dict)
            and "params" in params[0]
        )
        for group in [{"params": params}] if self._single_tree else params:
            self.add_param_group(group)
        if not self._leaves:
            raise ValueError("optimizer got an empty parameter list")

    # ----------------------------------------------------------------- groups
    def _tx_for(self, group: Mapping[str, Any]) -> Any:
        key, compiled = self.spec.build(group)
        self._txs[key] = compiled
        return key

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a parameter group, with torch's checks and messages.

        The dict is completed with the defaults and kept (as torch keeps it); its
        ``"params"`` entry becomes the list of the new parameters' indices. A group
        added later (to unfreeze a layer) compiles a new step once.

        Args:
            param_group: ``{"params": tree or (name, array) pairs, **option overrides}``.

        Raises:
            TypeError: not a dict, a set of params, or a leaf that is not a float array.
            ValueError: a required option missing, names on some groups only, or a
                parameter already in another group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        layout, leaves = split_params(param_group["params"], len(self._leaves))
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required "
                    f"optimization parameter {name}"
                )
        for other in self._layouts:
            if layout.named != other.named:
                txt = "with names" if layout.named else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {txt} to the optimizer"
                )
        taken = set().union(*(other.live_handles() for other in self._layouts))
        if not taken.isdisjoint(layout.handles):
            raise ValueError("some parameters appear in more than one parameter group")
        # After the checks every group gets, as torch's LBFGS checks once all are added.
        if self.spec.single_group and self.param_groups:
            raise ValueError(
                f"{type(self).__name__} doesn't support per-parameter options (parameter groups)"
            )
        group = {**param_group}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        key = self._tx_for(group)
        # Validated: commit, mutating the given dict as torch does.
        param_group.update(group)
        param_group["params"] = list(layout.indices)
        if layout.named:
            param_group["param_names"] = list(layout.names)
        gi = len(self.param_groups)
        self.param_groups.append(param_group)
        self._layouts.append(layout)
        self._group_keys.append(key)
        self._leaves.extend(jnp.array(x, copy=True) for x in leaves)
        self._grads.extend([None] * len(leaves))
        self._states.extend([None] * len(leaves))
        self._counts.extend([None] * len(leaves))
        self._treedefs.extend([None] * len(leaves))
        self._dormant.extend({} for _ in leaves)
        self._names.extend(layout.names)
        self._group_of.extend([gi] * len(leaves))
        self._layout = Layout(self._layouts, self._single_tree)
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
        return self._layout.assemble(self._leaves, self._layout.frozen())

    @property
    def grads(self) -> Any:
        """The held gradients, in the structure of :attr:`params` (``None`` where none)."""
        frozen = [None] * len(self._layout.frozen())
        return self._layout.assemble(self._grads, frozen)

    def _value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        vg = self._grad_fns.get(fn)
        if vg is None:
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
        loss, grads = self._value_and_grad(loss_fn)(self._leaves, self._layout.frozen(), *args)
        held = [i for i, g in enumerate(self._grads) if g is not None]
        if held:
            summed = _step.add([self._grads[i] for i in held], [grads[i] for i in held])
            for i, g in zip(held, summed, strict=True):
                grads[i] = g
        self._grads = list(grads)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops the held gradients (``set_to_none``), or sets the existing ones to zero.

        As in torch, a parameter whose gradient is ``None`` is skipped by :meth:`step`,
        while a zero gradient is applied (momentum and step counts still advance).

        Args:
            set_to_none: drop them instead of zeroing.
        """
        if set_to_none:
            self._grads = [None] * len(self._leaves)
        else:
            self._grads = [None if g is None else jnp.zeros_like(g) for g in self._grads]

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
        args: tuple[Any, ...] = () if closure is None else (closure,)
        kwargs: dict[str, Any] = {}
        for hook in list(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{hook} must return None or a tuple of "
                        f"(new_args, new_kwargs), but got {result}."
                    )
                args, kwargs = result
        out = self._step(*args, **kwargs)
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    def _step(self, closure: Any = None) -> Any:
        loss = None
        if closure is None:
            grads = self._grads
        elif callable(closure):
            loss, grads = self._value_and_grad(closure)(self._leaves, self._layout.frozen())
            self._grads = grads = list(grads)
        else:
            grads = self._layout.flatten(closure, len(self._leaves))
        _apply.apply(self, grads)
        return loss

    def _init_state(self, i: int, group: Mapping[str, Any]) -> Any:
        # Built from the group's current values: some states start from an option
        # (Adagrad's initial_accumulator_value, Rprop's step size = lr).
        return _step.init_states(self.spec.alias(**self.spec.kwargs(group)), [self._leaves[i]])[0]

    def _sync_groups(self) -> list[Any]:
        """Rebuilds the groups whose flags changed, carrying their states across."""
        keys = []
        for gi, group in enumerate(self.param_groups):
            old = self._group_keys[gi]
            key = self.spec.key(group)
            if key != old or key not in self._txs:
                # Only a new compiled form validates (builds the alias): numeric options
                # are fed as data and, as in torch, not re-validated at every step.
                key = self._tx_for(group)
            if key != old:
                _apply.unbucket(self, gi)
                self._counts_shared = False
                for i in group["params"]:
                    if self._states[i] is not None:
                        entry = {
                            **self._dormant[i],
                            **_state_dict.export_state(self.spec, self._full_state(i)),
                        }
                        state, self._dormant[i] = _state_dict.import_state(
                            self.spec,
                            self._init_state(i, group),
                            entry,
                            f"parameter {i}",
                            lenient=True,
                        )
                        self._set_state(i, state)
                self._group_keys[gi] = key
            keys.append(key)
        return keys

    def _share_counts(self) -> None:
        """Makes states with equal step counts share one count array (after a load)."""
        shared: dict[int, jax.Array] = {}
        for i, c in enumerate(self._counts):
            if c is not None:
                self._counts[i] = shared.setdefault(int(c), c)
        self._counts_shared = True

    def _set_state(self, i: int, state: Any) -> None:
        """Stores a parameter's full state (or ``None``): flat, its count apart."""
        if state is None:
            self._states[i] = self._treedefs[i] = self._counts[i] = None
            return
        self._states[i], self._treedefs[i] = jax.tree.flatten(state._replace(count=None))
        self._counts[i] = state.count

    def _full_state(self, i: int) -> Any:
        """A parameter's full state (count included), or ``None``."""
        s = self._states[i]
        if s is None:
            return None
        return jax.tree.unflatten(self._treedefs[i], s)._replace(count=self._counts[i])

    def _feed(self, gi: int, group: Mapping[str, Any], key: Any) -> dict[str, jax.Array]:
        """A group's hyperparameter values as device arrays, transferred when they change."""
        try:
            values = self.spec.feed(group, self._txs[key][1], self._hdtype)
        except (TypeError, ValueError):
            _checks.check_group(self.spec, group, f"param_groups[{gi}]")
            raise
        sig = tuple((n, float(v)) for n, v in values.items())
        hit = self._fed.get(gi)
        if hit is None or hit[0] != sig:
            # A changed value is checked once (NaN never equals itself: always checked).
            _checks.check_group(self.spec, group, f"param_groups[{gi}]")
            hit = self._fed[gi] = (sig, jax.device_put(values))
        return hit[1]

    # ----------------------------------------------------------------- state
    @property
    def state(self) -> dict[int, dict[str, jax.Array]]:
        """Per-parameter state with torch's keys, keyed by parameter index.

        Parameters that never received a gradient (or keep no state) are absent. The
        arrays are the live ones: the next step donates them.
        """
        _apply.unbucket(self)
        out = {}
        for i, s in enumerate(self._states):
            entry = dict(self._dormant[i])
            if s is not None:
                entry.update(_state_dict.export_state(self.spec, self._full_state(i)))
            if entry:
                out[i] = {k: entry[k] for k in self.spec.state if k in entry}
        return out

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
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self)
        sd = _state_dict.pack(self)
        for hook in list(self._state_dict_post_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

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
            ValueError: the state dict does not fit; the optimizer is unchanged.
        """
        _apply.unbucket(self)
        sd = dict(state_dict)
        for hook in list(self._load_pre_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        groups, states, report = _state_dict.plan_load(self, sd, strict)
        if groups is not None:
            self.param_groups = groups
            self._states = [None] * len(self._leaves)
            self._counts = [None] * len(self._leaves)
            self._treedefs = [None] * len(self._leaves)
            self._dormant = [{} for _ in self._leaves]
            self._group_keys = [self.spec.key(g) for g in groups]
        for i, (s, dormant) in states.items():
            self._set_state(i, s)
            self._dormant[i] = dormant
        self._counts_shared = False
        for hook in list(self._load_post_hooks.values()):
            hook(self)
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
