"""Memory of gradient accumulation: ``optimlab.accumulate`` against ``optax.MultiSteps``.

Compiles (without running) one donated micro-step of ``accumulate(adamw, every=4)``
and of ``optax.MultiSteps(optax.adamw, 4)`` and reports XLA's memory analysis.
The floor is params + grads + Adam state (two moments) + one
accumulator: 5 parameter-sized buffers. ``accumulate`` sits on it (no temporary:
the wrapped optimizer runs in a ``lax.cond`` and its update is written into the
accumulator); selecting the new or old moments with ``where`` instead cost 2 P of
copies (7 P), and ``MultiSteps`` needs 8 P.

Run with ``python -m benchmarks.accumulate_memory`` (a few seconds: nothing is executed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optimlab as ol

MB = 2**20


def _params(n_params: int, n_leaves: int) -> dict:
    size = n_params // n_leaves
    return {f"w{i:03d}": jax.ShapeDtypeStruct((size,), jnp.float32) for i in range(n_leaves)}


def _analysis(tx, params) -> dict:
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = jax.eval_shape(tx.init, params)
    with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
        compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params).compile()
    mem = compiled.memory_analysis()
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    return {
        "argument": mem.argument_size_in_bytes,
        "output": mem.output_size_in_bytes,
        "alias": mem.alias_size_in_bytes,
        "temp": mem.temp_size_in_bytes,
        "state": state_bytes,
        "peak": mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        - mem.alias_size_in_bytes
        + mem.temp_size_in_bytes,
    }


def measure(n_params: int = 10_000_000, n_leaves: int = 20, every: int = 4) -> dict:
    """XLA memory analysis of one donated micro-step of each accumulator, in bytes."""
    params = _params(n_params, n_leaves)
    return {
        f"optimlab.accumulate(adamw, every={every})": _analysis(
            ol.accumulate(ol.adamw(1e-3), every=every), params
        ),
        f"optax.MultiSteps(optax.adamw, {every})": _analysis(
            optax.MultiSteps(optax.adamw(1e-3), every_k_schedule=every).gradient_transformation(),
            params,
        ),
    }


def table(n_params: int = 10_000_000, n_leaves: int = 20, every: int = 4) -> str:
    """A Markdown table of peak and temporary memory, in MiB and in parameter sizes."""
    p_bytes = (n_params // n_leaves) * n_leaves * 4
    rows = [
        f"Donated micro-step, {n_params / 1e6:.0f}M float32 params in {n_leaves} leaves "
        f"({p_bytes / MB:.0f} MiB = 1 P). Floor: params + grads + 2 moments + 1 "
        "accumulator = 5 P.",
        "",
        "| transformation | state | temp | peak (args + out - aliased + temp) | peak / P |",
        "|---|---|---|---|---|",
    ]
    for name, m in measure(n_params, n_leaves, every).items():
        rows.append(
            f"| `{name}` | {m['state'] / MB:.0f} MiB | {m['temp'] / MB:.1f} MiB | "
            f"{m['peak'] / MB:.0f} MiB | {m['peak'] / p_bytes:.2f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
