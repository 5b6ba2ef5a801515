"""``make bench``: optimizer step time and compile time against optax, torch and a floor.

Every figure is a median over repeated jitted, buffer-donated steps. Ratios are
taken against numbers measured in the same run (host memory bandwidth drifts
between runs), and the "floor" is one hand-written fused pass over the bytes the
step must touch. Results go to stdout and to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import sys

import jax
import optax

import optimlab

from . import _common as C

HERE = pathlib.Path(__file__).resolve().parent

OPTIMIZERS = {
    # name: (optimlab factory, optax factory, torch factory, bytes per param for the floor)
    "adam": (lambda: optimlab.adam(1e-3), lambda: optax.adam(1e-3),
             lambda fused: (lambda ps: _torch("Adam", ps, fused, lr=1e-3)), 28),
    "adamw": (lambda: optimlab.adamw(1e-3), lambda: optax.adamw(1e-3, weight_decay=1e-2),
              lambda fused: (lambda ps: _torch("AdamW", ps, fused, lr=1e-3)), 28),
    "sgd-momentum": (lambda: optimlab.sgd(1e-3, momentum=0.9),
                     lambda: optax.sgd(1e-3, momentum=0.9),
                     lambda fused: (lambda ps: _torch("SGD", ps, fused, lr=1e-3, momentum=0.9)),
                     20),
}


def _torch(name, params, fused, **kw):
    import torch

    cls = getattr(torch.optim, name)
    return cls(params, fused=True, **kw) if fused else cls(params, foreach=True, **kw)


def step_table(structures, optimizers, with_torch=True) -> list[dict]:
    rows = []
    for sname in structures:
        shapes = C.STRUCTURES[sname]()
        n = C.n_params(shapes)
        floors = {}
        for oname in optimizers:
            ours, theirs, torch_make, nbytes = OPTIMIZERS[oname]
            if nbytes not in floors:
                floors[nbytes] = C.floor_timer(n, nbytes)
            floor = floors[nbytes]
            c_ol, t_ol = C.jax_step_timer(ours(), shapes, apply_updates=optimlab.apply_updates)
            c_ox, t_ox = C.jax_step_timer(theirs(), shapes, apply_updates=optax.apply_updates)
            row = dict(structure=sname, leaves=len(shapes), params=n, optimizer=oname,
                       floor_ms=floor * 1e3, optimlab_ms=t_ol * 1e3, optax_ms=t_ox * 1e3,
                       optimlab_compile_s=c_ol, optax_compile_s=c_ox)
            if with_torch:
                for label, fused in (("torch_foreach_ms", False), ("torch_fused_ms", True)):
                    try:
                        row[label] = C.torch_step_timer(torch_make(fused), shapes) * 1e3
                    except Exception as e:  # e.g. fused unsupported for an optimizer
                        row[label] = float("nan")
                        print(f"  ({oname} {label}: {type(e).__name__})", file=sys.stderr)
            rows.append(row)
            print(_fmt_row(row), flush=True)
    return rows


def _fmt_row(r) -> str:
    t = f"{r['optimizer']:>13} | {r['structure']:>20} | floor {r['floor_ms']:8.2f} ms | "
    t += f"optimlab {r['optimlab_ms']:8.2f} ms ({r['optimlab_ms'] / r['floor_ms']:5.2f}x floor, "
    t += f"{r['optimlab_ms'] / r['optax_ms']:4.2f}x optax) | optax {r['optax_ms']:8.2f} ms"
    if "torch_fused_ms" in r:
        t += f" | torch fused {r['torch_fused_ms']:8.2f} ms foreach {r['torch_foreach_ms']:8.2f} ms"
    return t


def markdown(rows) -> str:
    head = ("| optimizer | structure | floor ms | optimlab ms | optax ms | torch fused ms | "
            "torch foreach ms | optimlab / floor | optax / floor | optimlab / optax | "
            "compile optimlab s | compile optax s |\n|" + "---|" * 12)
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['optimizer']} | {r['structure']} | {r['floor_ms']:.2f} | {r['optimlab_ms']:.2f} | "
            f"{r['optax_ms']:.2f} | {r.get('torch_fused_ms', float('nan')):.2f} | "
            f"{r.get('torch_foreach_ms', float('nan')):.2f} | "
            f"{r['optimlab_ms'] / r['floor_ms']:.2f} | {r['optax_ms'] / r['floor_ms']:.2f} | "
            f"{r['optimlab_ms'] / r['optax_ms']:.2f} | {r['optimlab_compile_s']:.2f} | "
            f"{r['optax_compile_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="adam only, no torch")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    structures = list(C.STRUCTURES)
    optimizers = ["adam"] if args.quick else list(OPTIMIZERS)
    print(f"machine: {C.machine()}")
    rows = step_table(structures, optimizers, with_torch=not args.quick)
    md = [f"# Benchmark results\n\nMachine: {C.machine()}  ",
          f"Date: {datetime.date.today().isoformat()}. Medians of jitted, donated steps; ratios "
          "within this run.\n", "## Step time\n", markdown(rows), ""]
    args.out.write_text("\n".join(md) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
