"""The package's layers import only downward, with no cycles and no private names across families.

The rule, read from the source with :mod:`ast` (so it also covers imports inside
functions): each private subpackage may import only the subpackages listed for it
below. ``schedules`` and ``checkpoint`` sit beside the layers and use only the
core. Inside the two family layers, a module may import another family's public
names (``scale_by_adam``) but never its private helpers; what two families share
belongs in a lower layer.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "optimlab"

# Each part of the package, bottom to top, with the parts it may import.
ALLOWED = {
    "_core": {"_core"},
    "schedules": {"_core", "schedules"},
    "checkpoint": {"_core", "checkpoint"},
    "_wrappers": {"_core", "_wrappers"},
    "_transforms": {"_core", "_wrappers", "_transforms"},
    "_layout": {"_core", "_wrappers", "_transforms", "_layout"},
    "_optimizers": {"_core", "_wrappers", "_transforms", "_optimizers"},
    "_contrib": {"_core", "_wrappers", "_transforms", "_optimizers", "_contrib"},
    # The namespace also makes its public subpackages attributes (``optimlab.optim``
    # after ``import optimlab``); optim itself never imports the namespace back.
    "optimlab": {
        "optim",
        "_core",
        "_wrappers",
        "_transforms",
        "_layout",
        "_optimizers",
        "_contrib",
        "schedules",
        "checkpoint",
    },
    "optim": {
        "_core",
        "_wrappers",
        "_transforms",
        "_layout",
        "_optimizers",
        "_contrib",
        "schedules",
        "checkpoint",
        "optim",
    },
    "demo": {"optimlab", "schedules", "checkpoint", "optim", "demo"},
}
FAMILY_LAYERS = {"_optimizers", "_contrib"}


def _modules():
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _part(module: str) -> str:
    """The layer a module belongs to: its first subpackage, or "optimlab" for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "optimlab"


def _imports(module: str):
    """``(target module, imported name or None, line)`` for every relative or optimlab import."""
    f = MODULES[module]
    pkg = module if f.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("optimlab"):
                    yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("optimlab"):
                target = node.module
            else:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:
                    yield sub, None, node.lineno  # a module imported by name
                else:
                    yield target, a.name, node.lineno


EDGES = {m: sorted(set(_imports(m)), key=lambda e: (e[0], e[1] or "", e[2])) for m in MODULES}


def test_layout_has_the_documented_layers():
    parts = {_part(m) for m in MODULES}
    assert parts == set(ALLOWED), f"unlisted or missing layers: {parts ^ set(ALLOWED)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downward(module):
    here = _part(module)
    bad = [
        f"line {line}: {target}"
        for target, _, line in EDGES[module]
        if _part(target) not in ALLOWED[here] and target != "optimlab"
    ]
    bad += [
        f"line {line}: the public namespace optimlab"
        for target, _, line in EDGES[module]
        if target == "optimlab" and "optimlab" not in ALLOWED[here]
    ]
    assert not bad, f"{module} ({here}) imports a higher or sideways layer: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in FAMILY_LAYERS))
def test_no_private_helpers_across_families(module):
    bad = [
        f"line {line}: {target}.{name}"
        for target, name, line in EDGES[module]
        if name is not None
        and name.startswith("_")
        and target != module
        and _part(target) in FAMILY_LAYERS
    ]
    assert not bad, f"{module} imports another family's private helper: {bad}"


def test_no_import_cycles():
    graph = {m: {t for t, _, _ in EDGES[m] if t in MODULES and t != m} for m in MODULES}
    # A package's __init__ importing its own modules is how re-exports work; a module
    # importing its package's __init__ back would close a cycle through it.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_rule_catches_an_upward_import(tmp_path, monkeypatch):
    # The rule itself can fail: a core module importing a family is reported.
    fake = "optimlab._core._fake"
    f = tmp_path / "_fake.py"
    f.write_text("from .._optimizers._adam import adam\n")
    monkeypatch.setitem(MODULES, fake, f)
    monkeypatch.setitem(EDGES, fake, list(_imports(fake)))
    with pytest.raises(AssertionError, match="imports a higher or sideways layer"):
        test_imports_only_downward(fake)


#: Modules still over 500 lines, each with its length today: each may only shrink,
#: and leaves this table when it is split by concept. Every other module stays under.
OVER_500: dict[str, int] = {}


def test_no_module_over_500_lines():
    lengths = {m: len(f.read_text().splitlines()) for m, f in MODULES.items()}
    long = {m: n for m, n in lengths.items() if n > 500 and m not in OVER_500}
    assert not long, f"modules over 500 lines (split them by concept): {long}"
    grown = {m: (lengths.get(m), cap) for m, cap in OVER_500.items() if lengths.get(m, 0) > cap}
    assert not grown, f"listed long modules grew (length, listed): {grown}"
    done = [m for m, cap in OVER_500.items() if lengths.get(m, 0) <= 500]
    assert not done, f"now under 500 lines: remove from OVER_500: {done}"
