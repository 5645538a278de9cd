"""Compiled query plans: run the SQL, page the rows, shape them into REST records."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..metadata.describe import version_path
from ..metadata.model import FieldDef
from ..metadata.validation import api_value

_CHUNK = 500


@dataclass
class RelShape:
    """A nested parent record in the output (``"Account": {...}``).

    :param name: relationship name (output key).
    :param id_col: column holding the parent's id (null -> the key is null).
    :param types: key prefix -> object name (several for polymorphic relationships).
    """

    name: str
    id_col: int
    types: dict[str, str]
    entries: list[tuple[str, str, Any]] = field(default_factory=list)

    def shift(self, by: int) -> None:
        """Move every column index by ``by`` (a child plan prepends its foreign key)."""
        self.id_col += by
        _shift_entries(self.entries, by)


@dataclass
class Shape:
    """The top-level record shape of a (sub)query.

    :param sobject: object name for ``attributes.type``.
    :param id_col: column of the record id.
    """

    sobject: str
    id_col: int
    entries: list[tuple[str, str, Any]] = field(default_factory=list)

    def shift(self, by: int) -> None:
        """Move every column index by ``by``."""
        self.id_col += by
        _shift_entries(self.entries, by)


def _shift_entries(entries: list[tuple[str, str, Any]], by: int) -> None:
    for i, (key, kind, payload) in enumerate(entries):
        if kind == "leaf":
            entries[i] = (key, kind, (payload[0] + by, payload[1]))
        elif kind == "rel":
            payload.shift(by)


@dataclass
class AggregateOutput:
    """One column of an aggregate result (``expr0``, an alias or a grouped field's name)."""

    key: str
    type: str
    fdef: FieldDef | None


@dataclass
class ChildPlan:
    """A child relationship subquery and the key it appears under."""

    relationship: str
    plan: Plan


@dataclass
class Plan:
    """A compiled (sub)query.

    The SQL is kept in parts so a child plan can add ``fk IN (...)`` for a page of parents.
    """

    sql: str
    where_sql: str
    params: list[Any]
    order_sql: str
    record_shape: Shape | None
    children: list[ChildPlan]
    limit: int | None = None
    offset: int | None = None
    count_only: bool = False
    group_sql: str = ""
    having_sql: str = ""
    aggregate: list[AggregateOutput] | None = None
    fk_sql: str | None = None

    def _tail(self, *, paged: bool = True) -> str:
        sql = ""
        if self.group_sql:
            sql += f" GROUP BY {self.group_sql}"
        if self.having_sql:
            sql += f" HAVING {self.having_sql}"
        if self.order_sql:
            sql += f" ORDER BY {self.order_sql}"
        if paged and (self.limit is not None or self.offset is not None):
            # Both are integers from the grammar, never client text.
            sql += f" LIMIT {int(self.limit) if self.limit is not None else -1} OFFSET {int(self.offset or 0)}"
        return sql

    def fetch(self, conn: sqlite3.Connection) -> Any:
        """All result rows (the count, for ``SELECT COUNT()``).

        :param conn: the database.
        """
        if self.count_only:
            inner = self.sql + self._tail()
            return conn.execute(f"SELECT COUNT(*) FROM ({inner})", self.params).fetchone()[0]
        sql = f"{self.sql} WHERE {self.where_sql}{self._tail()}"
        return conn.execute(sql, self.params).fetchall()

    def shape(self, conn: sqlite3.Connection, rows: list[tuple], api_version: str) -> list[dict[str, Any]]:
        """REST records for one page of rows, running child subqueries once for the page.

        :param conn: the database.
        :param rows: the page's rows.
        :param api_version: API version for ``attributes.url``.
        """
        if self.aggregate is not None:
            return [
                {"attributes": {"type": "AggregateResult"},
                 **{out.key: api_value(out.fdef, value) if out.fdef is not None and not out.type == "int"
                    else value for out, value in zip(self.aggregate, row)}}
                for row in rows
            ]
        assert self.record_shape is not None
        base = version_path(api_version)
        child_rows = [
            child.plan.fetch_for_parents(conn, [r[self.record_shape.id_col] for r in rows]) for child in self.children
        ]
        records = []
        for row in rows:
            records.append(self._record(self.record_shape, row, base, conn, child_rows, api_version))
        return records

    def _record(self, shape: Shape | RelShape, row: tuple, base: str, conn: sqlite3.Connection,
                child_rows: list[dict[str, list[tuple]]], api_version: str) -> dict[str, Any]:
        record_id = row[shape.id_col]
        sobject = shape.sobject if isinstance(shape, Shape) else shape.types.get(record_id[:3], next(iter(shape.types.values())))
        record: dict[str, Any] = {"attributes": {"type": sobject, "url": f"{base}/sobjects/{sobject}/{record_id}"}}
        for key, kind, payload in shape.entries:
            if kind == "leaf":
                record[key] = api_value(payload[1], row[payload[0]])
            elif kind == "rel":
                record[key] = (None if row[payload.id_col] is None
                               else self._record(payload, row, base, conn, child_rows, api_version))
            else:
                child = self.children[payload]
                found = child_rows[payload].get(record_id)
                record[key] = None if not found else {
                    "totalSize": len(found), "done": True,
                    "records": child.plan.shape(conn, found, api_version),
                }
        return record

    def fetch_for_parents(self, conn: sqlite3.Connection, parent_ids: list[str]) -> dict[str, list[tuple]]:
        """Child rows grouped by parent id, LIMIT/OFFSET applied per parent.

        :param conn: the database.
        :param parent_ids: the page's parent ids.
        """
        grouped: dict[str, list[tuple]] = {}
        for start in range(0, len(parent_ids), _CHUNK):
            chunk = parent_ids[start:start + _CHUNK]
            sql = (f"{self.sql} WHERE {self.where_sql} AND {self.fk_sql} IN ({', '.join('?' * len(chunk))})"
                   f"{self._tail(paged=False)}")
            for row in conn.execute(sql, [*self.params, *chunk]):
                grouped.setdefault(row[0], []).append(row)
        if self.limit is not None or self.offset:
            lo = self.offset or 0
            hi = lo + self.limit if self.limit is not None else None
            grouped = {k: v[lo:hi] for k, v in grouped.items() if v[lo:hi]}
        return grouped
