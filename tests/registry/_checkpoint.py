"""Error cases for optimlab.checkpoint (stage "load")."""

import pathlib
import tempfile

import jax.numpy as jnp

import optimlab as ol
from optimlab import checkpoint

from ._types import ErrorCase


def _tmp(name):
    return pathlib.Path(tempfile.mkdtemp()) / name


def _restore_other_optimizer():
    path = checkpoint.save(_tmp("sgd.npz"), ol.sgd(0.1, momentum=0.9).init({"w": jnp.ones(2)}))
    checkpoint.restore(path, ol.adam().init({"w": jnp.ones(2)}))


def _restore_truncated():
    path = checkpoint.save(_tmp("t.npz"), ol.adam().init({"w": jnp.ones(2)}))
    path.write_bytes(path.read_bytes()[:100])
    checkpoint.restore(path, ol.adam().init({"w": jnp.ones(2)}))


def _restore_state_from_tree():
    path = checkpoint.save_tree(_tmp("sd.npz"), {"state": {}})
    checkpoint.restore(path, ol.adam().init({"w": jnp.ones(2)}))


ERROR_CASES = [
    ErrorCase(
        "checkpoint_missing_file",
        lambda: checkpoint.restore(_tmp("nope.npz"), {}),
        "load",
        FileNotFoundError,
        "checkpoint not found",
    ),
    ErrorCase(
        "checkpoint_other_optimizer",
        _restore_other_optimizer,
        "load",
        checkpoint.CheckpointError,
        "does not match the template",
    ),
    ErrorCase(
        "checkpoint_truncated",
        _restore_truncated,
        "load",
        checkpoint.CheckpointError,
        "corrupted or truncated",
    ),
    ErrorCase(
        "checkpoint_tree_is_not_a_state",
        _restore_state_from_tree,
        "load",
        checkpoint.CheckpointError,
        "use load_tree",
    ),
    ErrorCase(
        "checkpoint_save_abstract_leaf",
        lambda: checkpoint.save(_tmp("a.npz"), {"w": jax_abstract()}),
        "load",
        TypeError,
        "is abstract",
    ),
]


def jax_abstract():
    import jax

    return jax.ShapeDtypeStruct((2,), jnp.float32)
