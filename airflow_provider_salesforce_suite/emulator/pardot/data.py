"""Pardot data in SQLite tables of its own (one row per object; fields as JSON), apart from the
Salesforce store: Pardot ids are integers numbered per object."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
from typing import Any

from ..errors import SalesforceApiError
from . import codes
from ...core.pardot_objects import OBJECTS, PardotObjectSpec

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def pardot_error(code: int, message: str, status: int = 400) -> SalesforceApiError:
    """A Pardot error: the numeric code travels as ``PARDOT_<code>``; the renderer turns it back."""
    return SalesforceApiError(f"PARDOT_{code}", message, status=status)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S-00:00")


class PardotData:
    """Records of every Pardot object, thread safe (handlers run on the loop, jobs on a worker)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._conn.execute("CREATE TABLE pardot_records (object TEXT NOT NULL, id INTEGER NOT NULL, "
                           "email TEXT, data TEXT NOT NULL, PRIMARY KEY (object, id))")
        self._conn.execute("CREATE INDEX pardot_email ON pardot_records (object, email)")

    def reset(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM pardot_records")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- validation ----------------------------------------------------------------------------

    @staticmethod
    def check_fields(spec: PardotObjectSpec, names: list[str], code: int = codes.INVALID_QUERY_FIELDS) -> None:
        """Unknown field names raise Pardot's invalid-field error.

        :param spec: the object.
        :param names: the field names asked for (read) or given (write).
        :param code: the registry's code for the request (``codes.INVALID_WRITE_FIELDS`` on writes).
        """
        bad = [n for n in names if n not in spec.all_fields]
        if bad:
            raise pardot_error(code, f"Invalid field(s) for {spec.path}: {', '.join(bad)}")

    def _check_values(self, spec: PardotObjectSpec, values: dict[str, Any], *, creating: bool) -> None:
        if not isinstance(values, dict):
            raise pardot_error(codes.INVALID_JSON, "The request body must be a JSON object")
        self.check_fields(spec, list(values), codes.INVALID_WRITE_FIELDS)
        read_only = [k for k in ("id", "createdAt", "updatedAt") if k in values]
        if read_only:
            raise pardot_error(codes.INVALID_WRITE_FIELDS, f"Field(s) are read-only: {', '.join(read_only)}")
        if creating:
            missing = [f for f in spec.required if values.get(f) in (None, "")]
            if missing:
                raise pardot_error(codes.MISSING_REQUIRED_PROPERTY, f"Required field(s) missing: {', '.join(missing)}")
        if "email" in values and spec.path == "prospects" and not _EMAIL_RE.match(str(values["email"] or "")):
            raise pardot_error(codes.INVALID_PROSPECT_EMAIL, f"Invalid prospect email address: {values['email']!r}")

    # -- records -------------------------------------------------------------------------------

    def create(self, spec: PardotObjectSpec, values: dict[str, Any]) -> dict[str, Any]:
        self._check_values(spec, values, creating=True)
        with self._lock:
            (last,) = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM pardot_records WHERE object = ?",
                                         (spec.path,)).fetchone()
            stamp = now()
            record = {"id": last + 1, **values, "createdAt": stamp, "updatedAt": stamp}
            self._conn.execute("INSERT INTO pardot_records VALUES (?, ?, ?, ?)",
                               (spec.path, record["id"], _lower(record.get("email")), json.dumps(record)))
            return record

    def get(self, spec: PardotObjectSpec, record_id: int) -> dict[str, Any]:
        with self._lock:
            row = self._conn.execute("SELECT data FROM pardot_records WHERE object = ? AND id = ?",
                                     (spec.path, record_id)).fetchone()
        if row is None:
            raise pardot_error(404, f"The requested {spec.path} record {record_id} was not found", status=404)
        return json.loads(row[0])

    def update(self, spec: PardotObjectSpec, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
        self._check_values(spec, values, creating=False)
        with self._lock:
            record = {**self.get(spec, record_id), **values, "updatedAt": now()}
            self._conn.execute("UPDATE pardot_records SET data = ?, email = ? WHERE object = ? AND id = ?",
                               (json.dumps(record), _lower(record.get("email")), spec.path, record_id))
            return record

    def delete(self, spec: PardotObjectSpec, record_id: int) -> None:
        with self._lock:
            self.get(spec, record_id)
            self._conn.execute("DELETE FROM pardot_records WHERE object = ? AND id = ?", (spec.path, record_id))

    def latest_by_email(self, email: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT data FROM pardot_records WHERE object = 'prospects' AND email = ? "
                                     "ORDER BY json_extract(data, '$.updatedAt') DESC, id DESC LIMIT 1",
                                     (_lower(email),)).fetchone()
        return json.loads(row[0]) if row else None

    def upsert_by_email(self, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Update the latest prospect with this email, or create one. :returns: (record, created)."""
        spec = OBJECTS["prospects"]
        self._check_values(spec, values, creating=True)
        with self._lock:
            existing = self.latest_by_email(values["email"])
            if existing is None:
                return self.create(spec, values), True
            return self.update(spec, existing["id"], values), False

    def select(self, spec: PardotObjectSpec, *, after_id: int = 0, limit: int = 200,
               equals: dict[str, Any] | None = None, updated_after: str | None = None,
               offset: int = 0, descending: bool = False) -> list[dict[str, Any]]:
        """Records by id (ascending unless ``descending``), filtered by field equality."""
        sql = "SELECT data FROM pardot_records WHERE object = ? AND id > ?"
        args: list[Any] = [spec.path, after_id]
        for name, value in (equals or {}).items():
            sql += " AND CAST(json_extract(data, ?) AS TEXT) = ?"
            args += [f"$.{name}", str(value).lower() if isinstance(value, bool) else str(value)]
        if updated_after:
            sql += " AND json_extract(data, '$.updatedAt') > ?"
            args.append(updated_after)
        sql += f" ORDER BY id {'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            return [json.loads(row[0]) for row in self._conn.execute(sql, args)]

    def count(self, spec: PardotObjectSpec) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM pardot_records WHERE object = ?",
                                      (spec.path,)).fetchone()[0]


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The record restricted to ``fields`` (absent ones as null, as Pardot does)."""
    return {name: record.get(name) for name in fields}
