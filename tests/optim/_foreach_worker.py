"""The packed (default) and per-parameter (``foreach=False``) steps, compared bitwise.

Run in a subprocess by tests/optim/test_idioms.py with FMA contraction unavailable
(``XLA_FLAGS=--xla_cpu_max_isa=SSE4_2``, fixed when JAX's backend starts): without
it, the two paths run the same per-element arithmetic and must agree bit for bit.
Command-line arguments name the classes. Prints one JSON object ``{class:
"bitwise" | "not bucketed" | a description of the first difference}`` as its last
line.
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import jax
import jax.numpy as jnp
import numpy as np

from optimlab import optim
from optimlab.optim import _buckets


def run(cls: str, foreach: bool | None) -> tuple[list[np.ndarray], bool]:
    params = {
        "a": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3),
        "b": jnp.linspace(0.5, 2.0, 6).reshape(2, 3),
        "c": jnp.linspace(-2.0, 0.5, 4),
        "d": jnp.linspace(-0.3, 0.9, 37),
    }
    kwargs = {"lr": 0.01, "momentum": 0.9} if cls == "SGD" else {"lr": 0.01}
    opt = getattr(optim, cls)(params, foreach=foreach, **kwargs)
    bucketed = False
    for k in range(12):
        grads = jax.tree.map(lambda p, k=k: jnp.cos(p * (k + 1)), opt.params)
        if k in (2, 3):
            grads["c"] = None  # torch skips a parameter without a gradient
        if k == 4:
            opt.param_groups[0]["lr"] = 0.02
        opt.step(grads)
        if k == 1:
            bucketed = any(g.bucket is not None for g in opt._store.groups)
        if k == 5:
            opt.load_state_dict(opt.state_dict())
    leaves = jax.tree.leaves((opt.params, opt.state_dict()["state"]))
    return [np.asarray(x) for x in leaves], bucketed


def compare(cls: str) -> str:
    (packed, bucketed), (plain, _) = run(cls, None), run(cls, False)
    if not bucketed:
        return "not bucketed"
    for i, (a, b) in enumerate(zip(packed, plain, strict=True)):
        if not np.array_equal(a, b):
            return f"leaf {i} differs: max |a - b| = {np.max(np.abs(a - b))}"
    return "bitwise"


if __name__ == "__main__":
    # Set here, not at import: pytest imports this module to collect doctests, and the
    # threshold would then hold for every optimizer of that test process.
    _buckets.MIN_PARAMS = 2  # bucket a group of four parameters
    print(json.dumps({cls: compare(cls) for cls in sys.argv[1:]}))
