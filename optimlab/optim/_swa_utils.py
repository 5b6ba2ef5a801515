"""torch's ``swa_utils`` for parameter pytrees: AveragedModel, SWALR, update_bn (private)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import schedules
from .._core import _tree, _validate
from .._core._update import check_structure
from ._lr_scheduler import LRScheduler, check_optimizer, per_group
from ._optimizer import Optimizer

__all__ = [
    "AveragedModel",
    "SWALR",
    "update_bn",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]


def _check_real(fn: str, name: str, value: Any) -> None:
    """Raises ``TypeError`` naming ``fn`` and ``name`` unless ``value`` is a real number."""
    dtype = getattr(value, "dtype", None)
    if (
        isinstance(value, (bool, np.bool_))
        or np.ndim(value) != 0
        or not (isinstance(value, (int, float)) or np.dtype(dtype or object).kind in "iuf")
    ):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}.")


def _check_decay(decay: float, fn: str = "get_ema_avg_fn") -> None:
    _check_real(fn, "decay", decay)
    if not 0.0 <= decay <= 1.0:  # NaN too
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def _inexact(x: jax.Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[..., list[jax.Array]]:
    r"""Torch's ``get_ema_multi_avg_fn``: the EMA of a list of leaves, as a new list.

    :math:`\bar p \leftarrow \bar p + (1 - \delta)(p - \bar p)` (torch's ``lerp``,
    the numerics of :func:`optimlab.ema_params`); integer leaves become
    :math:`\delta \bar p + (1 - \delta) p`, as torch. Differs from torch: JAX arrays
    are immutable, so the function returns the new leaves instead of updating in place.

    Args:
        decay: :math:`\delta \in [0, 1]`.

    Returns:
        ``fn(averaged_leaves, current_leaves, n_averaged) -> new averaged leaves``.

    Examples:
        >>> from optimlab.optim import swa_utils
        >>> fn = swa_utils.get_ema_multi_avg_fn(0.9)
        >>> fn([jnp.array([1.0])], [jnp.array([2.0])], 1)
        [Array([1.1], dtype=float32)]
    """
    _check_decay(decay, "get_ema_multi_avg_fn")

    def ema_update(
        averaged: list[jax.Array], current: list[jax.Array], n_averaged: Any
    ) -> list[jax.Array]:
        del n_averaged
        return [
            _tree.lerp(a, c, 1 - decay)
            if _inexact(a)
            else (a * decay + c * (1 - decay)).astype(a.dtype)
            for a, c in zip(averaged, current, strict=True)
        ]

    return ema_update


def get_swa_multi_avg_fn() -> Callable[..., list[jax.Array]]:
    r"""Torch's ``get_swa_multi_avg_fn``: the running mean of a list of leaves, as a new list.

    :math:`\bar p \leftarrow \bar p + (p - \bar p) / (n + 1)` with torch's ``lerp``
    and its float32 weight (the numerics of :func:`optimlab.swa_params`); integer
    leaves hold the latest value. Returns the new leaves (see
    :func:`get_ema_multi_avg_fn`).

    Returns:
        ``fn(averaged_leaves, current_leaves, n_averaged) -> new averaged leaves``.

    Examples:
        >>> from optimlab.optim import swa_utils
        >>> swa_utils.get_swa_multi_avg_fn()([jnp.array([1.0])], [jnp.array([4.0])], 2)
        [Array([2.], dtype=float32)]
    """

    def swa_update(
        averaged: list[jax.Array], current: list[jax.Array], n_averaged: Any
    ) -> list[jax.Array]:
        # torch computes 1 / (n_averaged + 1) on a tensor of its default dtype, float32.
        weight = 1 / (jnp.asarray(n_averaged).astype(jnp.float32) + 1)
        return [
            _tree.lerp(a, c, weight) if _inexact(a) else c
            for a, c in zip(averaged, current, strict=True)
        ]

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[..., jax.Array]:
    r"""Torch's ``get_ema_avg_fn``: :math:`\delta \bar p + (1 - \delta) p` for one leaf.

    Args:
        decay: :math:`\delta \in [0, 1]`.

    Returns:
        ``fn(averaged, current, n_averaged) -> new averaged``.

    Examples:
        >>> from optimlab.optim import swa_utils
        >>> swa_utils.get_ema_avg_fn(0.5)(jnp.ones(1), jnp.full(1, 3.0), 1)
        Array([2.], dtype=float32)
    """
    _check_decay(decay)

    def ema_update(averaged: jax.Array, current: jax.Array, n_averaged: Any) -> jax.Array:
        del n_averaged
        return decay * averaged + (1 - decay) * current

    return ema_update


def get_swa_avg_fn() -> Callable[..., jax.Array]:
    r"""Torch's ``get_swa_avg_fn``: :math:`\bar p + (p - \bar p) / (n + 1)` for one leaf.

    Returns:
        ``fn(averaged, current, n_averaged) -> new averaged``.

    Examples:
        >>> from optimlab.optim import swa_utils
        >>> swa_utils.get_swa_avg_fn()(jnp.ones(1), jnp.full(1, 4.0), 2)
        Array([2.], dtype=float32)
    """

    def swa_update(averaged: jax.Array, current: jax.Array, n_averaged: Any) -> jax.Array:
        n = jnp.asarray(n_averaged).astype(averaged.dtype)
        return averaged + (current - averaged) / (n + 1)

    return swa_update


def _check_tree(what: str, given: tuple, held: tuple, fix: str, *, dtypes: bool = True) -> None:
    """Structure, shapes and dtypes of ``given`` against ``held``: ``(tree, name, leaf's name)``."""
    check_structure(what, given[0], held[0], held[1], fix, subject=given[1])
    _check_like(what, given[0], held[0], given[2], held[2], dtypes=dtypes)


def _check_like(
    what: str, tree: Any, reference: Any, subject: str, against: str, *, dtypes: bool = True
) -> None:
    """Raises where a leaf of ``tree`` has another shape or dtype than ``reference``'s.

    ``TypeError`` for a complex leaf in place of a real one (its imaginary part would be
    dropped), ``ValueError`` otherwise, naming the key path and both shapes or dtypes.
    """
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    for (path, x), r in zip(flat, jax.tree.leaves(reference), strict=True):
        where = _tree.keystr(path)
        got, want = jnp.result_type(x), jnp.result_type(r)
        if jnp.issubdtype(got, jnp.complexfloating) and not jnp.issubdtype(
            want, jnp.complexfloating
        ):
            raise TypeError(
                f"{what}: the {subject} at {where} is complex ({got}) but the {against} "
                f"is {want}: its imaginary part would be dropped."
            )
        if jnp.shape(x) != jnp.shape(r):
            raise ValueError(
                f"{what}: the {subject} at {where} has shape {jnp.shape(x)} but the "
                f"{against} has shape {jnp.shape(r)}."
            )
        if dtypes and got != want:
            raise ValueError(
                f"{what}: the {subject} at {where} has dtype {got} but the {against} has "
                f"dtype {want}."
            )


def _split(tree: Any, use_buffers: bool) -> tuple[Any, Any]:
    """``(averaged part, buffers)``: Flax-style variables average only ``"params"``."""
    if not use_buffers and isinstance(tree, Mapping) and "params" in tree:
        return tree["params"], {k: v for k, v in tree.items() if k != "params"}
    return tree, None


class AveragedModel:
    """Torch's ``swa_utils.AveragedModel`` for a parameter pytree: SWA or EMA weights.

    Holds a copy of the parameters in :attr:`params` and the count
    :attr:`n_averaged`. :meth:`update_parameters` copies the given parameters on
    its first call and averages them afterwards, in one jitted call, with
    ``avg_fn`` (per leaf), ``multi_avg_fn`` (on the list of leaves) or, by default,
    the equal-weight running mean (:func:`get_swa_multi_avg_fn`).

    Buffers: for Flax-style variables (a dict with a ``"params"`` entry) only
    ``"params"`` is averaged and the other collections (``"batch_stats"``...) are
    copied from the model at each update, as torch keeps buffers in sync; with
    ``use_buffers=True`` every leaf is averaged. A plain tree is averaged whole.

    Differs from torch: it wraps parameters, not a module (there is no ``forward``:
    apply your model to :attr:`params`); ``multi_avg_fn`` returns the new leaves
    instead of updating them in place; there is no ``device`` argument.

    The model given to :meth:`update_parameters` must have the structure, shapes
    and dtypes of :attr:`params` (buffers included), and ``avg_fn`` /
    ``multi_avg_fn`` must return leaves of the averaged leaves' shapes (their
    dtype is cast to the average's, as torch's ``copy_``, except complex into real).

    Args:
        params: the parameters (a pytree; copied).
        avg_fn: ``fn(averaged, current, n_averaged) -> averaged`` per leaf.
        multi_avg_fn: ``fn(averaged_leaves, current_leaves, n_averaged) -> leaves``.
        use_buffers: average every collection, not only ``"params"`` (a bool).

    Raises:
        AssertionError: both ``avg_fn`` and ``multi_avg_fn`` given (torch's error).
        TypeError: ``avg_fn`` or ``multi_avg_fn`` is not callable, or ``use_buffers``
            is not a bool.

    Examples:
        >>> from optimlab.optim import swa_utils
        >>> swa = swa_utils.AveragedModel({"w": jnp.zeros(2)})
        >>> for w in (1.0, 2.0, 6.0):
        ...     swa.update_parameters({"w": jnp.full(2, w)})
        >>> swa.params["w"], int(swa.n_averaged)
        (Array([3., 3.], dtype=float32), 3)
    """

    def __init__(
        self,
        params: Any,
        avg_fn: Callable[..., Any] | None = None,
        multi_avg_fn: Callable[..., Any] | None = None,
        use_buffers: bool = False,
    ) -> None:
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        for name, fn in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(
                    f"AveragedModel: {name} must be a function (e.g. get_ema_avg_fn()), got "
                    f"{type(fn).__name__}."
                )
        if not isinstance(use_buffers, (bool, np.bool_)):
            raise TypeError(
                f"AveragedModel: use_buffers must be a bool, got {type(use_buffers).__name__}."
            )
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            kind = np.asarray(leaf).dtype.kind if not hasattr(leaf, "dtype") else "f"
            if kind not in "biufc":
                raise TypeError(
                    f"AveragedModel: params must be a tree of arrays, but the leaf at "
                    f"{jax.tree_util.keystr(path) or '<root>'} is {type(leaf).__name__} "
                    f"{repr(leaf)[:60]}."
                )
        self.params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
        self.n_averaged = jnp.zeros((), jnp.int32)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = bool(use_buffers)
        self._average = jax.jit(self._average_fn)

    def _average_fn(self, averaged: Any, current: Any, n: jax.Array) -> Any:
        avg_fn = self.avg_fn
        if avg_fn is not None:
            new = jax.tree.map(lambda a, c: jnp.asarray(avg_fn(a, c, n)), averaged, current)
            what = "AveragedModel.update_parameters: avg_fn"
        else:
            fn = self.multi_avg_fn or get_swa_multi_avg_fn()
            leaves, treedef = jax.tree.flatten(averaged)
            out = list(fn(leaves, jax.tree.leaves(current), n))
            if len(out) != len(leaves):
                raise ValueError(
                    "AveragedModel.update_parameters: multi_avg_fn returned "
                    f"{len(out)} leaves for {len(leaves)}."
                )
            new = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in out])
            what = "AveragedModel.update_parameters: multi_avg_fn"
        _check_like(what, new, averaged, "result", "averaged leaf", dtypes=False)
        return jax.tree.map(lambda x, a: x.astype(a.dtype), new, averaged)

    def update_parameters(self, model: Any) -> None:
        """Averages ``model`` (a tree shaped like :attr:`params`) into :attr:`params`.

        Args:
            model: the current parameters (or Flax variables), with the structure,
                shapes and dtypes of :attr:`params` (buffers included).

        Raises:
            ValueError: the model's structure, a shape or a dtype differs from
                :attr:`params`', or ``avg_fn`` returns another shape.
            TypeError: a complex leaf where the average is real.
        """
        what = "AveragedModel.update_parameters"
        averaged, held_buffers = _split(self.params, self.use_buffers)
        current, buffers = _split(model, self.use_buffers)
        if (held_buffers is None) != (buffers is None):  # compared whole: names the entry
            current, averaged = model, self.params
        _check_tree(
            what,
            (current, "model's", "model's leaf"),
            (averaged, "averaged params", "averaged leaf's"),
            "Pass the model's parameters, with the structure given to AveragedModel.",
        )
        if buffers is not None:
            _check_tree(
                what,
                (buffers, "model's buffers'", "model's buffer"),
                (held_buffers, "averaged model's buffers", "averaged model's buffer"),
                "Pass the model's variables, with the collections given to AveragedModel.",
            )
        if int(self.n_averaged) == 0:
            new = jax.tree.map(
                lambda a, c: jnp.array(c, copy=True).astype(a.dtype), averaged, current
            )
        else:
            new = self._average(averaged, current, self.n_averaged)
        if buffers is None:
            self.params = new
        else:
            self.params = {
                **jax.tree.map(lambda x: jnp.array(x, copy=True), buffers),
                "params": new,
            }
        self.n_averaged = self.n_averaged + 1


class SWALR(LRScheduler):
    """Torch's ``swa_utils.SWALR``: anneals each group's ``lr`` to ``swa_lr``, then holds it.

    As torch, it starts from the ``lr`` the group has at construction (recovered
    from the current ``lr`` at each step, so it follows other changes as torch
    does) and counts its own steps (not ``last_epoch``); the annealing weight is
    that of :func:`optimlab.schedules.swa_anneal`.

    Args:
        optimizer: the optimizer.
        swa_lr: the target learning rate (one per group, or one for all).
        anneal_epochs: the epochs of the annealing (``>= 0``).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        last_epoch: the index of the last epoch.

    Examples:
        >>> from optimlab import optim
        >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=1.0)
        >>> sched = optim.swa_utils.SWALR(opt, swa_lr=0.2, anneal_epochs=4,
        ...                               anneal_strategy="linear")
        >>> lrs = []
        >>> for _ in range(6):
        ...     lrs.append(round(sched.get_last_lr()[0], 2))
        ...     sched.step()
        >>> lrs
        [1.0, 0.8, 0.6, 0.4, 0.2, 0.2]
    """

    _keys = ("_anneal_strategy", "anneal_epochs")
    _has_closed_form = False

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        lrs = per_group("swa_lr", optimizer, swa_lr)
        for lr in lrs:  # every argument checked before any group is changed
            _check_real("SWALR", "swa_lr", lr)
            _validate.lr(lr)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        if isinstance(anneal_epochs, np.integer) and not isinstance(anneal_epochs, bool):
            anneal_epochs = int(anneal_epochs)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        for lr, group in zip(lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = lr
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _alpha(self, step: int) -> float:
        make = lambda: schedules.swa_anneal(
            0.0,
            1.0,
            self.anneal_epochs,
            self._anneal_strategy,
        )
        return self._table(("alpha", self.anneal_epochs, self._anneal_strategy), make)(step)

    def _chain(self, i: int, lr: float, t: float) -> float:
        del t
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
            prev = 0.0 if step <= 1 else 1.0
        else:
            prev = self._alpha(step - 1)
        swa = self.optimizer.param_groups[i]["swa_lr"]
        start = swa if prev == 1 else (lr - prev * swa) / (1 - prev)
        alpha = self._alpha(step)
        return swa * alpha + start * (1 - alpha)


def update_bn(
    loader: Iterable[Any],
    apply_fn: Callable[[Any, Any], Any],
    variables: Any,
    momentum: float = 0.99,
) -> Any:
    r"""Torch's ``swa_utils.update_bn`` for Flax ``batch_stats``: their average over a loader.

    Replaces ``variables["batch_stats"]`` by the cumulative (equal-weight) average,
    over the batches of ``loader``, of each batch's own statistics, as torch's
    ``update_bn`` does with ``momentum=None``.

    Contract of ``apply_fn``: ``apply_fn(variables, batch) -> (output, mutated)``,
    one forward pass in training mode (batch statistics) where ``mutated`` holds
    the new ``"batch_stats"``, exactly what
    ``model.apply(variables, x, train=True, mutable=["batch_stats"])`` returns for a
    Flax Linen model. Each normalisation layer must update its statistics as
    Flax's ``BatchNorm`` does, :math:`s \leftarrow m s + (1 - m) b` with the batch
    statistic :math:`b` and ``momentum`` :math:`m` (Flax's default 0.99): the
    function feeds zero statistics and reads :math:`b = s' / (1 - m)`. A batch that
    is a list or tuple passes its first element, as torch.

    Differs from torch: the variance averaged is Flax's (biased, over the batch),
    where torch averages the unbiased one; and with an empty loader the
    statistics are left as they were (torch resets them).

    Args:
        loader: an iterable of batches.
        apply_fn: as above, jitted here.
        variables: Flax variables; returned unchanged when there is no ``"batch_stats"``.
        momentum: the layers' momentum :math:`m \in [0, 1)`.

    Returns:
        New variables with the recomputed ``"batch_stats"``.
    """
    _check_real("update_bn", "momentum", momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"Invalid momentum value: {momentum} (must be in [0, 1))")
    if not isinstance(variables, Mapping) or "batch_stats" not in variables:
        return variables
    stats = variables["batch_stats"]
    probe = {**variables, "batch_stats": jax.tree.map(jnp.zeros_like, stats)}

    @jax.jit
    def batch_stats(v, x):
        _, mutated = apply_fn(v, x)
        new = mutated["batch_stats"]
        _check_tree(
            "update_bn",
            (new, "returned batch_stats'", "returned batch_stat"),
            (stats, "variables' batch_stats", "variables' one"),
            "apply_fn must return the batch_stats of the variables given.",
            dtypes=False,
        )
        return jax.tree.map(lambda s: s / (1 - momentum), new)

    @jax.jit
    def accumulate(avg, new, n):
        return jax.tree.map(lambda a, b: _tree.lerp(a, b.astype(a.dtype), 1 / n), avg, new)

    avg, n = None, 0
    for batch in loader:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        new = batch_stats(probe, x)
        n += 1
        avg = new if avg is None else accumulate(avg, new, jnp.asarray(n, jnp.float32))
    if avg is None:
        return variables
    avg = jax.tree.map(lambda a, s: a.astype(s.dtype), avg, stats)
    return {**variables, "batch_stats": avg}
