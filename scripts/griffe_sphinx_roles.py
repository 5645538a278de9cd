"""A griffe extension for the API reference (mkdocs.yml): the reStructuredText the package's
docstrings use beyond Sphinx fields, made Markdown. Cross-reference roles (``:class:`X```,
``:meth:`~a.b.c```) become inline code, as Markdown has no roles and would print the role's name;
a literal block's ``text::`` becomes ``text:`` (the indented block under it is already Markdown's
code block)."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|obj|data|const):`(~?)([^`]+)`")
_LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.M)


def _code(match: re.Match[str]) -> str:
    target = match.group(2).lstrip(".")
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring's roles once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _LITERAL_BLOCK.sub(":", _ROLE.sub(_code, obj.docstring.value))
