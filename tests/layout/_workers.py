"""The mesh workers' shared pieces: how they are run, and the cases both sides list.

JAX fixes the number of host devices when its backend starts, so the checks on
8 devices run in a fresh process; each worker prints one JSON object as its last
line. Importing this module starts nothing.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Representative cases that also get a compiled init and update on the mesh.
JIT_CASES = (
    "adam",
    "sgd_momentum",
    "lookahead_adam",
    "muon",
    "adafactor_momentum_wd",
    "partition_two_groups",
)


def run(worker: str, *args: str) -> dict[str, Any]:
    """Runs ``tests/layout/<worker>.py`` with ``args`` on CPU; returns its JSON result."""
    proc = subprocess.run(
        [sys.executable, str(pathlib.Path(__file__).with_name(f"{worker}.py")), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
