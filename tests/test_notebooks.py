"""Every notebook in notebooks/ runs from top to bottom without error, within its time budget.

The notebooks are stored without outputs. Each is executed by nbclient in a fresh
kernel running this interpreter (the project's virtual environment), from the
notebooks/ directory so that ``plotting.py`` is importable. Figures are rendered
by matplotlib's inline backend, which draws with Agg; outputs are discarded.
"""

import gc
import json
import pathlib
import sys
import time
import warnings

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")
manager = pytest.importorskip("jupyter_client.manager")

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
LIMIT_S = 60  # the hard limit per notebook on 2 CPU cores (each aims at ~30 s)


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec for this very interpreter, so no user-level kernel is picked up."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / "optimlab-test"
    spec_dir.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "optimlab tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return kernelspec.KernelSpecManager(kernel_dirs=[str(root)])


def test_notebooks_exist():
    names = {p.name for p in PATHS}
    expected = {
        "quickstart.ipynb",
        "schedules.ipynb",
        "from_pytorch.ipynb",
        "swa.ipynb",
        "sweeps.ipynb",
    }
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, kernel_specs):
    nb = nbformat.read(path, as_version=4)
    km = manager.KernelManager(kernel_name="optimlab-test", kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=LIMIT_S,
        startup_timeout=LIMIT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    try:
        client.execute()  # raises CellExecutionError, with the traceback, when a cell fails
    finally:
        elapsed = time.perf_counter() - start
        del client, km
        with warnings.catch_warnings():
            # jupyter_client's zmq sockets are closed by garbage collection, which warns.
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    assert elapsed < LIMIT_S, f"{path.name} took {elapsed:.0f} s (limit {LIMIT_S} s)"
