"""Transforms: scaling, clipping and the alias chain. (private)."""
