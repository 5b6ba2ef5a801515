"""Wrappers: transformations built around other transformations. (private)."""
