"""Flattening of REST records into rows, and the column list of a SOQL select clause."""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

# Child relationship (subquery) results: {"totalSize", "done", "records"}.
_CHILD_KEYS = frozenset({"totalSize", "done", "records"})


def _is_child_result(value: Any) -> bool:
    return isinstance(value, dict) and "records" in value and set(value) <= _CHILD_KEYS | {"nextRecordsUrl"}


def strip_attributes(value: Any) -> Any:
    """``value`` without the ``attributes`` entries Salesforce adds to every record (recursively);
    child relationship results become the list of their records."""
    if isinstance(value, dict):
        if _is_child_result(value):
            return [strip_attributes(record) for record in value["records"]]
        return {key: strip_attributes(item) for key, item in value.items() if key != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(item) for item in value]
    return value


def flatten_record(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One row of a record: parent relationships flattened into dotted keys.

    ``{"Account": {"attributes": ..., "Name": "A", "Owner": {"Name": "B"}}}`` becomes
    ``{"Account.Name": "A", "Account.Owner.Name": "B"}``; a null parent stays ``{"Account": None}``
    (writers fill its known sub-columns with nulls); ``attributes`` are dropped; child subquery
    results become the list of their records (writers store it as JSON text in CSV and Parquet);
    compound values without ``attributes`` (addresses, geolocations) stay as they are.

    :param record: a record as the REST API returns it.
    :param prefix: dotted prefix of the keys (for nested parents).
    """
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        name = prefix + key
        if isinstance(value, dict) and "attributes" in value:
            row.update(flatten_record(value, name + "."))
        elif _is_child_result(value):
            row[name] = strip_attributes(value)
        else:
            row[name] = value
    return row


# -- SOQL select list (column order only: tolerant, no grammar) ------------------------------------------
_FUNCTION_KEEPS_NAME = frozenset({"tolabel", "convertcurrency", "format", "grouping"})
_ALIAS = re.compile(r"^(?P<expr>.*\))\s+(?P<alias>[A-Za-z_][A-Za-z0-9_]*)$", re.S)


def _top_level_split(text: str) -> Iterator[str]:
    """Split on commas outside parentheses and quotes."""
    depth, start, quote = 0, 0, False
    for index, char in enumerate(text):
        if char == "'" and (index == 0 or text[index - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            yield text[start:index].strip()
            start = index + 1
    yield text[start:].strip()


def _select_clause(soql: str) -> str | None:
    """The text between the leading SELECT and its top-level FROM."""
    match = re.match(r"\s*select\s", soql, re.I)
    if not match:
        return None
    depth = 0
    lowered = soql.lower()
    for index in range(match.end(), len(soql)):
        char = soql[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and lowered.startswith("from", index) and soql[index - 1].isspace() and (
            index + 4 == len(soql) or not (soql[index + 4].isalnum() or soql[index + 4] == "_")
        ):
            return soql[match.end() : index]
    return None


def soql_columns(soql: str) -> list[str] | None:
    """Column names of a SOQL query's rows, in select-list order; None when they cannot be known.

    Fields keep their dotted paths (``Account.Owner.Name``); a subquery gives its relationship name
    (``Contacts``); aggregates give their alias or ``expr0``, ``expr1``...; ``toLabel(F)``,
    ``convertCurrency(F)`` and ``FORMAT(F)`` give ``F``. ``FIELDS(...)`` and ``TYPEOF`` make the
    columns unknowable from the text: None (writers then use the first page).

    :param soql: the query.
    """
    clause = _select_clause(soql)
    if clause is None:
        return None
    columns: list[str] = []
    expr_index = 0
    for item in _top_level_split(clause):
        if not item:
            return None
        lowered = item.lower()
        if lowered.startswith("fields(") or lowered.startswith("typeof"):
            return None
        if item.startswith("("):
            sub = re.search(r"\sfrom\s+([A-Za-z_][A-Za-z0-9_.]*)", item, re.I)
            if not sub:
                return None
            columns.append(sub.group(1))
            continue
        if "(" in item:
            aliased = _ALIAS.match(item)
            if aliased:
                columns.append(aliased.group("alias"))
                continue
            function, _, argument = item.partition("(")
            if function.strip().lower() in _FUNCTION_KEEPS_NAME:
                columns.append(argument.rstrip(") ").strip())
            else:
                columns.append(f"expr{expr_index}")
                expr_index += 1
            continue
        parts = item.split()  # "Field" or, in aggregate queries, "Field alias"
        columns.append(parts[-1])
    return columns
