"""Peak and temporary memory of donated steps (XLA's ``memory_analysis``, nothing is run)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optimlab

MB = 2**20


def _analysis(tx, params, apply_updates) -> dict:
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    with jax.numpy_dtype_promotion("standard"):
        state = jax.eval_shape(tx.init, params)
        mem = (
            jax.jit(step, donate_argnums=(0, 1))
            .lower(params, state, params)
            .compile()
            .memory_analysis()
        )
    nbytes = lambda t: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(t))
    floor = 2 * nbytes(params) + nbytes(state)
    peak = (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        - mem.alias_size_in_bytes
        + mem.temp_size_in_bytes
    )
    return {"floor": floor, "temp": mem.temp_size_in_bytes, "peak": peak}


def memory_table(n_params: int) -> list[dict]:
    big = n_params - 100 * 10_000
    params = {"w": jax.ShapeDtypeStruct((big,), jnp.float32)}
    params.update({f"b{i:03d}": jax.ShapeDtypeStruct((10_000,), jnp.float32) for i in range(100)})
    ol_adamw = lambda: optimlab.adamw(1e-3)
    ol_clip = lambda: optimlab.chain(optimlab.clip_by_global_norm(1.0), ol_adamw())
    cases = {
        "optimlab adamw": (ol_adamw(), optimlab.apply_updates),
        "optimlab bucketed adamw": (optimlab.bucketed(ol_adamw()), optimlab.apply_updates),
        "optax adamw": (optax.adamw(1e-3), optax.apply_updates),
        "optimlab clip+adamw": (ol_clip(), optimlab.apply_updates),
        "optimlab bucketed clip+adamw": (optimlab.bucketed(ol_clip()), optimlab.apply_updates),
        "optax clip+adamw": (
            optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)),
            optax.apply_updates,
        ),
    }
    rows = []
    for name, (tx, ap) in cases.items():
        r = {"name": name, **_analysis(tx, params, ap)}
        rows.append(r)
        print(
            f"memory {name:>30}: peak {r['peak'] / MB:7.1f} MB, temp {r['temp'] / MB:6.1f} MB "
            f"({r['temp'] / r['floor']:.1%} of params+grads+state)"
        )
    return rows


def markdown(rows, n_params: int) -> str:
    lines = [
        f"{n_params / 1e6:.0f}M float32 params (one large leaf and 100 leaves of 10,000), "
        "params and state donated. Floor = params + grads + state.\n",
        "| step | peak MB | temp MB | floor MB | peak / floor | temp / floor |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['peak'] / MB:.1f} | {r['temp'] / MB:.1f} | "
            f"{r['floor'] / MB:.1f} | {r['peak'] / r['floor']:.3f} | "
            f"{r['temp'] / r['floor']:.2%} |"
        )
    return "\n".join(lines)
