"""docs/from_optax.md maps every public optax name, and every optimlab name, to a row."""

import inspect
import pathlib
import re
import warnings

import optax
import optax.contrib
import optax.schedules
import optax.transforms
import optax.tree

import optimlab
import optimlab.schedules

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "from_optax.md"
OPTAX_MODULES = {
    "optax": optax,
    "optax.contrib": optax.contrib,
    "optax.schedules": optax.schedules,
    "optax.transforms": optax.transforms,
    "optax.tree": optax.tree,
}


def public(module):
    with warnings.catch_warnings():  # optax's deprecated aliases warn on access
        warnings.simplefilter("ignore")
        return {
            n: getattr(module, n)
            for n in dir(module)
            if not n.startswith("_") and not inspect.ismodule(getattr(module, n))
        }


def rows():
    """{optax qualified name: optimlab column} from the table rows."""
    text = PAGE.read_text()
    return dict(re.findall(r"^\| `(optax[\w.]*)` \| (.*?) \|", text, re.M))


def optimlab_only():
    section = PAGE.read_text().split("## Names only optimlab has", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `optimlab\.(\w+)`", section, re.M))


def optax_names():
    """Every public optax name, qualified by the first module that exports it."""
    top = public(optax)
    names = {f"optax.{n}" for n in top}
    for prefix, module in OPTAX_MODULES.items():
        if module is optax:
            continue
        for n, obj in public(module).items():
            if n in top and top[n] is obj:
                continue  # the same object is listed once, under optax.<name>
            names.add(f"{prefix}.{n}")
    return names


def test_every_public_optax_name_has_a_row():
    missing = sorted(optax_names() - set(rows()))
    assert not missing, f"docs/from_optax.md: no row for {missing}; add one per name"


def test_every_optimlab_name_has_a_row_or_is_listed_as_optimlab_only():
    table = rows()
    in_optax = {q.rsplit(".", 1)[1] for q in optax_names()}
    mentioned = " ".join(table.values())
    only = optimlab_only()
    problems = []
    for name in public(optimlab):
        if name in in_optax:
            if f"`optimlab.{name}`" not in mentioned:
                problems.append(f"{name}: optax has it, but no row maps it to optimlab.{name}")
        elif name not in only:
            problems.append(f"{name}: optimlab-only, but not under 'Names only optimlab has'")
    stale = sorted(n for n in only if not hasattr(optimlab, n))
    assert not problems, "docs/from_optax.md: " + "; ".join(problems)
    assert not stale, f"docs/from_optax.md lists names optimlab does not have: {stale}"


def test_rows_name_existing_optimlab_objects():
    named = set(re.findall(r"`optimlab\.([\w.]+)", " ".join(rows().values())))
    missing = []
    for path in named:
        obj = optimlab
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(path)
    assert not missing, f"docs/from_optax.md names missing optimlab objects: {sorted(missing)}"
