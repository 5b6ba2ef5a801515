"""The registries every generic test is driven by.

``CASES``: optimizer configurations (:class:`Case`). ``ERROR_CASES``: invalid
inputs (:class:`ErrorCase`), each with the stage it fails at, the exception type
and a message regex. Each algorithm family keeps its entries in its own module
``tests/registry/_<family>.py`` (defining ``CASES`` and ``ERROR_CASES``); this
package gathers every such module, in name order.
"""

import importlib
import pkgutil

from ._types import Case as Case
from ._types import ErrorCase as ErrorCase

CASES: list[Case] = []
ERROR_CASES: list[ErrorCase] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_") and _info.name != "_types":
        _module = importlib.import_module(f"{__name__}.{_info.name}")
        CASES.extend(getattr(_module, "CASES", []))
        ERROR_CASES.extend(getattr(_module, "ERROR_CASES", []))


def case_ids(cases):
    return [c.id for c in cases]
