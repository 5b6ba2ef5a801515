"""``optim.AdamW.step(grads)`` against the functional jitted, donated ``adamw`` step.

The compatibility layer's shell (reading ``param_groups``, feeding the options,
dispatching one jitted call) should cost little over the bare functional step
on a realistic tree: ~200 leaves, ~10M parameters
(:func:`benchmarks._common.transformer_like`). Both are timed in the same run,
alternately, and the ratio is reported with the bandwidth floor for scale.

Run ``python -m benchmarks.optim_step``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import statistics

import jax

import optimlab
from optimlab import optim

from . import _common as C

#: The ratio the shell should stay under (shell step time / functional step time).
TARGET = 1.15


def _functional_step(shapes: dict[str, tuple[int, ...]]):
    tx = optimlab.adamw(1e-3)
    grads = C.make_tree(shapes, seed=1, scale=1e-3)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optimlab.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    params = C.make_tree(shapes)
    box = [params, jax.jit(tx.init)(params)]

    def run():
        box[0], box[1] = jitted(box[0], box[1], grads)
        C.block(box)

    return run


def _shell_step(shapes: dict[str, tuple[int, ...]]):
    grads = C.make_tree(shapes, seed=1, scale=1e-3)
    opt = optim.AdamW(C.make_tree(shapes), lr=1e-3)

    def run():
        opt.step(grads)
        store = opt._store  # every array the step wrote: params, states, bucketed states
        C.block((store.leaves(), [p.flat for p in store.params], [g.bucket for g in store.groups]))

    return run


def measure(rounds: int = 5) -> dict[str, float]:
    """Median step seconds of the shell and of the functional step, and their ratio.

    The two are timed alternately, ``rounds`` times each (after warming up); the
    ratio is the median of the per-round ratios, which cancels most of the memory
    bandwidth drift of a shared machine; the times are the medians over rounds.
    """
    shapes = C.transformer_like()
    n = C.n_params(shapes)
    functional, shell = _functional_step(shapes), _shell_step(shapes)
    times: dict[str, list[float]] = {"functional": [], "shell": []}
    for _ in range(rounds):
        times["functional"].append(C.time_loop(functional))
        times["shell"].append(C.time_loop(shell))
    ratios = [s / f for s, f in zip(times["shell"], times["functional"], strict=True)]
    floor = C.floor_timer(n, 28)
    return dict(
        leaves=len(shapes),
        params=n,
        shell_s=statistics.median(times["shell"]),
        functional_s=statistics.median(times["functional"]),
        floor_s=floor,
        ratio=statistics.median(ratios),
    )


def table(rounds: int = 5) -> str:
    """The Markdown table of one measurement (see :func:`measure`)."""
    r = measure(rounds)
    ok = "yes" if r["ratio"] <= TARGET else "no"
    return "\n".join(
        [
            "| step | structure | ms | / functional | / floor |",
            "|---|---|---|---|---|",
            f"| functional `adamw` (jit, donated) | {r['leaves']} leaves, {r['params']:,} params "
            f"| {r['functional_s'] * 1e3:.2f} | 1.00 | {r['functional_s'] / r['floor_s']:.2f} |",
            f"| `optim.AdamW.step(grads)` | same | {r['shell_s'] * 1e3:.2f} | {r['ratio']:.2f} "
            f"| {r['shell_s'] / r['floor_s']:.2f} |",
            "",
            f"Shell overhead target: at most {TARGET:.2f}x the functional step (met: {ok}). "
            f"Floor: one fused pass over 28 B/param, {r['floor_s'] * 1e3:.2f} ms.",
        ]
    )


if __name__ == "__main__":
    print(f"machine: {C.machine()}\n")
    print(table())
    jax.clear_caches()
