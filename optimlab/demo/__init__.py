"""The end-to-end demo: ``python -m optimlab.demo`` (or ``make demo``)."""

from ._train import main as main

__all__ = ["main"]
