"""A second jitted update compiles nothing on an 8-device explicit mesh, for every case.

Run in a subprocess by tests/layout/test_sharding_interop.py (the device count is fixed
when JAX's backend starts). For each registry case: eager ``init`` of sharded
params, then two calls of ``jax.jit(update)``; the second must hit the cache,
which it does only if every state leaf keeps its type and sharding through
``update`` (XLA compilations are counted through ``jax.monitoring``). Command-line
arguments, if any, select case ids. Prints one JSON object ``{case id: "ok" |
traceback}`` as its last line.
"""

from __future__ import annotations

import json
import pathlib
import sys
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

# Imported first: it asks for 8 host devices before JAX starts, makes warnings
# errors and turns on strict dtype promotion.
from tests.layout._mesh_worker import _mesh, _sharded_params

# isort: split
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from tests.registry import CASES

COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


def check(case):
    tx = case.make()
    mesh = _mesh(explicit=True)
    with jax.set_mesh(mesh):
        params = _sharded_params(mesh)
        # A replicated vector's spec as jitted code writes it, P(None) (P() is equivalent,
        # but another cache key): the check is about the optimizer, not that spelling.
        params["d"] = jax.device_put(params["d"], NamedSharding(mesh, P(None)))
        grads = jax.tree.map(lambda p: jax.device_put(jax.numpy.cos(p) + 0.1, p.sharding), params)
        state = tx.init(params)
        step = jax.jit(tx.update)
        _, state1 = step(grads, state, params)
        before = len(COMPILES)
        step(grads, state1, params)
        assert len(COMPILES) == before, _changed(state, state1)


def _changed(before, after):
    """The state leaves whose type or sharding the update changed."""
    out = []
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(before)[0], jax.tree.leaves(after), strict=True
    ):
        ta, tb = jax.typeof(a), jax.typeof(b)
        if ta != tb or a.sharding != b.sharding:
            out.append(f"{jax.tree_util.keystr(path)}: {ta} {a.sharding} -> {tb} {b.sharding}")
    return "the second call recompiled; changed leaves: " + "; ".join(out)


def main():
    assert jax.device_count() == 8, jax.devices()
    results = {}
    wanted = set(sys.argv[1:])
    for case in CASES:
        if wanted and case.id not in wanted:
            continue
        try:
            check(case)
            results[case.id] = "ok"
        except Exception as e:
            # JAX refuses some operations on explicit axes while tracing; the parent
            # test lists the cases where that is expected (not public: by name).
            refused = type(e).__name__ == "ShardingTypeError"
            results[case.id] = "refused" if refused else traceback.format_exc()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
