"""The connection extras the docs document, per connection type, read from the docs' tables.

A ``| `name`, `other` | extra | meaning |`` row belongs to the connection type its page names in the
nearest heading above it (``## `salesforce_pardot` ``, ``## Connection (`salesforce_suite`)``).
``salesforce_pardot`` also has every ``salesforce_suite`` field of ``connections.md`` (its docs say so).
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONN_TYPES = ("salesforce_suite", "salesforce_pardot", "salesforce_desk")
_ROW = re.compile(r"^\|([^|\n]+)\|\s*extra\s*\|", re.M)
_HEADING = re.compile(r"^#{1,6} .*$", re.M)


def _rows_by_type(page: Path) -> dict[str, set[str]]:
    text = page.read_text()
    found: dict[str, set[str]] = {}
    headings = [(m.start(), m.group(0)) for m in _HEADING.finditer(text)]
    for row in _ROW.finditer(text):
        owner = None
        for start, heading in headings:
            if start > row.start():
                break
            named = [t for t in CONN_TYPES if f"`{t}`" in heading]
            owner = named[0] if named else owner
        assert owner, f"{page.name}: the extra row {row.group(0)!r} is under no heading naming a connection type"
        found.setdefault(owner, set()).update(re.findall(r"`([A-Za-z_]+)`", row.group(1)))
    return found


def documented_extras() -> dict[str, set[str]]:
    """Connection type -> the extras the docs' tables document for it."""
    documented: dict[str, set[str]] = {t: set() for t in CONN_TYPES}
    for page in sorted(DOCS.glob("*.md")):
        for conn_type, names in _rows_by_type(page).items():
            documented[conn_type] |= names
    documented["salesforce_pardot"] |= _rows_by_type(DOCS / "connections.md").get("salesforce_suite", set())
    return documented
