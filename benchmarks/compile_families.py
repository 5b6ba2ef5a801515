"""Trace and compile time of each optimizer family's default step, against optax's.

200 leaves of 1,000 floats: the per-leaf cost of a design shows, and every case
compiles in about a second. Each library builds its optimizer under the same name
with the same learning rate (momentum 0.9 for ``sgd``); the figure is the fastest
of two tries of tracing, lowering and compiling a jitted, donated step.

optimlab keeps every hyperparameter in the state (settable without recompiling),
so its kernels read them as runtime scalars where optax's fold them in as
constants: that is the part of these ratios that is the design's, not the code's.

Run ``python -m benchmarks.compile_families``, or call :func:`table` for the Markdown.
"""

from __future__ import annotations

import optax

import optimlab

from . import _common as C

#: Families compared: the name in both libraries, and its keyword arguments.
FAMILIES: list[tuple[str, dict]] = [
    ("sgd", {"momentum": 0.9}),
    ("adam", {}),
    ("adamw", {}),
    ("nadam", {}),
    ("radam", {}),
    ("adamax", {}),
    ("amsgrad", {}),
    ("adagrad", {}),
    ("adadelta", {}),
    ("rmsprop", {}),
    ("lion", {}),
    ("adabelief", {}),
    ("yogi", {}),
    ("adan", {}),
    ("lamb", {}),
    ("novograd", {}),
]


def _seconds(tx, apply_updates, standard: bool, shapes) -> tuple[float, float]:
    """(trace and lower, compile) seconds of one jitted, donated step, the fastest of 2."""
    tries = [C.compile_seconds(tx, shapes, apply_updates, standard=standard) for _ in range(2)]
    return min(tries, key=sum)


def measure(leaves: int = 200) -> list[dict]:
    """One row per family: trace and compile seconds of both libraries."""
    shapes = C.many_leaves(leaves, 1000)
    rows = []
    for name, kw in FAMILIES:
        ol = _seconds(getattr(optimlab, name)(1e-3, **kw), optimlab.apply_updates, False, shapes)
        ox = _seconds(getattr(optax, name)(1e-3, **kw), optax.apply_updates, True, shapes)
        row = dict(name=name, ol_trace=ol[0], ol_compile=ol[1], ox_trace=ox[0], ox_compile=ox[1])
        row["ratio"] = sum(ol) / sum(ox)
        rows.append(row)
        print(
            f"compile {name:>10} {leaves} leaves: optimlab {sum(ol):.2f} s, optax {sum(ox):.2f} s "
            f"({row['ratio']:.2f}x)",
            flush=True,
        )
    return rows


def table(rows: list[dict] | None = None) -> str:
    """The Markdown table of :func:`measure`."""
    rows = measure() if rows is None else rows
    lines = [
        "| optimizer | optimlab trace+lower s | optimlab compile s | optax trace+lower s | "
        "optax compile s | total / optax |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['ol_trace']:.3f} | {r['ol_compile']:.3f} | "
            f"{r['ox_trace']:.3f} | {r['ox_compile']:.3f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
