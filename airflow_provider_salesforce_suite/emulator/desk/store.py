"""Desk data: one SQLite table per resource (``desk_cases``, ``desk_notes`` ...), each row the
resource's JSON fields plus the id of the resource it belongs to (a case's notes, an article's
attachments). Separate from the Salesforce org store: Desk was its own system."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from typing import Any

#: Every resource kind the emulator keeps (the table is ``desk_<kind>``).
KINDS = ("articles", "cases", "companies", "customers", "groups", "topics", "users", "labels", "filters",
         "notes", "replies", "attachments")


def now_iso() -> str:
    """Desk's timestamp format: ISO 8601 UTC with a ``Z``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class DeskStore:
    """Rows of JSON per resource kind, ids ascending per kind (Desk's ids are integers).

    :param path: SQLite file (default: in memory).
    """

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        with self._lock:
            for kind in KINDS:
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS desk_{kind} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "parent_kind TEXT, parent_id INTEGER, data TEXT NOT NULL)")
        if not self.all("users"):
            self.seed()

    def seed(self, agent_email: str = "admin@emulator.local") -> None:
        """The site's starting rows: the admin agent, a group, a label and the standard filters.

        :param agent_email: the admin agent's email (the Basic-auth login).
        """
        self.insert("users", {"name": "Admin User", "public_name": "Admin", "email": agent_email,
                              "level": "siteadmin", "avatar": None})
        self.insert("groups", {"name": "Support"})
        self.insert("labels", {"name": "Urgent", "description": "Needs attention today", "color": "red",
                               "enabled": True, "types": ["case"], "position": 1})
        for position, (name, statuses) in enumerate((("All Open Cases", ["new", "open", "pending"]),
                                                     ("New Cases", ["new"]), ("Resolved Cases", ["resolved"])),
                                                    start=1):
            self.insert("filters", {"name": name, "position": position, "active": True, "sort_field": "updated_at",
                                    "sort_direction": "desc", "routing_enabled": False, "statuses": statuses})

    def reset(self) -> None:
        """Delete every row and re-seed."""
        with self._lock:
            for kind in KINDS:
                self._conn.execute(f"DELETE FROM desk_{kind}")
                self._conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (f"desk_{kind}",))
        self.seed()

    def insert(self, kind: str, data: dict[str, Any], parent: tuple[str, int] | None = None) -> dict[str, Any]:
        """Add a row (``created_at``/``updated_at`` set) and return it with its ``id``.

        :param kind: resource kind.
        :param data: the fields.
        :param parent: ``(kind, id)`` of the resource this one belongs to.
        """
        stamp = now_iso()
        data = {"created_at": stamp, "updated_at": stamp, **data}
        with self._lock:
            cursor = self._conn.execute(
                f"INSERT INTO desk_{kind} (parent_kind, parent_id, data) VALUES (?, ?, ?)",
                (*(parent or (None, None)), json.dumps(data)))
        return {"id": cursor.lastrowid, **data}

    def get(self, kind: str, row_id: int) -> dict[str, Any] | None:
        """One row, or None.

        :param kind: resource kind.
        :param row_id: its id.
        """
        with self._lock:
            row = self._conn.execute(f"SELECT id, data FROM desk_{kind} WHERE id = ?", (row_id,)).fetchone()
        return {"id": row[0], **json.loads(row[1])} if row else None

    def update(self, kind: str, row_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into a row (``updated_at`` refreshed) and return it.

        :param kind: resource kind.
        :param row_id: its id (must exist).
        :param changes: the fields to change.
        """
        with self._lock:
            row = self.get(kind, row_id)
            assert row is not None
            row.update(changes, updated_at=now_iso())
            data = {k: v for k, v in row.items() if k != "id"}
            self._conn.execute(f"UPDATE desk_{kind} SET data = ? WHERE id = ?", (json.dumps(data), row_id))
        return row

    def all(self, kind: str, parent: tuple[str, int] | None = None) -> list[dict[str, Any]]:
        """Every row of a kind (of one parent), ids ascending.

        :param kind: resource kind.
        :param parent: ``(kind, id)`` to keep only that resource's rows.
        """
        sql, args = f"SELECT id, data FROM desk_{kind}", ()  # type: tuple[str, Iterable[Any]]
        if parent:
            sql, args = sql + " WHERE parent_kind = ? AND parent_id = ?", parent
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", tuple(args)).fetchall()
        return [{"id": r[0], **json.loads(r[1])} for r in rows]
