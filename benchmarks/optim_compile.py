"""First ``optim.AdamW.step`` (trace + compile + one step) against ``optax.adamw``'s first step.

A torch user's first step on a real model pays for tracing and compiling the
whole update. Measured on many small leaves (1,000 floats each), where that cost
dominates, with the steady step time at the largest size. Both sides are timed
in the same run; each first call runs on a fresh optimizer after
:func:`jax.clear_caches`.

Run ``python -m benchmarks.optim_compile``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import operator
import statistics
import time

import jax
import optax

from optimlab import optim

from . import _common as C

#: Targets: first shell step / optax's first step, and steady shell step / optax step.
FIRST_TARGET = 0.5
STEADY_TARGET = 0.8


def _optax_steps(shapes):
    tx = optax.adamw(1e-3, weight_decay=1e-2)
    grads = C.make_tree(shapes, seed=1, scale=1e-3)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    params = C.make_tree(shapes)
    with jax.numpy_dtype_promotion("standard"):
        box = [params, jax.jit(tx.init)(params)]

    def run():
        with jax.numpy_dtype_promotion("standard"):
            box[0], box[1] = jitted(box[0], box[1], grads)
        C.block(box)

    return run


def _shell_steps(shapes):
    grads = C.make_tree(shapes, seed=1, scale=1e-3)
    opt = optim.AdamW(C.make_tree(shapes), lr=1e-3)

    def run():
        opt.step(grads)
        C.block(opt.params)

    return run


def _first(make, shapes) -> tuple[float, object]:
    jax.clear_caches()
    run = make(shapes)
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0, run


def measure(leaf_counts=(500, 2000)) -> list[dict]:
    """One row per leaf count: first-step seconds of both, steady step at the largest."""
    rows = []
    for n in leaf_counts:
        shapes = C.many_leaves(n, 1000)
        # The fastest of 3 first steps below 1,000 leaves (about a second each, where
        # the machine's noise is a tenth of the figure), one above.
        tries = 3 if n < 1000 else 1
        shell_first, shell_run = min(
            (_first(_shell_steps, shapes) for _ in range(tries)), key=operator.itemgetter(0)
        )
        optax_first, optax_run = min(
            (_first(_optax_steps, shapes) for _ in range(tries)), key=operator.itemgetter(0)
        )
        row = dict(leaves=n, shell_first=shell_first, optax_first=optax_first)
        if n == max(leaf_counts):
            # Alternately, the median of 3 rounds each: one round of each in turn moved
            # with the machine's load by a third between runs.
            shell, opt = [], []
            for _ in range(3):
                shell.append(C.time_loop(shell_run))
                opt.append(C.time_loop(optax_run))
            row["shell_step"] = statistics.median(shell)
            row["optax_step"] = statistics.median(opt)
        rows.append(row)
        print(
            f"first optim.AdamW.step {n} leaves: {shell_first:.2f} s, optax {optax_first:.2f} s",
            flush=True,
        )
    return rows


def table(rows: list[dict] | None = None) -> str:
    """The Markdown table of :func:`measure`."""
    rows = measure() if rows is None else rows
    lines = [
        "| leaves of 1,000 | first `optim.AdamW.step` s | first optax step s | ratio | "
        "steady shell ms | steady optax ms | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        steady = (
            f"{r['shell_step'] * 1e3:.2f} | {r['optax_step'] * 1e3:.2f} | "
            f"{r['shell_step'] / r['optax_step']:.2f}"
            if "shell_step" in r
            else "- | - | -"
        )
        lines.append(
            f"| {r['leaves']} | {r['shell_first']:.2f} | {r['optax_first']:.2f} | "
            f"{r['shell_first'] / r['optax_first']:.2f} | {steady} |"
        )
    lines.append(
        f"\nTargets: first step <= {FIRST_TARGET}x optax's, steady step <= {STEADY_TARGET}x "
        "optax's at the largest size."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"machine: {C.machine()}\n")
    print(table())
