"""Incremental extracts: the watermark filter added to a SOQL query and the watermark kept
between DAG runs.

Why the asset state store: Airflow's ``task_state_store`` is scoped to one task instance
(``dag_id, run_id, task_id, map_index``), so tomorrow's run cannot read what today's run wrote.
``asset_state_store`` is scoped to an asset and outlives runs, so the watermark is kept there,
keyed by an inlet/outlet asset of the task (by default its first outlet ``Asset``).

Why "max value seen minus lookback": the next run's lower bound is ``max(watermark_field)`` over
the rows actually extracted (a Salesforce timestamp: no worker clock involved) minus ``lookback``,
inclusive (``>=``). Records whose transaction committed after the query ran but carry an earlier
stamp fall inside that window, so there is no gap at the window edge; the price is that rows in
the overlap are extracted twice (load them downstream with an upsert by ``Id``). A run that finds
no rows keeps the previous watermark; the watermark never moves backwards.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

#: Stored value: ``{"field", "value" (ISO 8601 UTC), "job_id", "run_id"}``.
DEFAULT_STATE_KEY = "salesforce_bulk_watermark"

_KEYWORDS = re.compile(r"\b(WHERE|GROUP\s+BY|ORDER\s+BY|LIMIT|OFFSET|FOR\s+(?:VIEW|REFERENCE|UPDATE)|FROM|WITH)\b",
                       re.IGNORECASE)


def _top_level(soql: str) -> list[tuple[int, int, str]]:
    """``(start, end, KEYWORD)`` of the clause keywords outside parentheses and string literals."""
    found, depth, quoted, i = [], 0, False, 0
    while i < len(soql):
        char = soql[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and (match := _KEYWORDS.match(soql, i)) and (i == 0 or not soql[i - 1].isalnum()):
            found.append((match.start(), match.end(), " ".join(match.group(1).upper().split())))
            i = match.end()
            continue
        i += 1
    return found


def add_condition(soql: str, condition: str) -> str:
    """``soql`` with ``condition`` ANDed to its top-level WHERE (or a new WHERE before GROUP BY,
    ORDER BY, LIMIT...).

    :param soql: the query.
    :param condition: a SOQL condition, e.g. ``SystemModstamp >= 2024-05-01T00:00:00Z``.
    """
    clauses = _top_level(soql)
    where = next(((s, e) for s, e, k in clauses if k == "WHERE"), None)
    tail = next((s for s, _, k in clauses if k not in ("WHERE", "FROM", "WITH") and (where is None or s > where[1])),
                len(soql))
    if where is not None:
        body = soql[where[1]:tail].strip()
        return f"{soql[:where[0]]}WHERE ({body}) AND {condition} {soql[tail:]}".strip()
    return f"{soql[:tail].rstrip()} WHERE {condition} {soql[tail:]}".strip()


def ensure_selected(soql: str, field: str) -> str:
    """``soql`` selecting ``field`` too (appended to the SELECT list when missing).

    :param soql: the query.
    :param field: the watermark field.
    """
    clauses = _top_level(soql)
    start = next((s for s, _, k in clauses if k == "FROM"), None)
    if start is None:
        raise ValueError(f"not a SOQL query (no FROM): {soql!r}")
    selected = [part.strip().lower() for part in re.sub(r"^\s*SELECT\s+", "", soql[:start], flags=re.I).split(",")]
    if field.lower() in selected:
        return soql
    return f"{soql[:start].rstrip()}, {field} {soql[start:]}"


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A Salesforce date/datetime value (``2024-05-01T10:00:00.000+0000``, ``...Z``, ``2024-05-01``,
    or a ``datetime``) as an aware UTC datetime; None for empty values.

    :param value: the value.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def soql_literal(moment: dt.datetime) -> str:
    """A SOQL dateTime literal in UTC, floored to the second (so ``>=`` stays inclusive)."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(moment: dt.datetime) -> str:
    """ISO 8601 UTC text of ``moment`` with milliseconds (what the state store keeps)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
