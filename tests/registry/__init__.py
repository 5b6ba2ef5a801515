"""The registries every generic test is driven by.

``CASES``: optimizer configurations (:class:`Case`). ``ERROR_CASES``: invalid
inputs (:class:`ErrorCase`), each with the stage it fails at, the exception type
and a message regex. Each algorithm family adds its entries in its own module;
this package only gathers them.
"""

from ._types import Case as Case
from ._types import ErrorCase as ErrorCase
from . import _core

CASES: list[Case] = [*_core.CASES]
ERROR_CASES: list[ErrorCase] = [*_core.ERROR_CASES]


def case_ids(cases):
    return [c.id for c in cases]
