"""A second jitted update compiles nothing on an 8-device mesh with explicit axes.

Runs tests/layout/_mesh_interop_worker.py in a subprocess (the device count is fixed when
JAX's backend starts): the full sweep over every registry case is ``slow``; the
cases whose state once changed sharding after one update run in CI.
"""

import pytest

from tests.layout._workers import run
from tests.registry import CASES

# adafactor's factors were made unsharded by init and sharded by update; noisy_sgd's
# key was made once, at construction.
QUICK = ("adafactor", "torch_adafactor", "noisy_sgd")
# Cases whose update JAX refuses to trace on explicit axes (a ShardingTypeError):
#   muon*, momo*: a contraction over a sharded dimension needs an explicit out_sharding;
#   agc_sgd, sparse_adam*: a select between differently sharded operands;
#   lbfgs_single: concatenates leaves of different shardings into one vector;
#   galore: an SVD of a matrix sharded on its non-batch dimensions.
REFUSED = (
    "muon",
    "muon_plain_wd",
    "momo",
    "momo_adam",
    "agc_sgd",
    "sparse_adam",
    "sparse_adam_maximize_bf16_moments",
    "lbfgs_single",
    "galore",
)


def _run(ids=()):
    return run("_mesh_interop_worker", *ids)


def _expected(case_id):
    return "refused" if case_id in REFUSED else "ok"


def test_second_update_compiles_nothing_on_explicit_mesh():
    results = _run(QUICK)
    assert sorted(results) == sorted(QUICK)
    for cid, result in results.items():
        assert result == "ok", f"{cid}: {result}"


@pytest.mark.slow  # every case on 8 host devices: about a minute
def test_second_update_compiles_nothing_on_explicit_mesh_every_case():
    results = _run()
    assert sorted(results) == sorted(c.id for c in CASES)
    bad = {cid: r for cid, r in results.items() if r != _expected(cid)}
    assert not bad, bad
