"""Runs a parsed SOSL search: each RETURNING object becomes a SOQL plan plus a text-match filter.

Matching is a case-insensitive substring match of every term of one OR-alternative against the
scope's fields (``*`` any characters, ``?`` one character); Salesforce's search index tokenizes,
stems and ranks, which an emulator need not. Results keep RETURNING order, then row order.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from ..errors import SalesforceApiError
from ..metadata.model import Metadata, ObjectDef
from ..soql.engine import QueryEngine
from ..soql.errors import positioned
from .parser import ObjectSpec, SearchQuery, Term

#: Objects never searched without RETURNING (setup data, not business records).
_SEARCH_TYPES = frozenset({"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url"})
_CLAUSE = re.compile(r"\b(WHERE|ORDER\s+BY|LIMIT|OFFSET|WITH|USING)\b", re.IGNORECASE)
_POSITION = re.compile(r"ERROR at Row:(\d+):Column:(\d+)\n(.*)\Z", re.DOTALL)
# The compiler aliases the FROM object "<prefix>0"; the match filter must name it.
_BASE_ALIAS = re.compile(r'FROM "(?:[^"]|"")+" AS (\w+)')


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def searchable_objects(metadata: Metadata) -> list[ObjectDef]:
    """Business objects a search without RETURNING (or a recent-items list) covers.

    :param metadata: the org's metadata.
    """
    return [o for o in metadata.objects.values()
            if o.queryable and o.kind == "standard" and o.name_field is not None and not o.setup
            ] + [o for o in metadata.objects.values() if o.kind == "custom" and o.queryable]


def scope_fields(obj: ObjectDef, scope: str) -> list[str]:
    """The fields a scope searches on one object.

    :param obj: the object.
    :param scope: ``ALL``, ``NAME``, ``EMAIL``, ``PHONE`` or ``SIDEBAR``.
    """
    fields = [f for f in obj.fields.values() if f.type in _SEARCH_TYPES]
    if scope == "NAME":
        return [f.name for f in fields if f.name_field or (f.type == "string" and f.name.endswith("Name"))]
    if scope == "EMAIL":
        return [f.name for f in fields if f.type == "email"]
    if scope == "PHONE":
        return [f.name for f in fields if f.type == "phone"]
    return [f.name for f in fields]


def _like(term: Term) -> str:
    escaped = term.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "%").replace("?", "_") + "%"


def match_sql(alias: str, fields: list[str], alternatives: list[list[Term]]) -> tuple[str, list[Any]]:
    """SQL (and parameters) true when a row matches the search expression.

    :param alias: the table alias.
    :param fields: the searched columns.
    :param alternatives: OR-ed lists of AND-ed terms.
    """
    if not fields:
        return "0", []
    params: list[Any] = []
    ors = []
    for terms in alternatives:
        ands = []
        for term in terms:
            any_field = " OR ".join(f"{alias}.{_q(f)} LIKE ? ESCAPE '\\'" for f in fields)
            params += [_like(term)] * len(fields)
            # NULL columns make LIKE NULL; NOT must still hold for them.
            ands.append(f"NOT COALESCE(({any_field}), 0)" if term.negate else f"({any_field})")
        ors.append("(" + " AND ".join(ands) + ")")
    return " OR ".join(ors), params


class SearchEngine:
    """Runs SOSL over one org's data.

    :param metadata: the org's metadata.
    :param queries: the SOQL engine that compiles each RETURNING body.
    """

    def __init__(self, metadata: Metadata, queries: QueryEngine) -> None:
        self.metadata = metadata
        self.queries = queries

    def run(self, query: SearchQuery, conn: sqlite3.Connection, api_version: str) -> list[dict[str, Any]]:
        """The ``searchRecords`` of a search (the caller holds the store's lock).

        :param query: the parsed search.
        :param conn: the store's database.
        :param api_version: API version for ``attributes.url``.
        """
        specs = query.objects or [ObjectSpec(o.name, 0) for o in searchable_objects(self.metadata)]
        records: list[dict[str, Any]] = []
        for spec in specs:
            if len(records) >= query.limit:
                break
            soql, segments = self._soql(spec)
            try:
                plan = self.queries.compile(soql)
            except SalesforceApiError as error:
                raise self._relocate(error, query.sosl, soql, segments) from None
            obj = self.metadata.require(spec.name)
            alias = _BASE_ALIAS.search(plan.sql).group(1)
            condition, params = match_sql(alias, scope_fields(obj, query.scope), query.alternatives)
            plan.where_sql = f"({plan.where_sql}) AND ({condition})"
            plan.params = [*plan.params, *params]
            rows = plan.fetch(conn)[: query.limit - len(records)]
            records += plan.shape(conn, rows, api_version)
        return records

    @staticmethod
    def _soql(spec: ObjectSpec) -> tuple[str, list[tuple[int, int, int]]]:
        """The SOQL for one RETURNING entry and its (soql_start, length, sosl_start) segments."""
        body = spec.body or ""
        found = _CLAUSE.search(body)
        split = found.start() if found else len(body)
        fields, rest = body[:split], body[split:]
        if not fields.strip():
            fields = "Id"
        head = f"SELECT {fields} FROM "
        soql = f"{head}{spec.name} {rest}"
        segments = [
            (7, len(fields), spec.body_offset),
            (len(head), len(spec.name), spec.offset),
            (len(head) + len(spec.name) + 1, len(rest), spec.body_offset + split),
        ]
        return soql, segments

    @staticmethod
    def _relocate(error: SalesforceApiError, sosl: str, soql: str,
                  segments: list[tuple[int, int, int]]) -> SalesforceApiError:
        """The SOQL engine's positioned error, re-positioned in the SOSL text."""
        found = _POSITION.search(error.message)
        if not found:
            return error
        row, column, message = int(found.group(1)), int(found.group(2)), found.group(3)
        offset = sum(len(line) + 1 for line in soql.split("\n")[: row - 1]) + column - 1
        target = next((sosl_start + offset - start for start, length, sosl_start in segments
                       if start <= offset <= start + length), 0)
        before = sosl[:target].split("\n")
        # A syntax error inside a RETURNING body is a malformed search, not a malformed query.
        code = "MALFORMED_SEARCH" if error.error_code == "MALFORMED_QUERY" else error.error_code
        return SalesforceApiError(code, positioned(sosl, len(before), len(before[-1]) + 1, message),
                                  status=error.status)
