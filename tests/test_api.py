"""The public surface: every name documented, one public path each."""

import ast
import inspect
import pathlib

import optimlab

ROOT = pathlib.Path(__file__).resolve().parents[1]


def public_names(module):
    return sorted(n for n in dir(module) if not n.startswith("_"))


def test_every_public_name_has_a_docstring():
    missing = [
        n
        for n in public_names(optimlab)
        if not inspect.isbuiltin(getattr(optimlab, n))
        and not inspect.ismodule(getattr(optimlab, n))
        and not (getattr(optimlab, n).__doc__ or "").strip()
    ]
    assert not missing, missing


def test_init_reexports_explicitly():
    tree = ast.parse((ROOT / "optimlab" / "__init__.py").read_text())
    imports = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and node.level == 1
        and (node.module or "").startswith("_")
    ]
    assert imports
    for node in imports:
        for alias in node.names:
            assert alias.name == alias.asname, f"from .{node.module} import {alias.name}"


def test_modules_are_private():
    for path in (ROOT / "optimlab").glob("*.py"):
        assert path.name.startswith("_"), f"public module {path.name}: make it private"
