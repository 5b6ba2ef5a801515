"""Small deterministic problems shared by the tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import optimlab as ol


def quadratic_params(dtype=jnp.float32):
    return {
        "a": jnp.array([1.0, -2.0, 3.0], dtype),
        "b": {"c": jnp.array([[0.5, -1.0], [2.0, 0.0]], dtype)},
        "d": jnp.array(1.5, dtype),
    }


def quadratic_loss(params):
    # Optimum at zero; mildly anisotropic curvature.
    weights = {"a": 1.0, "b": {"c": 0.5}, "d": 2.0}
    return sum(
        0.5 * w * jnp.sum(jnp.abs(p) ** 2)
        for p, w in zip(jax.tree.leaves(params), jax.tree.leaves(weights), strict=True)
    )


def distance_to_zero(params):
    return float(jnp.sqrt(sum(jnp.sum(jnp.abs(p) ** 2) for p in jax.tree.leaves(params))))


def rosenbrock(params):
    x = params["xy"]
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_params(dtype=jnp.float32):
    return {"xy": jnp.array([-1.0, 1.5], dtype)}


def make_train(tx, loss_fn, steps):
    """A jitted loop of ``steps`` updates (one compile) returning final params and state."""

    def step(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return (ol.apply_updates(params, updates), state), loss

    @jax.jit
    def train(params, state):
        (params, state), losses = jax.lax.scan(step, (params, state), None, length=steps)
        return params, state, losses

    return train


def scheduled_names(state):
    """The hyperparameter names that follow a schedule anywhere in ``state`` (not settable)."""
    nodes = jax.tree_util.tree_leaves(state, is_leaf=lambda x: isinstance(x, ol.HyperparamsState))
    out = set()
    for node in nodes:
        if isinstance(node, ol.HyperparamsState):
            out |= set(getattr(node.hyperparams.names, "scheduled", ()))
    return out
