"""The API reference covers every public name, and every public name has a docstring.

The reference pages (docs/reference/*.md) are parsed, not built: each
``::: module.name`` block documents one name (a block may also list ``members:``).
After adding a public name, run ``.venv/bin/python docs/gen_reference.py``.
"""

import importlib
import importlib.util
import inspect
import pathlib
import pkgutil
import re

import pytest

import optimlab

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
FIX = "run `.venv/bin/python docs/gen_reference.py` and commit docs/reference/"

PUBLIC_MODULES = [
    "optimlab",
    "optimlab.schedules",
    "optimlab.optim",
    "optimlab.optim.lr_scheduler",
    "optimlab.optim.swa_utils",
    "optimlab.checkpoint",
]
NOT_API = {"optimlab.demo"}  # the `make demo` program, not a library module


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return sorted(n for n in names if not inspect.ismodule(getattr(module, n)))


def documented():
    """{module: {name}} from the ``::: path`` blocks (and their ``members:``) of the pages."""
    found = {}
    for page in sorted(REFERENCE.glob("*.md")):
        text = page.read_text()
        for match in re.finditer(r"^::: *([\w.]+)[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, re.M):
            path, options = match.group(1), match.group(2)
            members = re.search(r"^\s+members:\s*\n((?:\s+- *[\w.]+\s*\n)+)", options, re.M)
            if members:
                for name in re.findall(r"- *([\w.]+)", members.group(1)):
                    found.setdefault(path, set()).add(name)
            else:
                module, _, name = path.rpartition(".")
                found.setdefault(module, set()).add(name)
    return found


def test_every_public_module_has_a_page():
    seen = {
        info.name
        for info in pkgutil.walk_packages(optimlab.__path__, "optimlab.")
        if not any(part.startswith("_") for part in info.name.split("."))
    }
    modules = {m for m in seen if not any(m == n or m.startswith(n + ".") for n in NOT_API)}
    assert modules | {"optimlab"} == set(PUBLIC_MODULES), (
        "a public module was added or removed: list it in PUBLIC_MODULES here and in "
        "MODULES in docs/gen_reference.py"
    )


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_reference(module_name):
    module = importlib.import_module(module_name)
    names = set(public_names(module))
    pages = documented().get(module_name, set())
    missing = sorted(names - pages)
    assert not missing, f"{module_name}: not in docs/reference: {missing}; {FIX}"
    stale = sorted(pages - names)
    assert not stale, f"{module_name}: documented but not public: {stale}; {FIX}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no module docstring"
    missing = []
    for name in public_names(module):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            doc = obj.__doc__  # its own docstring, not one inherited from a base class
        else:
            doc = type(obj).__doc__  # a constant: its class documents it
        if not (doc or "").strip():
            missing.append(name)
    assert not missing, f"{module_name}: no docstring: {missing}"


def test_reference_pages_are_up_to_date():
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "docs" / "gen_reference.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert [m for m, *_ in gen.MODULES] == PUBLIC_MODULES
    for path, text in gen.pages().items():
        assert path.exists(), f"{path.name} is missing; {FIX}"
        assert path.read_text() == text, f"{path.name} is stale; {FIX}"
    generated = {p.name for p in gen.pages()}
    on_disk = {p.name for p in REFERENCE.glob("*.md")}
    assert on_disk == generated, f"unexpected pages {sorted(on_disk - generated)}; {FIX}"


def test_readme_links_point_to_files():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
