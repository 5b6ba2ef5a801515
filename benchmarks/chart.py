"""The PNG chart of a benchmark run: step time and compile time relative to optax."""

from __future__ import annotations

import pathlib

import numpy as np


def plot(step_rows, compile_rows, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    labels = [f"{r['optimizer']}\n{r['structure']}" for r in step_rows]
    x = np.arange(len(step_rows))
    w = 0.27
    for k, (key, name) in enumerate(
        (
            ("optimlab_ms", "optimlab per-leaf"),
            ("bucketed_ms", "optimlab bucketed"),
            ("floor_ms", "bandwidth floor"),
        )
    ):
        ax1.bar(x + (k - 1) * w, [r[key] / r["optax_ms"] for r in step_rows], w, label=name)
    ax1.axhline(1.0, color="k", lw=0.8, ls="--", label="optax")
    ax1.set_xticks(x, labels, fontsize=6, rotation=60, ha="right")
    ax1.set_ylabel("step time / optax (same run)")
    ax1.set_title("Step time, jitted and donated")
    ax1.legend(fontsize=7)
    leaves = [r["leaves"] for r in compile_rows]
    for key, name in (
        ("bucketed_s", "optimlab bucketed"),
        ("optimlab_s", "optimlab per-leaf"),
        ("optax_s", "optax"),
    ):
        ax2.plot(leaves, [r[key] for r in compile_rows], "o-", label=name)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("leaves (1,000 floats each)")
    ax2.set_ylabel("compile seconds")
    ax2.set_title("Compile time of clip_by_global_norm + adamw")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
