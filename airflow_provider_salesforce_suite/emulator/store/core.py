"""The store's base: SQLite connection, schema and seeding, lifecycle, change listeners,
transactions and the helpers every group of operations shares.

One table per sObject, one column per field. Every public method takes the store's lock, so the
HTTP event loop and background (Bulk) worker threads can share one connection safely.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata import Metadata, ObjectDef, load_metadata
from ..metadata.describe import version_path
from ..metadata.model import FieldDef
from ..metadata.validation import RecordValidator, api_value, format_datetime
from ..soql.cursors import CursorRegistry
from ..soql.engine import QueryEngine
from .seed import ADMIN_USER_ID, default_rows



# Hidden column: the id of the record whose delete cascaded to this one, so undelete restores it.
_CASCADE_COL = "_CascadeRootId"
_CHUNK = 500  # SQLite's default limit on host parameters is 32766; stay far below


@dataclass
class RecordResult:
    """Outcome of one row of a multi-record operation.

    :param id: the record id (``None`` when a create failed).
    :param success: whether the row succeeded.
    :param created: whether a record was created (upsert/create).
    :param errors: the row's errors.
    """

    id: str | None
    success: bool
    created: bool
    errors: list[SalesforceApiError] = field(default_factory=list)


@dataclass
class ChangeEvent:
    """A committed change, for listeners such as the Streaming API.

    :param sobject: object name.
    :param operation: ``create``, ``update``, ``delete`` or ``undelete``.
    :param record_id: the record's id.
    :param changed_fields: fields whose value changed (all set fields on create).
    :param record: the record's field values after the change.
    """

    sobject: str
    operation: str
    record_id: str
    changed_fields: list[str]
    record: dict[str, Any]


@dataclass(frozen=True)
class _Listener:
    """A registered change listener and the sObjects it cares about (``wants=None``: every one)."""

    callback: Callable[[ChangeEvent], None]
    wants: Callable[[str], bool] | None = None


def _q(name: str) -> str:
    """Quote an identifier (object and field names come from metadata, never from clients)."""
    return '"' + name.replace('"', '""') + '"'


def _not_found() -> SalesforceApiError:
    return SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)


class StoreBase:
    """The emulated org's data: SQLite tables for every sObject, CRUD with validation, SOQL.

    The base of :class:`~airflow_provider_salesforce_suite.emulator.store.Store`: the connection,
    schema, seeding, lifecycle, listeners, transactions and shared helpers; the operations live in
    mixins (``records``, ``reads``, ``bulk``, ``replication``).

    :param path: SQLite file, or ``None`` for an in-memory database.
    :param schema_files: custom schema JSON files (custom objects and fields).
    """

    def __init__(self, path: str | None = None, *, schema_files: Sequence[str | os.PathLike] = ()) -> None:
        self.metadata: Metadata = load_metadata(schema_files)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=OFF" if not path else "PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA temp_store=MEMORY")
        self._validators: dict[str, RecordValidator] = {}
        self._listeners: list[_Listener] = []
        self._savepoints: list[int] = []  # per open savepoint: len(self._pending_events) at its start
        self._pending_events: list[ChangeEvent] = []
        self._auto_numbers: dict[tuple[str, str], int] = {}
        with self._lock:
            self._create_tables()
            self._ids = ids.IdGenerator(self._max_counter() + 1)
            self._engine = QueryEngine(self.metadata)
            self._cursors = CursorRegistry(self._ids)
            self._seed(only_empty=True)
            self.setup_rows_changed()

    # ----------------------------------------------------------------- schema and seeding

    def _create_tables(self) -> None:
        for obj in self.metadata.objects.values():
            table = _q(obj.name)
            existing = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if not existing:
                cols = ['"Id" TEXT PRIMARY KEY']
                cols += [f"{_q(f.name)} {f.sql_type}" for f in obj.fields.values() if f.name != "Id"]
                cols.append(f"{_q(_CASCADE_COL)} TEXT")
                self._conn.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
            else:
                # A schema file gained fields since this database file was created.
                for fdef in obj.fields.values():
                    if fdef.name not in existing:
                        self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {_q(fdef.name)} {fdef.sql_type}")
            for fdef in obj.fields.values():
                index = _q(f"ix_{obj.name}_{fdef.name}")
                if fdef.unique:
                    # Deleted rows (recycle bin) do not hold unique values.
                    self._conn.execute(
                        f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} ({_q(fdef.name)}) "
                        'WHERE "IsDeleted" = 0'
                    )
                elif fdef.external_id or (fdef.type == "reference" and fdef.child_relationship_name):
                    # Child subqueries, semi-joins and upserts look rows up by these columns.
                    self._conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({_q(fdef.name)})")

    def _max_counter(self) -> int:
        highest = 0
        for obj in self.metadata.objects.values():
            row = self._conn.execute(f'SELECT MAX("Id") FROM {_q(obj.name)} WHERE "Id" LIKE ?',
                                     (obj.key_prefix + ids.IdGenerator._INSTANCE + "%",)).fetchone()
            if row[0]:
                highest = max(highest, ids.IdGenerator.counter_of(row[0]) or 0)
        return highest

    def _raw_insert(self, sobject: str, values: dict[str, Any], now: str) -> None:
        obj = self.metadata.objects[sobject]
        row = dict(self._validator(obj).defaults)
        row.update(values)
        row.update({"IsDeleted": 0, "CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                    "CreatedById": ADMIN_USER_ID, "LastModifiedById": ADMIN_USER_ID})
        if obj.field("OwnerId"):
            row.setdefault("OwnerId", ADMIN_USER_ID)
        self._fill_computed(obj, row)
        cols = list(row)
        self._conn.execute(
            f"INSERT INTO {_q(sobject)} ({', '.join(map(_q, cols))}) VALUES ({', '.join('?' * len(cols))})",
            [row[c] for c in cols],
        )

    def _seed(self, *, only_empty: bool = False) -> None:
        """Insert the rows every org has (:mod:`.seed`).

        :param only_empty: skip the objects that already have rows: a database file written before
            an object joined the seed gets that object's rows, and nothing else changes.
        """
        now = format_datetime(dt.datetime.now(dt.timezone.utc))
        prefixes = {name: obj.key_prefix for name, obj in self.metadata.objects.items()}
        filled: dict[str, bool] = {}
        self._begin()
        try:
            for sobject, values in default_rows(prefixes):
                if only_empty and sobject not in filled:
                    filled[sobject] = self._conn.execute(f"SELECT 1 FROM {_q(sobject)} LIMIT 1").fetchone() is not None
                if not filled.get(sobject):
                    self._raw_insert(sobject, values, now)
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def setup_rows_changed(self) -> None:
        """Call after loading or replacing setup rows (``LeadStatus``, ``RecordType`` ...) other than
        through the API: the rules and describe data that follow them are re-read
        (:class:`.setup_rules.SetupRules`)."""

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def reset(self) -> None:
        """Delete every record, then re-seed the default org rows; the schema is kept."""
        with self._lock:
            self._begin()
            for obj in self.metadata.objects.values():
                self._conn.execute(f"DELETE FROM {_q(obj.name)}")
            self._commit()
            self._cursors.clear()
            self._auto_numbers.clear()
            self._reset_org_extras()
            self._seed()
            self.setup_rows_changed()

    def add_listener(self, callback: Callable[[ChangeEvent], None], *,
                     wants: Callable[[str], bool] | None = None) -> None:
        """Call ``callback`` after every committed create/update/delete/undelete.

        Building a :class:`ChangeEvent` costs about as much as the write itself, so a write builds
        none unless some listener wants its sObject.

        :param callback: receives one :class:`ChangeEvent` per record.
        :param wants: ``wants(sobject)``: whether ``callback`` cares about changes of that object,
            asked once per write call and object (``None``: every object). It runs in the writing
            thread with the store lock held, so it may read the store but must not write.
        """
        self._listeners.append(_Listener(callback, wants))

    def _listeners_for(self, sobject: str) -> list[Callable[[ChangeEvent], None]]:
        """The callbacks that want changes of ``sobject`` (empty: build no events)."""
        return [lst.callback for lst in self._listeners if lst.wants is None or lst.wants(sobject)]

    def _wanted(self, sobject: str) -> bool:
        return any(lst.wants is None or lst.wants(sobject) for lst in self._listeners)

    def _emit(self, events: list[ChangeEvent]) -> None:
        if not events:
            return
        if self._savepoints:  # inside transaction(): listeners hear only what the outermost commit keeps
            self._pending_events.extend(events)
            return
        by_object: dict[str, list[Callable[[ChangeEvent], None]]] = {}
        for event in events:
            callbacks = by_object.get(event.sobject)
            if callbacks is None:
                callbacks = by_object[event.sobject] = self._listeners_for(event.sobject)
            for callback in callbacks:
                callback(event)

    # ----------------------------------------------------------------- transactions (records & composite)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside the block commit together, or roll back together if it raises.

        Nestable (each level is a SQLite savepoint), so an all-or-none request can wrap per-record
        writes that each roll back alone. The store lock is held throughout: other threads (Bulk
        workers) wait. Callers on the event loop must not await real I/O inside the block, or
        another request's writes could join this transaction (the lock is re-entrant per thread).
        Change listeners hear of the block's writes only once the outermost level commits.
        """
        with self._lock:
            self._begin()
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self._commit()

    def _begin(self) -> None:
        self._savepoints.append(len(self._pending_events))
        self._conn.execute(f"SAVEPOINT sp{len(self._savepoints)}")

    def _commit(self) -> None:
        self._conn.execute(f"RELEASE sp{len(self._savepoints)}")
        self._savepoints.pop()
        if not self._savepoints and self._pending_events:
            events, self._pending_events = self._pending_events, []
            self._emit(events)

    def _rollback(self) -> None:
        name = f"sp{len(self._savepoints)}"
        self._conn.execute(f"ROLLBACK TO {name}")
        self._conn.execute(f"RELEASE {name}")
        del self._pending_events[self._savepoints.pop():]

    # ----------------------------------------------------------------- helpers

    def _validator(self, obj: ObjectDef) -> RecordValidator:
        validator = self._validators.get(obj.name)
        if validator is None:
            validator = self._validators[obj.name] = RecordValidator(obj, self.metadata)
        return validator

    def _now(self) -> str:
        return format_datetime(dt.datetime.now(dt.timezone.utc))

    def _check_id(self, obj: ObjectDef, record_id: str) -> str:
        """The 18-char form of a record id sent in a URL, or MALFORMED_ID."""
        normalized = ids.normalize(record_id)
        if normalized is None or normalized[:3] != obj.key_prefix:
            raise SalesforceApiError(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", fields=["Id"]
            )
        return normalized

    def _fetch(self, obj: ObjectDef, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Full stored rows by id (deleted ones included)."""
        cols = list(obj.fields) + [_CASCADE_COL]
        select = ", ".join(map(_q, cols))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[start:start + _CHUNK]
            sql = f'SELECT {select} FROM {_q(obj.name)} WHERE "Id" IN ({", ".join("?" * len(chunk))})'
            for row in self._conn.execute(sql, chunk):
                found[row[0]] = dict(zip(cols, row))
        return found

    def _api_record(self, obj: ObjectDef, row: dict[str, Any]) -> dict[str, Any]:
        return {name: api_value(f, row.get(name)) for name, f in obj.fields.items()}

    def _fill_computed(self, obj: ObjectDef, row: dict[str, Any]) -> None:
        for fdef in obj.fields.values():
            if fdef.computed == "fullname":
                row[fdef.name] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p) or None

    def _next_auto_number(self, obj: ObjectDef, fdef: FieldDef) -> str:
        key = (obj.name, fdef.name)
        if key not in self._auto_numbers:
            row = self._conn.execute(
                f"SELECT MAX(CAST({_q(fdef.name)} AS INTEGER)) FROM {_q(obj.name)}"
            ).fetchone()
            self._auto_numbers[key] = row[0] or 0
        self._auto_numbers[key] += 1
        return f"{self._auto_numbers[key]:08d}"

    def _check_references(self, obj: ObjectDef, rows: list[tuple[int, dict[str, Any]]],
                          failures: dict[int, SalesforceApiError]) -> None:
        """Reference fields must point at an existing, undeleted record of an allowed type."""
        ref_fields = [f for f in obj.fields.values() if f.type == "reference"]
        wanted: dict[str, set[str]] = {}
        for _, row in rows:
            for fdef in ref_fields:
                value = row.get(fdef.name)
                if value is not None:
                    wanted.setdefault(value[:3], set()).add(value)
        existing: set[str] = set()
        for prefix, values in wanted.items():
            target = self.metadata.by_prefix(prefix)
            if target is None:
                continue
            vals = list(values)
            for start in range(0, len(vals), _CHUNK):
                chunk = vals[start:start + _CHUNK]
                sql = (f'SELECT "Id" FROM {_q(target.name)} WHERE "IsDeleted" = 0 '
                       f'AND "Id" IN ({", ".join("?" * len(chunk))})')
                existing.update(r[0] for r in self._conn.execute(sql, chunk))
        for index, row in rows:
            for fdef in ref_fields:
                value = row.get(fdef.name)
                if value is not None and value not in existing and index not in failures:
                    failures[index] = SalesforceApiError(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=[fdef.name]
                    )

    def _check_unique(self, obj: ObjectDef, rows: list[tuple[int, dict[str, Any]]],
                      failures: dict[int, SalesforceApiError], own_ids: dict[int, str]) -> None:
        """Unique fields: no clash within the batch nor with live records (case-insensitive)."""
        for fdef in (f for f in obj.fields.values() if f.unique):
            seen: dict[str, str | None] = {}
            values = [(i, row[fdef.name]) for i, row in rows if row.get(fdef.name) is not None]
            if not values:
                continue
            keys = list({str(v).lower() for _, v in values})
            holders: dict[str, str] = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                sql = (f'SELECT "Id", lower({_q(fdef.name)}) FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                       f'AND lower({_q(fdef.name)}) IN ({", ".join("?" * len(chunk))})')
                holders.update({r[1]: r[0] for r in self._conn.execute(sql, chunk)})
            for index, value in values:
                key = str(value).lower()
                holder = holders.get(key)
                if holder is not None and holder == own_ids.get(index):
                    holder = None
                if holder is None and key in seen:
                    holder = seen[key] or ""
                if holder is not None and index not in failures:
                    failures[index] = SalesforceApiError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {fdef.name} duplicates value on record with id: {holder}",
                        fields=[fdef.name],
                    )
                seen.setdefault(key, own_ids.get(index))

    @staticmethod
    def _rolled_back(results: list[RecordResult]) -> list[RecordResult]:
        error = SalesforceApiError(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
        )
        return [r if not r.success else RecordResult(None, False, False, [error]) for r in results]

    # ----------------------------------------------------------------- org state (not records)

    @property
    def org_extras(self) -> dict[str, Any]:
        """Org state that is not records (password expiry, approval instances); cleared by :meth:`reset`."""
        extras = self.__dict__.get("_org_extras")
        if extras is None:
            extras = self.__dict__["_org_extras"] = {}
        return extras

    def _reset_org_extras(self) -> None:
        self.org_extras.clear()

    @property
    def lock(self) -> threading.RLock:
        """The store's lock, for callers that keep org extras consistent across several calls."""
        return self._lock

    # ----------------------------------------------------------------- external ids (upsert, reads, Bulk)

    def _external_id_field(self, obj: ObjectDef, field_name: str) -> FieldDef:
        fdef = obj.field(field_name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise SalesforceApiError(
                "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field_name}",
                status=404,
            )
        return fdef

    def _match_external(self, obj: ObjectDef, fdef: FieldDef, value: str, api_version: str) -> list[str]:
        if fdef.name == "Id":
            normalized = ids.normalize(value)
            if normalized is None:
                return []
            sql = f'SELECT "Id" FROM {_q(obj.name)} WHERE "IsDeleted" = 0 AND "Id" = ?'
            return [r[0] for r in self._conn.execute(sql, (normalized,))]
        stored = self._validator(obj)._converters[fdef.name](value)
        sql = f'SELECT "Id" FROM {_q(obj.name)} WHERE "IsDeleted" = 0 AND {_q(fdef.name)} = ?'
        matches = [r[0] for r in self._conn.execute(sql, (stored,))]
        if len(matches) > 1:
            base = f"{version_path(api_version)}/sobjects/{obj.name}/"
            raise SalesforceApiError(
                "MULTIPLE_CHOICES",
                f"More than one record found for external id field {fdef.name} with value {value}.",
                status=300, extra={"urls": [base + m for m in matches]},
            )
        return matches
