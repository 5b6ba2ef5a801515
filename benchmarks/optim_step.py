"""``optim.AdamW.step(grads)`` against the functional jitted, donated ``adamw`` step.

The compatibility layer's shell (reading ``param_groups``, feeding the options,
dispatching one jitted call) should cost little over the bare functional step
on a realistic tree: ~200 leaves, ~10M parameters
(:func:`benchmarks._common.transformer_like`). Both are timed in the same run,
interleaved, and the ratio is reported with the bandwidth floor for scale.

Run ``python -m benchmarks.optim_step``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import jax

import optimlab
from optimlab import optim

from . import _common as C

#: The ratio the shell should stay under (shell step time / functional step time).
TARGET = 1.15


def _shell_timer(shapes: dict[str, tuple[int, ...]], rounds: int) -> list[float]:
    params = C.make_tree(shapes)
    grads = C.make_tree(shapes, seed=1, scale=1e-3)
    opt = optim.AdamW(params, lr=1e-3)

    def run():
        opt.step(grads)
        C.block(opt._leaves)

    return [C.time_loop(run) for _ in range(rounds)]


def measure(rounds: int = 3) -> dict[str, float]:
    """Median step seconds of the shell and of the functional step, and their ratio.

    Each is measured ``rounds`` times, alternating, and the best (lowest) median
    of each is kept, which filters out the bandwidth drift of a shared machine.
    """
    shapes = C.transformer_like()
    n = C.n_params(shapes)
    shell, functional = [], []
    for _ in range(rounds):
        functional.append(C.jax_step_timer(optimlab.adamw(1e-3), shapes,
                                           apply_updates=optimlab.apply_updates)[1])
        shell.extend(_shell_timer(shapes, 1))
    floor = C.floor_timer(n, 28)
    return dict(leaves=len(shapes), params=n, shell_s=min(shell),
                functional_s=min(functional), floor_s=floor,
                ratio=min(shell) / min(functional))


def table(rounds: int = 3) -> str:
    """The Markdown table of one measurement (see :func:`measure`)."""
    r = measure(rounds)
    ok = "yes" if r["ratio"] <= TARGET else "no"
    return "\n".join([
        "| step | structure | ms | / functional | / floor |",
        "|---|---|---|---|---|",
        f"| functional `adamw` (jit, donated) | {r['leaves']} leaves, {r['params']:,} params "
        f"| {r['functional_s'] * 1e3:.2f} | 1.00 | {r['functional_s'] / r['floor_s']:.2f} |",
        f"| `optim.AdamW.step(grads)` | same | {r['shell_s'] * 1e3:.2f} | {r['ratio']:.2f} "
        f"| {r['shell_s'] / r['floor_s']:.2f} |",
        "",
        f"Shell overhead target: at most {TARGET:.2f}x the functional step (met: {ok}). "
        f"Floor: one fused pass over 28 B/param, {r['floor_s'] * 1e3:.2f} ms.",
    ])


if __name__ == "__main__":
    print(f"machine: {C.machine()}\n")
    print(table())
    jax.clear_caches()
