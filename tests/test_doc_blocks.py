"""Every Python block of README.md and docs/*.md runs as written.

Each page runs in a fresh interpreter (its blocks in order, in one namespace, in an
empty working directory), with JAX's default dtype promotion as a reader has it and
eight host devices, so the sharding examples run on one machine. Blocks that cannot
run are marked ``<!-- docs-test: no-run REASON -->`` (see ``tests/_doc_blocks.py``).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests import _doc_blocks

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _counts() -> tuple[int, int]:
    found = [b for p in PAGES for b in _doc_blocks.blocks(p.read_text())]
    return sum(b.run for b in found), len(found)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_blocks_run(page, tmp_path):
    if not any(b.run for b in _doc_blocks.blocks(page.read_text())):
        pytest.skip("no Python block to run")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", str(ROOT / "tests" / "_doc_blocks.py"), page],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["executed"] == sum(b.run for b in _doc_blocks.blocks(page.read_text()))


def test_blocks_not_run_say_why():
    for page in PAGES:
        for b in _doc_blocks.blocks(page.read_text()):
            assert b.run or b.reason, f"{page.name}:{b.line}: a no-run block needs a reason"
    executed, total = _counts()
    assert total > 0 and executed == total, (executed, total)  # every block runs


def test_the_parser_reads_markers_setup_and_doctests():
    text = (
        "intro\n\n```python\nx = 1\n```\n\n<!-- docs-test: no-run needs 2 hosts -->\n"
        "```python\nboom()\n```\n\n<!-- docs-test: setup\ny = 2\n-->\n```python\n"
        "z = x + y\n```\n\n```bash\nls\n```\n\n```python\n>>> x + y + z\n6\n```\n"
    )
    found = _doc_blocks.blocks(text)
    assert [b.run for b in found] == [True, False, True, True]
    assert found[1].reason == "needs 2 hosts"
    assert found[2].setup == "y = 2" and found[2].code == "z = x + y\n"
    assert found[0].line == 4


def test_a_failing_block_or_doctest_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2, 'wrong'\n```\n")
    with pytest.raises(AssertionError, match="wrong"):
        _doc_blocks.run_page(str(page))
    page.write_text("```python\n>>> 1 + 1\n3\n```\n")
    with pytest.raises(AssertionError, match="doctest failed"):
        _doc_blocks.run_page(str(page))
    page.write_text(
        "```python\n>>> 1 + 1\n2\n```\n<!-- docs-test: no-run a reason -->\n```python\nx\n```\n"
    )
    assert _doc_blocks.run_page(str(page)) == {"executed": 1, "skipped": 1}


def test_a_multiprocess_block_runs_in_every_process_and_any_failure_fails_it(tmp_path):
    page = tmp_path / "page.md"
    marker = (
        '<!-- docs-test: processes 2\nimport os\nrank = int(os.environ["DOCS_PROCESS_ID"])\n-->\n'
    )
    page.write_text(marker + "```python\nprint(rank)\n```\n")
    (block,) = _doc_blocks.blocks(page.read_text())
    assert block.processes == 2 and "DOCS_PROCESS_ID" in block.setup
    assert _doc_blocks.run_page(str(page)) == {"executed": 1, "skipped": 0}
    page.write_text(marker + "```python\nassert rank == 0, 'rank one fails'\n```\n")
    with pytest.raises(AssertionError, match="process 1"):
        _doc_blocks.run_page(str(page))
