"""Python calls made while tracing one optimizer update, counted with ``sys.settrace``.

Tracing runs once per compilation, so these calls are compile time, not step
time: every call a transformation makes per leaf is paid again for each leaf of
a large model. Counted for one leaf, the fixed cost of each design shows.

Run ``python -m benchmarks.trace_calls``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import collections
import sys

import jax
import jax.numpy as jnp
import optax

import optimlab

#: Python calls in optimlab's package per traced ``adamw`` update the design aims under.
TARGET = 45


def count(tx, package: str, leaves: int = 1) -> tuple[int, int]:
    """``(calls, files)``: Python calls made inside ``package`` while tracing ``tx.update``."""
    params = {f"w{i}": jnp.ones((3,)) for i in range(leaves)}
    state = tx.init(params)
    calls: collections.Counter[str] = collections.Counter()
    marker = f"/{package}/"

    def tracer(frame, event, arg):
        del arg
        if event == "call" and marker in frame.f_code.co_filename:
            calls[frame.f_code.co_filename] += 1

    def update(grads, state, params):
        sys.settrace(tracer)
        try:
            return tx.update(grads, state, params)
        finally:
            sys.settrace(None)

    with jax.numpy_dtype_promotion("standard"):  # optax promotes weakly typed scalars
        jax.jit(update).lower(params, state, params)
    return sum(calls.values()), len(calls)


def measure() -> list[dict]:
    """One row per optimizer: calls and files for one leaf, calls for ten leaves."""
    rows = []
    for name, make, package in (
        ("optimlab.adamw", lambda: optimlab.adamw(1e-3), "optimlab"),
        ("optax.adamw", lambda: optax.adamw(1e-3), "optax"),
        (
            "optax.inject_hyperparams(adamw)",
            lambda: optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3),
            "optax",
        ),
    ):
        calls, files = count(make(), package)
        calls10, _ = count(make(), package, leaves=10)
        rows.append(dict(name=name, calls=calls, files=files, calls10=calls10))
    return rows


def table(rows: list[dict] | None = None) -> str:
    """The Markdown table of :func:`measure`."""
    rows = measure() if rows is None else rows
    lines = [
        "| update traced | Python calls, 1 leaf | files | Python calls, 10 leaves |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | {r['calls']} | {r['files']} | {r['calls10']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
