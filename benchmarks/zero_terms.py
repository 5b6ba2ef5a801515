"""What carrying a zero-valued term costs: built with ``0.0`` against built with ``None``.

A term built at ``0.0`` stays in the state (so ``set_hyperparams`` can switch it
on later); ``None`` leaves it out. Carrying it costs a read of the params and an
add for a decay term, a buffer for a momentum term. Each pair is timed
alternately in the same run on the ~200-leaf, ~10M-parameter tree
(:func:`benchmarks._common.transformer_like`), and the ratio is the median of the
per-round ratios.

Run ``python -m benchmarks.zero_terms``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import jax

import optimlab

from . import _common as C

#: (label, build with the term at 0.0, build without it)
Build = Callable[[], optimlab.GradientTransformation]
PAIRS: list[tuple[str, Build, Build]] = [
    (
        "adam `weight_decay`",
        lambda: optimlab.adam(1e-3, weight_decay=0.0),
        lambda: optimlab.adam(1e-3, weight_decay=None),
    ),
    (
        "adam `eps_root`",
        lambda: optimlab.adam(1e-3, eps_root=0.0),
        lambda: optimlab.adam(1e-3, eps_root=None),
    ),
    (
        "sgd `momentum`",
        lambda: optimlab.sgd(1e-3, momentum=0.0),
        lambda: optimlab.sgd(1e-3, momentum=None),
    ),
]


def _runner(tx, shapes):
    params = C.make_tree(shapes)
    grads = C.make_tree(shapes, seed=1, scale=1e-3)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optimlab.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = [params, jax.jit(tx.init)(params)]

    def run():
        box[0], box[1] = jitted(box[0], box[1], grads)
        C.block(box)

    state_bytes = sum(x.nbytes for x in jax.tree.leaves(box[1]))
    return run, state_bytes


def measure(rounds: int = 5) -> list[dict[str, float | str]]:
    """Per pair: median step seconds with and without the term, their ratio, state bytes."""
    shapes = C.transformer_like()
    rows: list[dict[str, float | str]] = []
    for label, with_term, without in PAIRS:
        (run_with, bytes_with), (run_without, bytes_without) = (
            _runner(with_term(), shapes),
            _runner(without(), shapes),
        )
        t_with, t_without = [], []
        for _ in range(rounds):
            t_with.append(C.time_loop(run_with))
            t_without.append(C.time_loop(run_without))
        ratios = [a / b for a, b in zip(t_with, t_without, strict=True)]
        rows.append(
            dict(
                label=label,
                with_s=statistics.median(t_with),
                without_s=statistics.median(t_without),
                ratio=statistics.median(ratios),
                bytes_with=bytes_with,
                bytes_without=bytes_without,
            )
        )
    return rows


def table(rounds: int = 5) -> str:
    """The Markdown table of one measurement (see :func:`measure`)."""
    shapes = C.transformer_like()
    lines = [
        "| term carried at 0.0 | ms with | ms without (`None`) | ratio | state MB with / without |",
        "|---|---|---|---|---|",
    ]
    for r in measure(rounds):
        lines.append(
            f"| {r['label']} | {float(r['with_s']) * 1e3:.2f} | {float(r['without_s']) * 1e3:.2f} "
            f"| {float(r['ratio']):.2f} | {float(r['bytes_with']) / 1e6:.1f} / "
            f"{float(r['bytes_without']) / 1e6:.1f} |"
        )
    lines += [
        "",
        f"{len(shapes)} leaves, {C.n_params(shapes):,} params. A term built at `0.0` stays "
        "settable with `set_hyperparams`; `None` (the default of every term optax lacks) "
        "leaves it out and costs nothing.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"machine: {C.machine()}\n")
    print(table())
