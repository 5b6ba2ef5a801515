"""Optimizer state on a device mesh: 8 host devices, in a subprocess (tests/layout/_mesh_worker.py).

JAX fixes the number of host devices when its backend starts, so the checks run in
a child process started with ``--xla_force_host_platform_device_count=8``; each
check is reported here as its own test.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.registry import CASES

ROOT = pathlib.Path(__file__).resolve().parents[2]
JIT_CASES = (
    "adam",
    "sgd_momentum",
    "lookahead_adam",
    "muon",
    "adafactor_momentum_wd",
    "partition_two_groups",
)
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
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "layout" / "_mesh_worker.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_check_ran(results):
    assert sorted(results) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_on_mesh(results, name):
    assert results[name] == "ok", results[name]
