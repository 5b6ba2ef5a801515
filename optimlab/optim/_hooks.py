"""``Hooks``: torch.optim's optimizer hooks, registries and removable handles (private)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["Hooks", "RemovableHandle"]

_ids = itertools.count()


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: OrderedDict[int, Callable[..., Any]]):
        self._hooks = hooks
        self.id = next(_ids)

    def remove(self) -> None:
        """Unregisters the hook (again is a no-op)."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _register(
    hooks: OrderedDict[int, Callable[..., Any]], hook: Callable[..., Any], prepend: bool = False
) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


class Hooks:
    """The six hook registries of a torch optimizer and their ``register_*`` methods.

    The optimizer runs them: step hooks around :meth:`step`, state-dict hooks around
    :meth:`state_dict` and :meth:`load_state_dict`.
    """

    def __init__(self) -> None:
        self._step_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        self._step_post_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        self._state_dict_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        self._state_dict_post_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        self._load_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        self._load_post_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Registers ``hook(optimizer, args, kwargs)``, run before each step.

        The hook returns ``None``, or new ``(args, kwargs)`` for the step.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Registers ``hook(optimizer, args, kwargs)``, run after each step.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._step_post_hooks, hook)

    def register_state_dict_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Registers ``hook(optimizer)``, run before :meth:`state_dict` builds the dict.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Registers ``hook(optimizer, state_dict) -> None | state_dict``, run on the result.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Registers ``hook(optimizer, state_dict) -> None | state_dict``, run before loading.

        The hook gets a shallow copy of the dict given to :meth:`load_state_dict`.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._load_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Registers ``hook(optimizer)``, run after a successful load.

        Returns:
            A handle whose ``remove()`` unregisters it.
        """
        return _register(self._load_post_hooks, hook, prepend)

    # The optimizers run their hooks through these.
    def _hooked_step(self, step: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``step(*args, **kwargs)`` between the step hooks (pre-hooks may replace the args)."""
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
        out = step(*args, **kwargs)
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    def _hooked_state_dict(self, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``make()`` between the state-dict hooks (post-hooks may replace the result)."""
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self)
        sd = make()
        for hook in list(self._state_dict_post_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

    def _hooked_load(self, state_dict: Any, load: Callable[[Any], Any]) -> Any:
        """``load(copy of state_dict)`` between the load hooks (pre-hooks may replace it)."""
        sd = dict(state_dict)
        for hook in list(self._load_pre_hooks.values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        out = load(sd)
        for hook in list(self._load_post_hooks.values()):
            hook(self)
        return out
