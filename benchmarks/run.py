"""``make bench``: step, compile, dispatch and memory figures against optax, torch and a floor.

Every time is a median over repeated jitted, buffer-donated steps. Ratios are
taken against numbers measured in the same run (host memory bandwidth drifts
between runs), and the "floor" is one hand-written fused pass over the bytes the
step must touch. Results go to stdout, ``benchmarks/RESULTS.md`` and
``benchmarks/results.png``. ``--quick`` runs a short subset.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib

from . import _common as C
from . import (
    accumulate_memory,
    chart,
    compile_families,
    compile_time,
    dispatch,
    memory,
    optim_compile,
    optim_step,
    steps,
    targets,
    trace_calls,
    zero_terms,
)

HERE = pathlib.Path(__file__).resolve().parent
PER_LEAF_MAX = 2000  # compile per-leaf clip+adamw (optimlab default, optax) up to this many leaves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="adamw and clip+adamw only, no torch, compile at 200 leaves",
    )
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    print(f"machine: {C.machine()}")
    if args.quick:
        structures, optimizers = ["1 leaf x 10M", "2,000 leaves x 1,000"], ["adamw", "clip+adamw"]
        leaf_counts, n_mem = [200], 5_000_000
    else:
        structures, optimizers = list(C.STRUCTURES), list(steps.OPTIMIZERS)
        leaf_counts, n_mem = [200, 2000, 5000], 50_000_000
    step_rows = steps.step_table(structures, optimizers, with_torch=not args.quick)
    compile_rows = compile_time.compile_table(leaf_counts, PER_LEAF_MAX)
    families = [] if args.quick else compile_families.measure()
    dispatch_rows = dispatch.dispatch_table()
    memory_rows = memory.memory_table(n_mem)
    acc = accumulate_memory.table()
    shell = optim_step.table()
    calls = trace_calls.measure()
    zero = zero_terms.table()
    first = optim_compile.measure((500,) if args.quick else (500, 2000))
    met = targets.targets(step_rows, compile_rows, dispatch_rows, memory_rows, n_mem)
    met += targets.more_targets(step_rows, compile_rows, calls, first)
    for t, fig, ok in met:
        print(f"target {'MET' if ok else 'not met'}: {t}: {fig}")
    md = [
        "# Benchmark results\n",
        f"Machine: {C.machine()}  ",
        f"Date: {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}. "
        "Medians of jitted, donated steps; every ratio is within this run. `bucketed` is "
        "`optimlab.bucketed(tx)` (leaves under 16,384 elements packed per dtype).\n",
        "## Targets\n",
        targets.markdown(met),
        "",
        "## Step time\n",
        steps.markdown(step_rows),
        "",
        "## Clipping cost: clip_by_global_norm + adamw against adamw\n",
        steps.clip_markdown(step_rows),
        "",
        "## Compile time of clip_by_global_norm + adamw (leaves of 1,000 floats)\n",
        compile_time.markdown(compile_rows, PER_LEAF_MAX),
        "",
        "## Trace and compile time of each family's step (200 leaves of 1,000 floats)\n",
        compile_families.table(families) if families else "(not in --quick)",
        "",
        "## Dispatch of a one-leaf step\n",
        dispatch.markdown(dispatch_rows),
        "",
        "## Memory of donated steps\n",
        memory.markdown(memory_rows, n_mem),
        "",
        "## Gradient accumulation memory\n",
        acc,
        "",
        "## optimlab.optim shell: optim.AdamW.step against the functional step\n",
        shell,
        "",
        "## optimlab.optim first step: trace and compile against optax\n",
        optim_compile.table(first),
        "",
        "## Python calls while tracing one update\n",
        trace_calls.table(calls),
        "",
        "## Zero-valued terms: carried (built at 0.0) against left out (None)\n",
        zero,
        "",
        "![step and compile time](results.png)",
        "",
    ]
    args.out.write_text("\n".join(md) + "\n")
    chart.plot(step_rows, compile_rows, args.out.with_name("results.png"))
    print(f"\nwrote {args.out} and {args.out.with_name('results.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
