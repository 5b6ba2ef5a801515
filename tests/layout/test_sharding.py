"""Optimizer state on a device mesh: 8 host devices, in a subprocess (tests/layout/_mesh_worker.py).

JAX fixes the number of host devices when its backend starts, so the checks run in
a child process started with ``--xla_force_host_platform_device_count=8``; each
check is reported here as its own test.
"""

import pytest

from tests.layout._workers import JIT_CASES, run
from tests.registry import CASES

NAMES = (
    [f"inherit/{c.id}" for c in CASES]
    + [f"jit/{c}" for c in JIT_CASES]
    + [
        "auto_jit_without_out_shardings_replicates",
        "zero1_layout",
        "zero1_training_matches_single_device",
        "checkpoint_restore_on_mesh",
    ]
)


@pytest.fixture(scope="module")
def results():
    return run("_mesh_worker")


def test_every_check_ran(results):
    assert sorted(results) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_on_mesh(results, name):
    assert results[name] == "ok", results[name]
