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
- ``<!-- docs-test: processes N`` on its own line, then code, then ``-->``: the next
  block is a whole multi-process program. It runs on its own (not in the page's
  namespace) in N fresh interpreters at once, each with 4 host devices and JAX's
  CPU collectives, after the code of the marker, which reads what a cluster
  launcher would give each process from ``DOCS_COORDINATOR_ADDRESS``,
  ``DOCS_NUM_PROCESSES`` and ``DOCS_PROCESS_ID``. Every process must succeed.

Run as ``python tests/_doc_blocks.py PAGE.md`` it executes the page and prints one
JSON line ``{"executed": n, "skipped": m}``; :mod:`tests.test_doc_blocks` runs every
page so, each in a fresh interpreter.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```\s*$", re.M | re.S
)
MARKER = re.compile(
    r"<!--\s*docs-test:\s*(?P<kind>no-run|setup|processes)(?P<rest>(?:(?!-->).)*)-->\s*\Z",
    re.S,
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
    processes: int = 1


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
            kind, rest = marker.group("kind"), marker.group("rest")
            if kind == "no-run":
                block.run, block.reason = False, rest.strip()
            elif kind == "processes":
                count, _, setup = rest.partition("\n")
                block.processes, block.setup = int(count), setup
            else:
                block.setup = rest.strip("\n")
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
        if b.processes > 1:
            run_processes(b, path)
            executed += 1
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


_EPILOGUE = """
from jax.experimental import multihost_utils as _mh
_mh.sync_global_devices("docs-test: end of program")
import os as _os, sys as _sys
_sys.stdout.flush()
_sys.stderr.flush()
_os._exit(0)
"""


def run_processes(block: Block, path: str, timeout: float = 240) -> None:
    """Runs a multi-process block in ``block.processes`` interpreters; raises unless all succeed."""
    with socket.socket() as sock:  # a free port for the coordinator
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    program = block.setup + "\n"  # then blank lines, so tracebacks give the page's lines
    program += "\n" * max(block.line - 1 - program.count("\n"), 0) + block.code
    # Once the program has run (and every process has reached its end), skip the
    # interpreter's teardown: there, JAX's CPU collectives (gloo) sometimes wait
    # about 150 s for their peer before the process exits.
    program += _EPILOGUE
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "program.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(program)
        env = {
            **os.environ,
            "JAX_PLATFORMS": "cpu",
            "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
            "DOCS_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
            "DOCS_NUM_PROCESSES": str(block.processes),
        }

        logs = [os.path.join(tmp, f"process{i}.log") for i in range(block.processes)]

        def start(i: int) -> subprocess.Popen[bytes]:
            with open(logs[i], "wb") as log:  # a file, not a pipe: no process blocks on it
                return subprocess.Popen(
                    [sys.executable, script],
                    env={**env, "DOCS_PROCESS_ID": str(i)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

        def tail(i: int) -> str:
            with open(logs[i], encoding="utf-8", errors="replace") as f:
                lines = [x for x in f.read().splitlines() if not x.startswith("[Gloo]")]
            return "\n".join(lines)[-3000:]

        # Process 0 hosts the coordinator. The others start once it listens: a client
        # that finds no coordinator backs off (gRPC, up to minutes on a loaded machine).
        procs = [start(0)]
        deadline = time.monotonic() + timeout
        while procs[0].poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        procs += [start(i) for i in range(1, block.processes)]
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                for other in procs:
                    other.kill()
                outputs = "\n".join(f"--- process {i}:\n{tail(i)}" for i in range(len(procs)))
                raise AssertionError(
                    f"{path}, block at line {block.line}: timed out after {timeout} s\n{outputs}"
                ) from None
        for i, proc in enumerate(procs):
            if proc.returncode:
                raise AssertionError(f"{path}, block at line {block.line}, process {i}:\n{tail(i)}")


if __name__ == "__main__":
    print(json.dumps(run_page(sys.argv[1])))
