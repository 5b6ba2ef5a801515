"""No module of ``optimlab.optim`` reads or writes another object's private attributes.

A name with one leading underscore is private to its class (or module): inside
``optimlab/optim`` an attribute access ``x._name`` is allowed only on ``self`` or
``cls`` within a class body, and no private name is imported from another module
(private modules themselves may be). The exceptions are listed below, each with its reason.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

OPTIM = pathlib.Path(__file__).resolve().parents[2] / "optimlab" / "optim"

#: Public API of NamedTuple (and so of every functional optimizer state) despite the
#: underscore: the underscore only keeps it clear of field names.
NAMEDTUPLE_API = {"_replace", "_fields", "_asdict", "_make", "_field_defaults"}

#: ``(source text of the object, attribute)`` of stdlib internals used on purpose.
ALLOWED = {
    # The callers' frames: whether the array being pickled is inside torch.save
    # (which then gets torch tensors), from _serialization.SavableArray.__reduce_ex__.
    ("sys", "_getframe"),
    # pickle's pure-Python pickler, whose save() can be extended (the C one's
    # cannot): optim.save writes torch's file format with it, without torch.
    ("pickle", "_Pickler"),
}


def _offences(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, source)`` of each private access on another object, and private import."""
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_class: bool) -> None:
        if isinstance(node, ast.ClassDef):
            in_class = True
        if isinstance(node, ast.Attribute):
            attr = node.attr
            private = attr.startswith("_") and not attr.startswith("__")
            base = node.value
            own = in_class and isinstance(base, ast.Name) and base.id in ("self", "cls")
            allowed = attr in NAMEDTUPLE_API or (ast.unparse(base), attr) in ALLOWED
            if private and not own and not allowed:
                out.append((node.lineno, ast.unparse(node)))
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            # A private module (``from .._core import _rules``) may be imported;
            # a private name defined in a module may not.
            package = OPTIM.parents[node.level - 2] if node.level > 1 else OPTIM
            where = package.joinpath(*(node.module or "").split("."))
            out.extend(
                (node.lineno, f"from {'.' * node.level}{node.module or ''} import {a.name}")
                for a in node.names
                if a.name.startswith("_")
                and not a.name.startswith("__")
                and not (where / f"{a.name}.py").exists()
                and not (where / a.name / "__init__.py").exists()
            )
        for child in ast.iter_child_nodes(node):
            visit(child, in_class)

    visit(tree, False)
    return out


@pytest.mark.parametrize("path", sorted(OPTIM.glob("*.py")), ids=lambda p: p.name)
def test_no_private_access_across_objects(path):
    found = _offences(ast.parse(path.read_text(), str(path)))
    assert not found, "\n".join(f"{path.name}:{line}: {src}" for line, src in found)


@pytest.mark.parametrize(
    "source",
    [
        "def f(opt):\n    return opt._leaves\n",
        "class A:\n    def f(self, other):\n        return other._leaves\n",
        "class A:\n    def f(self):\n        return self.items[0]._step()\n",
        "def f(self):\n    return self._leaves\n",  # not a method: self is just a name
        "from . import _state_dict\nx = _state_dict._check_groups\n",
        "from ._state_dict import _check_groups\n",
        "from .._optimizers._lbfgs import _init_state\n",
        "import sys\nx = sys._current_frames\n",
    ],
)
def test_rule_catches_a_private_access(source):
    assert _offences(ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "class A:\n    def f(self):\n        return self._leaves\n",
        "class A:\n    @classmethod\n    def f(cls):\n        return cls._table\n",
        "class A:\n    def f(self):\n        return [lambda: self._x for _ in ()]\n",
        "def f(state):\n    return state._replace(count=None)._asdict()\n",
        "from . import _state_dict\nx = _state_dict.check_groups\n",
        "from .._optimizers._lbfgs import torch_lbfgs\n",
        "from . import _state_dict\nfrom .._core import _rules\n",
        "x = obj.__class__\n",
    ],
)
def test_rule_allows_own_and_public_access(source):
    assert not _offences(ast.parse(source))
