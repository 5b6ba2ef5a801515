"""Sharding helpers: where each optimizer-state leaf lives on a device mesh."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from .._core._base import require_transformation
from .._core._hyperparams import Hyperparams
from .._core._types import Params
from .._core._validate import checked_arguments

__all__ = ["state_shardings", "zero1_state_shardings"]


def _param_spec(leaf: Any, mesh: Mesh) -> PartitionSpec:
    sharding = getattr(leaf, "sharding", None)
    if isinstance(sharding, NamedSharding):
        if tuple(sharding.mesh.axis_names) != tuple(mesh.axis_names) or dict(
            sharding.mesh.shape
        ) != dict(mesh.shape):
            raise ValueError(
                f"the params are sharded over a mesh with axes {dict(sharding.mesh.shape)}, "
                f"not the mesh given ({dict(mesh.shape)})."
            )
        return sharding.spec
    return PartitionSpec()


def _check_arguments(function: str, tx: Any, mesh: Any) -> None:
    require_transformation(tx, f"{function}: tx")
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{function}: mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh(...)), got "
            f"{type(mesh).__name__}."
        )


def _specs(tx: Any, params: Params, mesh: Mesh) -> Any:
    """The state's partition specs, propagated from the params' by JAX's sharding types.

    ``init`` is traced abstractly (``jax.eval_shape``) on params typed with their
    specs on an explicit-axis copy of ``mesh``, so every state leaf computed from a
    parameter (moments, factored statistics, copies) gets the spec JAX derives for it
    and scalars get ``P()``. Nothing is allocated and nothing is compiled.
    """
    explicit = Mesh(
        mesh.devices, mesh.axis_names, axis_types=(AxisType.Explicit,) * len(mesh.axis_names)
    )

    def typed(leaf):
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            leaf = jnp.asarray(leaf)
        return jax.ShapeDtypeStruct(
            leaf.shape, leaf.dtype, sharding=NamedSharding(explicit, _param_spec(leaf, mesh))
        )

    # Typed outside the ``try``: a param on another mesh is the caller's error (ValueError).
    typed_params = jax.tree.map(typed, params)
    try:
        abstract_state = jax.eval_shape(tx.init, typed_params)
    except Exception:
        # ``init`` mixes differently sharded params in one array (flat storage, as in
        # torch_lbfgs): there is no per-param placement to follow, so the state is replicated.
        # A genuine error in ``init`` is raised again here, without shardings.
        abstract_state = jax.eval_shape(tx.init, params)
        return jax.tree.map(lambda _: PartitionSpec(), abstract_state), abstract_state

    def spec(leaf):
        sharding = getattr(leaf, "sharding", None)
        return sharding.spec if isinstance(sharding, NamedSharding) else PartitionSpec()

    return jax.tree.map(spec, abstract_state), abstract_state


@checked_arguments
def state_shardings(tx: Any, params: Params, mesh: Mesh) -> Any:
    """Shardings for ``tx``'s state that follow the params' shardings.

    Each state leaf derived from a parameter (a moment, a copy, a factored
    statistic) is sharded as JAX propagates the parameter's
    :class:`~jax.sharding.NamedSharding` through ``tx.init``; scalars (the step
    counter, hyperparameters) are replicated, and so is the state of a
    transformation that packs differently sharded params into one array (the flat
    history of :func:`~optimlab.torch_lbfgs`). Params without a
    :class:`~jax.sharding.NamedSharding` count as replicated. Pass the result as
    ``out_shardings`` to ``jax.jit(tx.init)`` (and to the jitted update step):
    under a mesh with ``Auto`` axes XLA does not carry the params' sharding over
    to freshly created zeros, so without it the moments of a jitted ``init``
    come out replicated.

    Args:
        tx: the optimizer.
        params: the params (arrays, or :class:`jax.ShapeDtypeStruct` with shardings).
        mesh: the device mesh.

    Returns:
        A pytree of :class:`~jax.sharding.NamedSharding` with the state's structure.

    Raises:
        ValueError: a param is sharded over another mesh.

    Examples:
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> params = {"w": jax.device_put(jnp.ones(4), NamedSharding(mesh, P("data")))}
        >>> tx = optimlab.adam(1e-3)
        >>> shardings = optimlab.state_shardings(tx, params, mesh)
        >>> state = jax.jit(tx.init, out_shardings=shardings)(params)
        >>> state.inner_state[0].mu["w"].sharding.spec
        P('data',)
    """
    _check_arguments("state_shardings", tx, mesh)
    specs, _ = _specs(tx, params, mesh)
    return jax.tree.map(
        lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )


@checked_arguments
def zero1_state_shardings(tx: Any, params: Params, mesh: Mesh, data_axis: str = "data") -> Any:
    """ZeRO-1 shardings for ``tx``'s state: the moments split over the data-parallel axis.

    Starts from :func:`state_shardings` (so a parameter sharded over a model axis
    keeps that split in its moments) and additionally splits every non-scalar
    state leaf over ``data_axis``, on its first dimension that is not already
    sharded and whose size the axis divides. Leaves already sharded over
    ``data_axis`` (FSDP-style params) and leaves with no such dimension are left
    as they are; scalars and the packed hyperparameters stay replicated. Params
    are typically replicated over ``data_axis``: each data-parallel rank then
    holds ``1/n`` of the optimizer state, and XLA inserts the gathers the update
    step needs. The numbers are those of the unsharded step.

    Args:
        tx: the optimizer.
        params: the params (arrays, or :class:`jax.ShapeDtypeStruct` with shardings).
        mesh: the device mesh.
        data_axis: the name of the data-parallel mesh axis.

    Returns:
        A pytree of :class:`~jax.sharding.NamedSharding` with the state's structure,
        for ``jax.jit(tx.init, out_shardings=...)`` and the update step's state.

    Raises:
        ValueError: ``data_axis`` is not an axis of ``mesh``, or a param is sharded
            over another mesh.

    Examples:
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> tx = optimlab.adam(1e-3)
        >>> params = {"w": jnp.ones((4, 3))}
        >>> state = jax.jit(tx.init, out_shardings=optimlab.zero1_state_shardings(
        ...     tx, params, mesh))(params)
        >>> state.inner_state[0].nu["w"].sharding.spec
        P('data', None)
    """
    if data_axis not in mesh.axis_names:
        raise ValueError(
            f"zero1_state_shardings: data_axis {data_axis!r} is not an axis of the "
            f"mesh (axes: {tuple(mesh.axis_names)})."
        )
    n = mesh.shape[data_axis]
    _check_arguments("zero1_state_shardings", tx, mesh)
    specs, abstract = _specs(tx, params, mesh)

    def split(spec, leaf):
        if isinstance(spec, Hyperparams):  # one small vector read whole by every step
            return jax.tree.map(
                lambda _: NamedSharding(mesh, PartitionSpec()), spec, is_leaf=_is_spec
            )
        shape = leaf.shape
        entries = list(spec) + [None] * (len(shape) - len(spec))
        used = {a for e in entries if e is not None for a in (e if isinstance(e, tuple) else (e,))}
        if not shape or data_axis in used:
            return NamedSharding(mesh, PartitionSpec(*entries))
        for i, (size, entry) in enumerate(zip(shape, entries, strict=True)):
            if entry is None and size % n == 0 and size > 0:
                entries[i] = data_axis
                break
        return NamedSharding(mesh, PartitionSpec(*entries))

    return jax.tree.map(
        split, specs, abstract, is_leaf=lambda x: isinstance(x, (PartitionSpec, Hyperparams))
    )


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec)
