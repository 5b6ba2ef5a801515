"""Step time of jitted, donated steps: optimlab (per-leaf and bucketed), optax, torch, floor."""

from __future__ import annotations

import sys

import jax
import optax

import optimlab

from . import _common as C


def _torch(name, params, fused, **kw):
    import torch

    cls = getattr(torch.optim, name)
    return cls(params, fused=True, **kw) if fused else cls(params, foreach=True, **kw)


def _clip(tx, lib):
    return lib.chain(lib.clip_by_global_norm(1.0), tx)


OPTIMIZERS = {
    # name: (optimlab factory, optax factory, torch factory or None, bytes/param for the floor)
    "adam": (
        lambda: optimlab.adam(1e-3),
        lambda: optax.adam(1e-3),
        lambda fused: lambda ps: _torch("Adam", ps, fused, lr=1e-3),
        28,
    ),
    "adamw": (
        lambda: optimlab.adamw(1e-3),
        lambda: optax.adamw(1e-3, weight_decay=1e-2),
        lambda fused: lambda ps: _torch("AdamW", ps, fused, lr=1e-3),
        28,
    ),
    "clip+adamw": (
        lambda: _clip(optimlab.adamw(1e-3), optimlab),
        lambda: _clip(optax.adamw(1e-3, weight_decay=1e-2), optax),
        None,
        28,
    ),
    "sgd-momentum": (
        lambda: optimlab.sgd(1e-3, momentum=0.9),
        lambda: optax.sgd(1e-3, momentum=0.9),
        lambda fused: lambda ps: _torch("SGD", ps, fused, lr=1e-3, momentum=0.9),
        20,
    ),
}


def step_table(structures, optimizers, with_torch=True) -> list[dict]:
    rows = []
    for sname in structures:
        shapes = C.STRUCTURES[sname]()
        n = C.n_params(shapes)
        for oname in optimizers:
            ours, theirs, torch_make, nbytes = OPTIMIZERS[oname]
            runners = {"floor": C.floor_runner(n, nbytes)}
            c_ol, runners["optimlab"] = C.jax_step_runner(
                ours(), shapes, apply_updates=optimlab.apply_updates
            )
            c_bk, runners["bucketed"] = C.jax_step_runner(
                optimlab.bucketed(ours()), shapes, apply_updates=optimlab.apply_updates
            )
            with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
                c_ox, runners["optax"] = C.jax_step_runner(
                    theirs(), shapes, apply_updates=optax.apply_updates
                )
            # In turns: the ratios between these compare times taken in the same rounds.
            ms = {k: v * 1e3 for k, v in C.time_interleaved(runners).items()}
            del runners
            # torch alone, after: its CPU threads keep spinning after a step, which
            # would slow whatever ran next in turns with it.
            for label, fused in (("torch_foreach", False), ("torch_fused", True)):
                if with_torch and torch_make is not None:
                    try:
                        run = C.torch_step_runner(torch_make(fused), shapes)
                        ms[label] = C.time_loop(run) * 1e3
                    except Exception as e:  # e.g. fused unsupported for an optimizer
                        print(f"  ({oname} {label}: {type(e).__name__})", file=sys.stderr)
            row = dict(
                structure=sname,
                leaves=len(shapes),
                params=n,
                optimizer=oname,
                floor_ms=ms["floor"],
                optimlab_ms=ms["optimlab"],
                bucketed_ms=ms["bucketed"],
                optax_ms=ms["optax"],
                optimlab_compile_s=c_ol,
                bucketed_compile_s=c_bk,
                optax_compile_s=c_ox,
                torch_foreach_ms=ms.get("torch_foreach", float("nan")),
                torch_fused_ms=ms.get("torch_fused", float("nan")),
            )
            rows.append(row)
            print(
                f"{oname:>13} | {sname:>20} | floor {row['floor_ms']:7.2f} | optimlab "
                f"{row['optimlab_ms']:7.2f} | bucketed {row['bucketed_ms']:7.2f} | optax "
                f"{row['optax_ms']:7.2f} | torch fused {row['torch_fused_ms']:7.2f} foreach "
                f"{row['torch_foreach_ms']:7.2f} ms",
                flush=True,
            )
    return rows


def markdown(rows) -> str:
    lines = [
        "| optimizer | structure | floor ms | optimlab ms | bucketed ms | optax ms | "
        "torch fused ms | torch foreach ms | optimlab / optax | bucketed / optax | "
        "bucketed / floor | optax / floor |",
        "|" + "---|" * 12,
    ]
    for r in rows:
        lines.append(
            f"| {r['optimizer']} | {r['structure']} | {r['floor_ms']:.2f} | "
            f"{r['optimlab_ms']:.2f} | {r['bucketed_ms']:.2f} | {r['optax_ms']:.2f} | "
            f"{r['torch_fused_ms']:.2f} | {r['torch_foreach_ms']:.2f} | "
            f"{r['optimlab_ms'] / r['optax_ms']:.2f} | {r['bucketed_ms'] / r['optax_ms']:.2f} | "
            f"{r['bucketed_ms'] / r['floor_ms']:.2f} | {r['optax_ms'] / r['floor_ms']:.2f} |"
        )
    return "\n".join(lines)


def clip_markdown(rows) -> str:
    """clip+adamw against adamw, per structure and implementation (same run)."""
    by = {(r["structure"], r["optimizer"]): r for r in rows}
    lines = [
        "| structure | optimlab clip / adamw | bucketed clip / adamw | optax clip / adamw |",
        "|---|---|---|---|",
    ]
    for (sname, oname), r in by.items():
        base = by.get((sname, "adamw"))
        if oname != "clip+adamw" or base is None:
            continue
        lines.append(
            f"| {sname} | {r['optimlab_ms'] / base['optimlab_ms']:.2f} | "
            f"{r['bucketed_ms'] / base['bucketed_ms']:.2f} | "
            f"{r['optax_ms'] / base['optax_ms']:.2f} |"
        )
    return "\n".join(lines)
