"""The performance targets, each marked met or not with the figure measured in this run."""

from __future__ import annotations

import math


def _row(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _fmt(x: float, spec: str) -> str:
    return "not measured" if x is None or math.isnan(x) else format(x, spec)


def _compile_targets(compile_rows) -> list[tuple[str, str, bool]]:
    out = []
    c2000 = _row(compile_rows, leaves=2000)
    if c2000 is not None and not math.isnan(c2000["optax_s"]):
        ratio = c2000["bucketed_s"] / c2000["optax_s"]
        fig = f"{c2000['bucketed_s']:.2f} s vs {c2000['optax_s']:.2f} s = {ratio:.3f}x"
        out.append(("compile clip+adamw, 2,000 leaves: <= 0.1x optax", fig, ratio <= 0.1))
    c5000 = _row(compile_rows, leaves=5000)
    if c5000 is not None:
        s = c5000["bucketed_s"]
        out.append(("compile clip+adamw, 5,000 leaves: <= 10 s", f"{s:.2f} s", s <= 10))
        out.append(("(stretch) 5,000 leaves under 1 s", f"{s:.2f} s", s < 1))
    return out


def _step_targets(step_rows) -> list[tuple[str, str, bool]]:
    out = []

    def ratio_of(optimizer, structure, key):
        r = _row(step_rows, optimizer=optimizer, structure=structure)
        return None if r is None else r[key] / r["optax_ms"]

    for structure in ("1 leaf x 10M", "~200 leaves, ~10M"):
        for key, name in (("optimlab_ms", "per-leaf"), ("bucketed_ms", "bucketed")):
            ratio = ratio_of("adamw", structure, key)
            if ratio is not None:
                target = f"adamw step, {structure} ({name}): <= 1.0x optax"
                out.append((target, f"{ratio:.2f}x", ratio <= 1))
    ratio = ratio_of("adamw", "2,000 leaves x 1,000", "bucketed_ms")
    if ratio is not None:
        out.append(
            ("adamw step, 2,000 leaves (bucketed): <= 0.5x optax", f"{ratio:.2f}x", ratio <= 0.5)
        )
        out.append(("(stretch) 2,000 leaves <= 0.25x optax", f"{ratio:.2f}x", ratio <= 0.25))
    return out


def _clip_targets(step_rows) -> list[tuple[str, str, bool]]:
    out = []
    for structure in ("1 leaf x 10M", "~200 leaves, ~10M", "2,000 leaves x 1,000"):
        clip = _row(step_rows, optimizer="clip+adamw", structure=structure)
        base = _row(step_rows, optimizer="adamw", structure=structure)
        if clip is None or base is None:
            continue
        for key, name in (("optimlab_ms", "per-leaf"), ("bucketed_ms", "bucketed")):
            ratio = clip[key] / base[key]
            target = f"clip+adamw <= 1.15x adamw, {structure} ({name})"
            out.append((target, f"{ratio:.2f}x", ratio <= 1.15))
    return out


def targets(
    step_rows, compile_rows, dispatch_rows, memory_rows, n_mem: int
) -> list[tuple[str, str, bool]]:
    """``(target, figure, met)`` for every target that this run measured."""
    out = _compile_targets(compile_rows) + _step_targets(step_rows) + _clip_targets(step_rows)
    d = _row(dispatch_rows, name="optimlab.adam (hyperparams in state)")
    if d is not None:
        fig = f"{d['us']:.1f} us = {d['ratio']:.2f}x"
        out.append(("dispatch of a one-leaf step: <= 1.1x optax.adam", fig, d["ratio"] <= 1.1))
    for r in memory_rows:
        if r["name"].startswith("optimlab"):
            frac = r["temp"] / r["floor"]
            target = (
                f"temporaries of {r['name']} at {n_mem / 1e6:g}M params: < 5% of params+grads+state"
            )
            out.append((target, f"{frac:.2%}", frac < 0.05))
    return out


def more_targets(step_rows, compile_rows, call_rows, first_rows) -> list[tuple[str, str, bool]]:
    """Targets of the default (per-leaf) path, of tracing, and of the optim shell's first step."""
    out: list[tuple[str, str, bool]] = []
    for leaves, limit in ((200, 0.8), (2000, 1.0)):
        r = _row(compile_rows, leaves=leaves)
        if r is not None and not math.isnan(r["optax_s"]):
            ratio = r["optimlab_s"] / r["optax_s"]
            fig = f"{r['optimlab_s']:.2f} s vs {r['optax_s']:.2f} s = {ratio:.2f}x"
            out.append(
                (
                    f"compile clip+adamw, {leaves} leaves, default path: <= {limit}x optax",
                    fig,
                    ratio <= limit,
                )
            )
    r = _row(step_rows, optimizer="adamw", structure="2,000 leaves x 1,000")
    if r is not None:
        ratio = r["optimlab_ms"] / r["optax_ms"]
        out.append(
            ("adamw step, 2,000 leaves, default path: <= 1.0x optax", f"{ratio:.2f}x", ratio <= 1.0)
        )
    r = _row(call_rows, name="optimlab.adamw")
    if r is not None:
        out.append(
            ("Python calls tracing one adamw update: <= 45", str(r["calls"]), r["calls"] <= 45)
        )
    for r in first_rows:
        ratio = r["shell_first"] / r["optax_first"]
        out.append(
            (
                f"first optim.AdamW.step, {r['leaves']} leaves: <= 0.5x optax",
                f"{r['shell_first']:.2f} s vs {r['optax_first']:.2f} s = {ratio:.2f}x",
                ratio <= 0.5,
            )
        )
        if "shell_step" in r:
            ratio = r["shell_step"] / r["optax_step"]
            out.append(
                (
                    f"steady optim.AdamW.step, {r['leaves']} leaves: <= 0.8x optax",
                    f"{ratio:.2f}x",
                    ratio <= 0.8,
                )
            )
    return out


def markdown(rows: list[tuple[str, str, bool]], gpu: bool = False) -> str:
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {fig} | {'yes' if ok else 'no'} |" for t, fig, ok in rows]
    if not gpu:
        lines.append(
            "| GPU: 2,000 leaves >= 5x faster than per-leaf optax | no GPU in this run | - |"
        )
    return "\n".join(lines)
