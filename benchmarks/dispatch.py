"""Dispatch time of a one-leaf step: hyperparameters in state against optax's closures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optimlab

from . import _common as C


def _time(tx, apply_updates) -> float:
    params = {"w": jnp.ones((8,), jnp.float32)}
    grads = {"w": jnp.full((8,), 1e-3, jnp.float32)}

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    with jax.numpy_dtype_promotion("standard"):
        jitted = jax.jit(step, donate_argnums=(0, 1))
        box = [params, tx.init(params)]

        def run():
            box[0], box[1] = jitted(box[0], box[1], grads)
            C.block(box)

        return C.time_loop(run, warmup=50, repeats=2000, min_time=0.5)


def dispatch_table() -> list[dict]:
    cases = {
        "optimlab.adam (hyperparams in state)": (optimlab.adam(1e-3), optimlab.apply_updates),
        "optimlab.bucketed(adam)": (optimlab.bucketed(optimlab.adam(1e-3)), optimlab.apply_updates),
        "optax.adam": (optax.adam(1e-3), optax.apply_updates),
        "optax.inject_hyperparams(adam)": (
            optax.inject_hyperparams(optax.adam)(learning_rate=1e-3),
            optax.apply_updates,
        ),
    }
    rows = []
    for name, (tx, ap) in cases.items():
        rows.append({"name": name, "us": _time(tx, ap) * 1e6})
    base = next(r["us"] for r in rows if r["name"] == "optax.adam")
    for r in rows:
        r["ratio"] = r["us"] / base
        print(f"dispatch {r['name']:>38}: {r['us']:6.1f} us ({r['ratio']:.2f}x optax.adam)")
    return rows


def markdown(rows) -> str:
    lines = ["| one-leaf step | µs per step | / optax.adam |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['us']:.1f} | {r['ratio']:.2f} |" for r in rows]
    return "\n".join(lines)
