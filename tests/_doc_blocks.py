"""Extracts and runs the Python code blocks of a markdown page, as a reader would.

Every fenced block whose language is ``python`` (or ``py``, ``pycon``) is code to
run. The blocks of one page run in order, in one namespace; a block whose first
line starts with ``>>>`` runs through :mod:`doctest` (its printed output is
checked). Two HTML comments, invisible in the rendered page, qualify the next
block:

- ``<!-- docs-test: no-run REASON -->``: the block is not run (a shell command, a
  multi-process setup); the reason is required and the block is counted.
- ``<!-- docs-test: setup`` on its own line, then code, then ``-->``: code run just
  before the next block, to define what the page assumes the reader already has
  (their ``params``, a ``loss``).

Run as ``python tests/_doc_blocks.py PAGE.md`` it executes the page and prints one
JSON line ``{"executed": n, "skipped": m}``; :mod:`tests.test_doc_blocks` runs every
page so, each in a fresh interpreter.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import re
import sys

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```\s*$", re.M | re.S
)
MARKER = re.compile(
    r"<!--\s*docs-test:\s*(?P<kind>no-run|setup)(?P<rest>(?:(?!-->).)*)-->\s*\Z", re.S
)
PYTHON = ("python", "py", "pycon")


@dataclasses.dataclass
class Block:
    """One fenced block of Python: its code, where it starts, and how to treat it."""

    code: str
    line: int
    run: bool
    reason: str = ""
    setup: str = ""


def blocks(text: str) -> list[Block]:
    """The Python blocks of a markdown text, in order, with their markers applied."""
    out = []
    for m in FENCE.finditer(text):
        if m.group("lang") not in PYTHON:
            continue
        line = text.count("\n", 0, m.start()) + 2  # the first line of code
        before = text[: m.start()].rstrip()
        block = Block(_dedent(m.group("body"), len(m.group("indent"))), line, True)
        marker = MARKER.search(before)  # a marker must end right before the fence
        if marker is not None:
            if marker.group("kind") == "no-run":
                block.run, block.reason = False, marker.group("rest").strip()
            else:
                block.setup = marker.group("rest").strip("\n")
        out.append(block)
    return out


def _dedent(code: str, indent: int) -> str:
    return "".join(
        line[indent:] if line[:indent].isspace() else line for line in code.splitlines(True)
    )


def run_page(path: str) -> dict[str, int]:
    """Runs the page's blocks in order in one namespace; raises on the first failure."""
    with open(path, encoding="utf-8") as f:
        found = blocks(f.read())
    namespace: dict[str, object] = {"__name__": "__main__"}
    executed = 0
    for b in found:
        if not b.run:
            continue
        if b.setup:
            exec(compile(b.setup, f"{path}:setup before line {b.line}", "exec"), namespace)
        if b.code.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(b.code, namespace, path, path, b.line - 1)
            flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            result = doctest.DocTestRunner(optionflags=flags).run(test, clear_globs=False)
            if result.failed:
                raise AssertionError(f"{path}, block at line {b.line}: doctest failed")
        else:
            # Line numbers in tracebacks are the page's.
            code = "\n" * (b.line - 1) + b.code
            exec(compile(code, path, "exec"), namespace)
        executed += 1
    return {"executed": executed, "skipped": sum(not b.run for b in found)}


if __name__ == "__main__":
    print(json.dumps(run_page(sys.argv[1])))
