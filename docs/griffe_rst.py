"""A griffe extension for the docs site: the reST bits of optimlab's docstrings as Markdown.

The docstrings are Google style with a few reST constructs that also read well in
``help()``: ``.. math::`` blocks, ``:math:`` roles, cross-reference roles
(``:func:`~optimlab.adam```) and ``Title <url>`_`` links in References. mkdocstrings
renders Markdown, so this extension rewrites them, on the docs site only, as
arithmatex math (``$...$``, ``$$...$$``), code spans and Markdown links. The
docstrings themselves are not changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^>]+)>`__?")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def _math_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, first = match.group(1), match.group(2)
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        trailing = [b for b in body[1 if first.strip() else 0 :] if b.strip()]
        cut = min((len(b) - len(b.lstrip()) for b in trailing), default=0)
        math = [first.strip()] if first.strip() else []
        math += [b[cut:] for b in body[1 if first.strip() else 0 :]]
        out += [
            f"{indent}$$",
            *(f"{indent}{m}" if m.strip() else "" for m in math),
            f"{indent}$$",
            "",
        ]
    return "\n".join(out)


def to_markdown(text: str) -> str:
    """Rewrites the reST constructs of a docstring as Markdown."""
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LINK.sub(lambda m: f"[{m.group(1)}]({m.group(2)})", text)


class RestToMarkdown(griffe.Extension):
    """Converts each loaded object's docstring before mkdocstrings parses it."""

    def _convert(self, obj: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        """Called by griffe for every object it loads."""
        del kwargs
        self._convert(obj)
