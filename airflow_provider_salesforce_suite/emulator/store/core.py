"""The one SQLite store every emulated API reads and writes.

One table per sObject, one column per field. Every public method takes the store's lock, so the
HTTP event loop and background (Bulk) worker threads can share one connection safely.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata import Metadata, ObjectDef, load_metadata
from ..metadata.describe import basic_info, describe_global, describe_object, version_path
from ..metadata.model import FieldDef
from ..metadata.validation import RecordValidator, api_value, format_datetime
from ..soql.cursors import CursorRegistry
from ..soql.engine import QueryEngine
from ..soql.explain import plans as explain_plans
from ..soql.parser import parse as parse_soql
from ..sosl import SearchEngine
from ..sosl import parse as parse_sosl
from ..sosl.engine import searchable_objects

ORG_ID = ids.to_18("00D000000000001")
ADMIN_USER_ID = ids.to_18("005000000000001")
ADMIN_PROFILE_ID = ids.to_18("00e000000000001")
STANDARD_PROFILE_ID = ids.to_18("00e000000000002")
STANDARD_PRICEBOOK_ID = ids.to_18("01s000000000001")
ADMIN_USERNAME = "admin@emulator.local"

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


class Store:
    """The emulated org's data: SQLite tables for every sObject, CRUD with validation, SOQL.

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
            if self._conn.execute(f'SELECT COUNT(*) FROM {_q("User")}').fetchone()[0] == 0:
                self._seed()

    # ----------------------------------------------------------------- schema and seeding

    def _create_tables(self) -> None:
        for obj in self.metadata.objects.values():
            table = _q(obj.name)
            existing = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if not existing:
                cols = [f'"Id" TEXT PRIMARY KEY']
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

    def _seed(self) -> None:
        """The rows every org has: the Organization, two profiles, the admin user, the standard price book."""
        now = format_datetime(dt.datetime.now(dt.timezone.utc))
        self._begin()
        try:
            self._raw_insert("Organization", {
                "Id": ORG_ID, "Name": "Emulator Org", "OrganizationType": "Developer Edition",
                "InstanceName": "EMU1", "IsSandbox": 0, "DefaultLocaleSidKey": "en_US",
                "LanguageLocaleKey": "en_US", "TimeZoneSidKey": "America/Los_Angeles", "Country": "US",
            }, now)
            self._raw_insert("Profile", {"Id": ADMIN_PROFILE_ID, "Name": "System Administrator",
                                         "UserType": "Standard"}, now)
            self._raw_insert("Profile", {"Id": STANDARD_PROFILE_ID, "Name": "Standard User",
                                         "UserType": "Standard"}, now)
            self._raw_insert("User", {
                "Id": ADMIN_USER_ID, "Username": ADMIN_USERNAME, "FirstName": "Emulator",
                "LastName": "Admin", "Email": ADMIN_USERNAME, "Alias": "admin",
                "CommunityNickname": "admin", "IsActive": 1, "TimeZoneSidKey": "America/Los_Angeles",
                "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
                "ProfileId": ADMIN_PROFILE_ID, "UserType": "Standard", "CompanyName": "Emulator Org",
            }, now)
            self._raw_insert("Pricebook2", {"Id": STANDARD_PRICEBOOK_ID, "Name": "Standard Price Book",
                                            "IsActive": 1, "IsStandard": 1}, now)
            self._commit()
        except BaseException:
            self._rollback()
            raise

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

    # ----------------------------------------------------------------- create

    def create(self, sobject: str, values: dict[str, Any], *, user_id: str | None = None) -> str:
        """Create one record and return its 18-char id.

        :param sobject: object name (any casing).
        :param values: field values.
        :param user_id: the acting user (CreatedById, default OwnerId); the admin by default.
        """
        result = self.create_many(sobject, [values], user_id=user_id)[0]
        if not result.success:
            raise result.errors[0]
        assert result.id is not None
        return result.id

    def create_many(self, sobject: str, rows: Iterable[dict[str, Any]], *, user_id: str | None = None,
                    all_or_none: bool = False) -> list[RecordResult]:
        """Create many records in one transaction; each row succeeds or fails on its own.

        :param sobject: object name.
        :param rows: field values per record.
        :param user_id: the acting user.
        :param all_or_none: if any row fails, create none (Salesforce's AllOrNone header).
        """
        obj = self.metadata.require(sobject)
        if not obj.createable:
            raise SalesforceApiError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.label}")
        validator = self._validator(obj)
        results: list[RecordResult] = []
        cleaned: list[tuple[int, dict[str, Any]]] = []
        failures: dict[int, SalesforceApiError] = {}
        for index, values in enumerate(rows):
            results.append(RecordResult(None, True, True))
            try:
                cleaned.append((index, validator.clean(values, creating=True)))
            except SalesforceApiError as error:
                failures[index] = error
        user = user_id or ADMIN_USER_ID
        with self._lock:
            self._check_references(obj, cleaned, failures)
            self._check_unique(obj, cleaned, failures, {})
            for index, error in failures.items():
                results[index] = RecordResult(None, False, False, [error])
            if failures and all_or_none:
                return self._rolled_back(results)
            good = [(i, row) for i, row in cleaned if i not in failures]
            if not good:
                return results
            now = self._now()
            system = {"IsDeleted": 0, "CreatedDate": now, "CreatedById": user, "LastModifiedDate": now,
                      "LastModifiedById": user, "SystemModstamp": now}
            if obj.field("OwnerId"):
                system_defaults = {"OwnerId": user}
            else:
                system_defaults = {}
            auto_fields = [f for f in obj.fields.values() if f.auto_number]
            computed = any(f.computed for f in obj.fields.values())
            defaults = validator.defaults
            columns = ["Id", *system, *system_defaults, *defaults, *(f.name for f in auto_fields)]
            seen_cols = set(columns)
            for _, row in good:
                for key in row:
                    if key not in seen_cols:
                        seen_cols.add(key)
                        columns.append(key)
            if computed:
                columns += [f.name for f in obj.fields.values() if f.computed and f.name not in seen_cols]
            new_ids = self._ids.new_ids(obj.key_prefix, len(good))
            base = {**system_defaults, **defaults}
            tuples = []
            full_rows = []
            wanted = self._wanted(obj.name)
            for (index, row), new_id in zip(good, new_ids):
                merged = {**base, **row, **system, "Id": new_id}
                for fdef in auto_fields:
                    merged[fdef.name] = self._next_auto_number(obj, fdef)
                if computed:
                    self._fill_computed(obj, merged)
                tuples.append(tuple(merged.get(c) for c in columns))
                results[index] = RecordResult(new_id, True, True)
                if wanted:
                    full_rows.append(merged)
            sql = (f"INSERT INTO {_q(obj.name)} ({', '.join(map(_q, columns))}) "
                   f"VALUES ({', '.join('?' * len(columns))})")
            self._begin()
            try:
                self._conn.executemany(sql, tuples)
                self._commit()
            except sqlite3.IntegrityError as error:
                self._rollback()
                raise SalesforceApiError("DUPLICATE_VALUE", f"duplicate value found: {error}") from error
            except BaseException:
                self._rollback()
                raise
        if full_rows:
            self._emit([
                ChangeEvent(obj.name, "create", row["Id"],
                            [k for k, v in row.items() if v is not None and k != "Id"],
                            self._api_record(obj, row))
                for row in full_rows
            ])
        return results

    # ----------------------------------------------------------------- update

    def update(self, sobject: str, record_id: str, values: dict[str, Any], *, user_id: str | None = None) -> None:
        """Update one record.

        :param sobject: object name.
        :param record_id: 15- or 18-char id.
        :param values: the fields to change.
        :param user_id: the acting user.
        """
        obj = self.metadata.require(sobject)
        normalized = self._check_id(obj, record_id)
        body_id = values.get("Id") or values.get("id")
        if body_id and ids.normalize(body_id) != normalized:
            raise SalesforceApiError(
                "INVALID_ID_FIELD",
                f"The Id field should not be specified in the sobject data.", fields=[]
            )
        result = self.update_many(sobject, [{**values, "Id": normalized}], user_id=user_id)[0]
        if not result.success:
            raise result.errors[0]

    def update_many(self, sobject: str, rows: Iterable[dict[str, Any]], *, user_id: str | None = None,
                    all_or_none: bool = False) -> list[RecordResult]:
        """Update many records (each row carries its ``Id``) in one transaction.

        :param sobject: object name.
        :param rows: field values per record, each with ``Id``.
        :param user_id: the acting user.
        :param all_or_none: if any row fails, update none.
        """
        obj = self.metadata.require(sobject)
        if not obj.updateable:
            raise SalesforceApiError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.label}")
        validator = self._validator(obj)
        rows = list(rows)
        results: list[RecordResult] = []
        failures: dict[int, SalesforceApiError] = {}
        cleaned: list[tuple[int, dict[str, Any]]] = []
        own_ids: dict[int, str] = {}
        for index, values in enumerate(rows):
            raw_id = next((v for k, v in values.items() if k.lower() == "id"), None)
            normalized = ids.normalize(raw_id)
            results.append(RecordResult(normalized, True, False))
            if raw_id is None:
                failures[index] = SalesforceApiError("MISSING_ARGUMENT", "Id not specified in an update call")
                continue
            if normalized is None or normalized[:3] != obj.key_prefix:
                failures[index] = SalesforceApiError(
                    "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {raw_id}", fields=["Id"]
                )
                continue
            own_ids[index] = normalized
            try:
                cleaned.append((index, validator.clean(values, creating=False)))
            except SalesforceApiError as error:
                failures[index] = error
        user = user_id or ADMIN_USER_ID
        events: list[ChangeEvent] = []
        with self._lock:
            existing = self._fetch(obj, list(set(own_ids.values())))
            for index, record_id in own_ids.items():
                row = existing.get(record_id)
                if index in failures:
                    continue
                if row is None:
                    failures[index] = _not_found()
                elif row["IsDeleted"]:
                    failures[index] = SalesforceApiError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            self._check_references(obj, cleaned, failures)
            self._check_unique(obj, cleaned, failures, own_ids)
            for index, error in failures.items():
                results[index] = RecordResult(results[index].id, False, False, [error])
            if failures and all_or_none:
                return self._rolled_back(results)
            now = self._now()
            system = {"LastModifiedDate": now, "LastModifiedById": user, "SystemModstamp": now}
            computed = [f for f in obj.fields.values() if f.computed]
            wanted = self._wanted(obj.name)
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for index, values in cleaned:
                if index in failures:
                    continue
                record_id = own_ids[index]
                before = existing[record_id]
                after = {**before, **values}
                if computed:
                    self._fill_computed(obj, after)
                    for fdef in computed:
                        values[fdef.name] = after[fdef.name]
                changed = [k for k, v in values.items() if before.get(k) != v]
                after.update(system)
                existing[record_id] = after  # a later row for the same id sees this one
                change = {**values, **system}
                cols = tuple(change)
                groups.setdefault(cols, []).append((*change.values(), record_id))
                if wanted:
                    events.append(ChangeEvent(obj.name, "update", record_id, changed, self._api_record(obj, after)))
            self._begin()
            try:
                for cols, params in groups.items():
                    sets = ", ".join(f"{_q(c)} = ?" for c in cols)
                    self._conn.executemany(f'UPDATE {_q(obj.name)} SET {sets} WHERE "Id" = ?', params)
                self._commit()
            except BaseException:
                self._rollback()
                raise
        self._emit(events)
        return results

    # ----------------------------------------------------------------- delete / undelete

    def _cascade_targets(self, obj: ObjectDef, parent_ids: list[str]) -> list[tuple[ObjectDef, list[str]]]:
        """Live children to delete with ``parent_ids``, depth first."""
        found: list[tuple[ObjectDef, list[str]]] = []
        for rel in obj.child_relationships:
            if not rel.cascade_delete:
                continue
            child = self.metadata.objects[rel.child_sobject]
            child_ids: list[str] = []
            for start in range(0, len(parent_ids), _CHUNK):
                chunk = parent_ids[start:start + _CHUNK]
                sql = (f'SELECT "Id" FROM {_q(child.name)} WHERE "IsDeleted" = 0 AND '
                       f'{_q(rel.field)} IN ({", ".join("?" * len(chunk))})')
                child_ids += [r[0] for r in self._conn.execute(sql, chunk)]
            if child_ids:
                found.append((child, child_ids))
                found += self._cascade_targets(child, child_ids)
        return found

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft-delete a record (to the recycle bin) and the records its delete cascades to.

        :param sobject: object name.
        :param record_id: 15- or 18-char id.
        """
        obj = self.metadata.require(sobject)
        if not obj.deletable:
            raise SalesforceApiError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.label}")
        normalized = self._check_id(obj, record_id)
        with self._lock:
            row = self._fetch(obj, [normalized]).get(normalized)
            if row is None:
                raise _not_found()
            if row["IsDeleted"]:
                raise SalesforceApiError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            now = self._now()
            targets = [(obj, [normalized])] + self._cascade_targets(obj, [normalized])
            self._begin()
            try:
                for target, target_ids in targets:
                    root = None if target is obj and target_ids == [normalized] else normalized
                    for start in range(0, len(target_ids), _CHUNK):
                        chunk = target_ids[start:start + _CHUNK]
                        self._conn.execute(
                            f'UPDATE {_q(target.name)} SET "IsDeleted" = 1, "SystemModstamp" = ?, '
                            f'{_q(_CASCADE_COL)} = ? WHERE "Id" IN ({", ".join("?" * len(chunk))})',
                            [now, root, *chunk],
                        )
                self._commit()
            except BaseException:
                self._rollback()
                raise
            events = []
            for target, target_ids in targets:
                if self._wanted(target.name):
                    for rid, trow in self._fetch(target, target_ids).items():
                        events.append(ChangeEvent(target.name, "delete", rid, [], self._api_record(target, trow)))
        self._emit(events)

    def undelete(self, sobject: str, record_id: str) -> None:
        """Restore a record from the recycle bin, with the records its delete cascaded to.

        :param sobject: object name.
        :param record_id: 15- or 18-char id.
        """
        obj = self.metadata.require(sobject)
        normalized = self._check_id(obj, record_id)
        with self._lock:
            row = self._fetch(obj, [normalized]).get(normalized)
            if row is None:
                raise _not_found()
            if not row["IsDeleted"]:
                raise SalesforceApiError("UNDELETE_FAILED", "Entity is not in the recycle bin")
            unique = [f for f in obj.fields.values() if f.unique and row.get(f.name) is not None]
            failures: dict[int, SalesforceApiError] = {}
            self._check_unique(obj, [(0, {f.name: row[f.name] for f in unique})], failures, {0: normalized})
            if failures:
                raise failures[0]
            now = self._now()
            restored: list[tuple[ObjectDef, str]] = [(obj, normalized)]
            self._begin()
            try:
                self._conn.execute(
                    f'UPDATE {_q(obj.name)} SET "IsDeleted" = 0, "SystemModstamp" = ?, {_q(_CASCADE_COL)} = NULL '
                    'WHERE "Id" = ?', (now, normalized))
                for other in self.metadata.objects.values():
                    rows = self._conn.execute(
                        f'SELECT "Id" FROM {_q(other.name)} WHERE {_q(_CASCADE_COL)} = ?', (normalized,)
                    ).fetchall()
                    if rows:
                        self._conn.execute(
                            f'UPDATE {_q(other.name)} SET "IsDeleted" = 0, "SystemModstamp" = ?, '
                            f'{_q(_CASCADE_COL)} = NULL WHERE {_q(_CASCADE_COL)} = ?', (now, normalized))
                        restored += [(other, r[0]) for r in rows]
                self._commit()
            except BaseException:
                self._rollback()
                raise
            events = []
            for target, rid in restored:
                if self._wanted(target.name):
                    trow = self._fetch(target, [rid])[rid]
                    events.append(ChangeEvent(target.name, "undelete", rid, [], self._api_record(target, trow)))
        self._emit(events)

    # ----------------------------------------------------------------- upsert / external ids

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

    def upsert(self, sobject: str, external_id_field: str, external_id_value: str, values: dict[str, Any], *,
               user_id: str | None = None, api_version: str = "64.0") -> tuple[str, bool]:
        """Create or update the record whose external id field equals the value.

        :param sobject: object name.
        :param external_id_field: an External ID field (or ``Id``).
        :param external_id_value: the value to match (case-insensitively).
        :param values: field values; must not set the external id field to a different value.
        :param user_id: the acting user.
        :param api_version: used for the URLs of a 300 (several matches) error.
        :return: ``(id, created)``.
        """
        obj = self.metadata.require(sobject)
        fdef = self._external_id_field(obj, external_id_field)
        body = dict(values)
        for key in list(body):
            if key.lower() == fdef.name.lower():
                if str(body[key]).lower() != str(external_id_value).lower():
                    raise SalesforceApiError(
                        "INVALID_FIELD",
                        f"The value of {fdef.name} in the request body ({body[key]}) does not match the "
                        f"external ID value in the URL ({external_id_value})",
                        fields=[fdef.name],
                    )
                del body[key]
            elif key.lower() == "id" and fdef.name != "Id":
                raise SalesforceApiError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "Unable to create/update fields: Id. Please check the security settings of this field "
                    "and verify that it is read/write for your profile or permission set.",
                    fields=["Id"],
                )
        with self._lock:
            matches = self._match_external(obj, fdef, external_id_value, api_version)
            if matches:
                self.update(obj.name, matches[0], body, user_id=user_id)
                return matches[0], False
            if fdef.name == "Id":
                raise _not_found()
            return self.create(obj.name, {**body, fdef.name: external_id_value}, user_id=user_id), True

    def retrieve_by_external_id(self, sobject: str, field: str, value: str, fields: Sequence[str] | None = None,
                                *, api_version: str) -> dict:
        """``GET /sobjects/X/Field/value``.

        :param sobject: object name.
        :param field: an External ID field.
        :param value: the value.
        :param fields: fields to return (all by default).
        :param api_version: API version for ``attributes.url``.
        """
        obj = self.metadata.require(sobject)
        fdef = self._external_id_field(obj, field)
        with self._lock:
            matches = self._match_external(obj, fdef, value, api_version)
            if not matches:
                raise _not_found()
            return self.retrieve(obj.name, matches[0], fields, api_version=api_version)

    # ----------------------------------------------------------------- reads

    def retrieve(self, sobject: str, record_id: str, fields: Sequence[str] | None = None, *,
                 api_version: str) -> dict:
        """``GET /sobjects/X/id``: the record in REST shape, ``attributes`` first.

        :param sobject: object name.
        :param record_id: 15- or 18-char id.
        :param fields: fields to return (all by default; ``Id`` is always included).
        :param api_version: API version for ``attributes.url``.
        """
        obj = self.metadata.require(sobject)
        normalized = ids.normalize(record_id)
        if normalized is None:
            # Salesforce reads a non-id path segment as an external id field name.
            raise SalesforceApiError(
                "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}",
                status=404,
            )
        if normalized[:3] != obj.key_prefix:
            raise SalesforceApiError(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", fields=["Id"]
            )
        if fields:
            wanted: list[FieldDef] = []
            for name in fields:
                fdef = obj.field(name.strip())
                if fdef is None:
                    raise SalesforceApiError(
                        "INVALID_FIELD", f"No such column '{name.strip()}' on sobject of type {obj.name}"
                    )
                if fdef not in wanted:
                    wanted.append(fdef)
            if obj.fields["Id"] not in wanted:
                wanted.append(obj.fields["Id"])
        else:
            wanted = list(obj.fields.values())
        with self._lock:
            row = self._fetch(obj, [normalized]).get(normalized)
        if row is None or row["IsDeleted"]:
            raise _not_found()
        record: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"{version_path(api_version)}/sobjects/{obj.name}/{normalized}"}
        }
        for fdef in wanted:
            record[fdef.name] = api_value(fdef, row[fdef.name])
        return record

    def find_user(self, username: str) -> dict | None:
        """The User with ``Username`` (case-insensitive), as a field dict, or ``None``.

        :param username: the username.
        """
        obj = self.metadata.objects["User"]
        with self._lock:
            row = self._conn.execute(
                f'SELECT "Id" FROM {_q("User")} WHERE "IsDeleted" = 0 AND "Username" = ?', (username,)
            ).fetchone()
            if row is None:
                return None
            return self._api_record(obj, self._fetch(obj, [row[0]])[row[0]])

    def record_counts(self, sobjects: Sequence[str] | None = None) -> dict:
        """``/limits/recordCount``: live record counts per object.

        :param sobjects: object names (all objects by default).
        """
        objs = [self.metadata.require(n) for n in sobjects] if sobjects else list(self.metadata.objects.values())
        counts = []
        with self._lock:
            for obj in objs:
                count = self._conn.execute(f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
                counts.append({"count": count, "name": obj.name})
        return {"sObjects": counts}

    # ----------------------------------------------------------------- describe

    def describe_global(self, *, api_version: str) -> dict:
        """``GET /sobjects``.

        :param api_version: API version for urls.
        """
        return describe_global(self.metadata, api_version)

    def describe(self, sobject: str, *, api_version: str) -> dict:
        """``GET /sobjects/X/describe``.

        :param sobject: object name.
        :param api_version: API version for urls.
        """
        return describe_object(self.metadata, self.metadata.require(sobject), api_version)

    def sobject_basic_info(self, sobject: str, *, api_version: str) -> dict:
        """``GET /sobjects/X``: the object's basic describe and its most recently modified records.

        :param sobject: object name.
        :param api_version: API version for urls.
        """
        obj = self.metadata.require(sobject)
        name_field = obj.name_field
        cols = ['"Id"'] + ([_q(name_field.name)] if name_field else [])
        with self._lock:
            rows = self._conn.execute(
                f'SELECT {", ".join(cols)} FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                'ORDER BY "LastModifiedDate" DESC, rowid DESC LIMIT 10'
            ).fetchall()
        recent = []
        for row in rows:
            item: dict[str, Any] = {"attributes": {"type": obj.name,
                                                   "url": f"{version_path(api_version)}/sobjects/{obj.name}/{row[0]}"},
                                    "Id": row[0]}
            if name_field:
                item[name_field.name] = row[1]
            recent.append(item)
        return {"objectDescribe": basic_info(obj, api_version), "recentItems": recent}

    # ----------------------------------------------------------------- SOQL

    def query(self, soql: str, *, include_deleted: bool = False, batch_size: int = 2000, api_version: str) -> dict:
        """Run a SOQL query; the first page of results in the REST shape.

        :param soql: the query.
        :param include_deleted: include recycle-bin rows (``queryAll``).
        :param batch_size: page size, clamped to Salesforce's 200..2000.
        :param api_version: API version for urls.
        """
        batch_size = max(200, min(2000, int(batch_size)))
        plan = self._engine.compile(soql, include_deleted=include_deleted)
        with self._lock:
            rows = plan.fetch(self._conn)
            if plan.count_only:
                return {"totalSize": rows, "done": True, "records": []}
            page = rows[:batch_size]
            records = plan.shape(self._conn, page, api_version)
            result: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= batch_size, "records": records}
            if len(rows) > batch_size:
                locator = self._cursors.open(plan, rows, batch_size)
                result["nextRecordsUrl"] = f"{version_path(api_version)}/query/{locator}"
        return result

    def query_more(self, locator: str, *, api_version: str) -> dict:
        """The next page of a query, by the last path segment of its ``nextRecordsUrl``.

        :param locator: e.g. ``01gXXXXXXXXXXXXXXX-2000``.
        :param api_version: API version for urls.
        """
        with self._lock:
            cursor, start = self._cursors.get(locator)
            page = cursor.rows[start:start + cursor.batch_size]
            records = cursor.plan.shape(self._conn, page, api_version)
            end = start + len(page)
            done = end >= len(cursor.rows)
            result: dict[str, Any] = {"totalSize": len(cursor.rows), "done": done, "records": records}
            if done:
                self._cursors.close(locator)
            else:
                result["nextRecordsUrl"] = f"{version_path(api_version)}/query/{cursor.locator}-{end}"
        return result

    # ================================================================= >>> REST query, search & org
    # Search, explain, replication (updated/deleted), recent items, blobs and the org's
    # non-record state (password expiry, approval instances), for the REST "query & org" resources.

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

    def search(self, sosl: str, *, api_version: str) -> list[dict]:
        """Run a SOSL search; the ``searchRecords``.

        :param sosl: the SOSL statement.
        :param api_version: API version for urls.
        """
        query = parse_sosl(sosl)
        engine = self.__dict__.get("_search_engine")
        if engine is None:
            engine = self.__dict__["_search_engine"] = SearchEngine(self.metadata, self._engine)
        with self._lock:
            return engine.run(query, self._conn, api_version)

    def explain(self, soql: str) -> dict:
        """``/query?explain=``: the query plans Salesforce would consider.

        :param soql: the query.
        """
        plan = self._engine.compile(soql)
        query = parse_soql(soql)
        obj = self.metadata.require(query.sobject)
        with self._lock:
            if plan.count_only or plan.aggregate is not None:
                cardinality = self._conn.execute(
                    f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
            else:
                plan.limit = plan.offset = None
                cardinality = len(plan.fetch(self._conn))
            total = self._conn.execute(f'SELECT COUNT(*) FROM {_q(obj.name)} WHERE "IsDeleted" = 0').fetchone()[0]
        return {"plans": explain_plans(obj, query, cardinality, total), "sourceQuery": soql}

    def changed_ids(self, sobject: str, start: dt.datetime, end: dt.datetime, *, deleted: bool) -> list[tuple[str, str]]:
        """``(id, SystemModstamp)`` of records changed (or deleted) in ``[start, end)``, oldest first.

        :param sobject: object name.
        :param start: window start (aware).
        :param end: window end (aware).
        :param deleted: deleted records instead of live ones.
        """
        obj = self.metadata.require(sobject)
        with self._lock:
            return [tuple(r) for r in self._conn.execute(
                f'SELECT "Id", "SystemModstamp" FROM {_q(obj.name)} WHERE "IsDeleted" = ? '
                'AND "SystemModstamp" >= ? AND "SystemModstamp" < ? ORDER BY "SystemModstamp", "Id"',
                (1 if deleted else 0, format_datetime(start), format_datetime(end)))]

    def org_created_date(self) -> str:
        """When the org's data was (re)seeded: nothing is purged before it."""
        with self._lock:
            row = self._conn.execute(f'SELECT "CreatedDate" FROM {_q("Organization")} LIMIT 1').fetchone()
        return row[0] if row else self._now()

    def recent_items(self, limit: int, *, api_version: str) -> list[dict]:
        """The most recently created or modified business records, newest first.

        The emulator has no UI, so "recently viewed" means touched through an API.

        :param limit: at most this many.
        :param api_version: API version for urls.
        """
        found: list[tuple[str, str, ObjectDef, Any]] = []
        with self._lock:
            for obj in searchable_objects(self.metadata):
                name_field = obj.name_field
                name_sql = _q(name_field.name) if name_field else "NULL"
                for rid, modified, name in self._conn.execute(
                    f'SELECT "Id", "LastModifiedDate", {name_sql} FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                    'ORDER BY "LastModifiedDate" DESC, rowid DESC LIMIT ?', (limit,)):
                    found.append((modified, rid, obj, name))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        items = []
        for _, rid, obj, name in found[:limit]:
            item: dict[str, Any] = {"attributes": {"type": obj.name,
                                                   "url": f"{version_path(api_version)}/sobjects/{obj.name}/{rid}"},
                                    "Id": rid}
            if obj.name_field:
                item[obj.name_field.name] = name
            items.append(item)
        return items

    def blob_length(self, sobject: str, record_id: str, field_name: str) -> int:
        """Decoded byte length of a base64 field (``Attachment.Body``), or NOT_FOUND.

        :param sobject: object name.
        :param record_id: the record id.
        :param field_name: a base64 field.
        """
        obj = self.metadata.require(sobject)
        fdef = obj.field(field_name)
        if fdef is None or fdef.type != "base64":
            raise _not_found()
        normalized = self._check_id(obj, record_id)
        with self._lock:
            row = self._conn.execute(
                f'SELECT length({_q(fdef.name)}), substr({_q(fdef.name)}, -2) FROM {_q(obj.name)} '
                'WHERE "Id" = ? AND "IsDeleted" = 0', (normalized,)).fetchone()
        if row is None:
            raise _not_found()
        if row[0] is None:
            return 0
        return row[0] // 4 * 3 - (row[1] or "").count("=")

    def blob_chunks(self, sobject: str, record_id: str, field_name: str, chunk_size: int = 3 * 1024 * 16):
        """Yield a base64 field's decoded bytes in chunks, reading the stored text piecewise.

        :param sobject: object name.
        :param record_id: the record id (checked by :meth:`blob_length` first).
        :param field_name: a base64 field.
        :param chunk_size: decoded bytes per chunk (a multiple of 3).
        """
        import base64

        obj = self.metadata.require(sobject)
        column = _q(obj.field(field_name).name)
        normalized = ids.normalize(record_id)
        encoded = chunk_size // 3 * 4
        start = 1
        while True:
            with self._lock:
                row = self._conn.execute(f'SELECT substr({column}, ?, ?) FROM {_q(obj.name)} WHERE "Id" = ?',
                                         (start, encoded, normalized)).fetchone()
            text = row[0] if row else None
            if not text:
                return
            yield base64.b64decode(text)
            start += encoded
    # ================================================================= <<< REST query, search & org

    # ================================================================= >>> Bulk API
    # Many-record upsert/delete/hardDelete with per-record results, external id lookups for
    # relationship columns, and flat (CSV-shaped) query rows, for the Bulk API 1.0 and 2.0 workers.

    def external_ids(self, sobject: str, field_name: str, values: Iterable[str]) -> dict[str, list[str]]:
        """Live record ids by (case-folded) external id value.

        :param sobject: object name.
        :param field_name: an External ID field (or ``Id``).
        :param values: the values to look up.
        """
        obj = self.metadata.require(sobject)
        fdef = self._external_id_field(obj, field_name)
        convert = self._validator(obj)._converters[fdef.name]
        stored: dict[Any, list[str]] = {}
        for value in values:
            try:
                key = ids.normalize(value) if fdef.name == "Id" else convert(value)
            except SalesforceApiError:
                continue
            if key is not None:
                stored.setdefault(key, []).append(value)
        found: dict[str, list[str]] = {}
        keys = list(stored)
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                sql = (f'SELECT "Id", {_q(fdef.name)} FROM {_q(obj.name)} WHERE "IsDeleted" = 0 '
                       f'AND {_q(fdef.name)} IN ({", ".join("?" * len(chunk))})')
                for record_id, key in self._conn.execute(sql, chunk):
                    for value in stored.get(key, ()):
                        found.setdefault(str(value).lower(), []).append(record_id)
        return found

    def upsert_many(self, sobject: str, external_id_field: str, rows: Sequence[dict[str, Any]], *,
                    user_id: str | None = None) -> list[RecordResult]:
        """Upsert many records by an External ID field; each row succeeds or fails on its own.

        :param sobject: object name.
        :param external_id_field: the External ID field (or ``Id``) every row carries.
        :param rows: field values per record.
        :param user_id: the acting user.
        """
        obj = self.metadata.require(sobject)
        fdef = self._external_id_field(obj, external_id_field)
        results: list[RecordResult | None] = [None] * len(rows)
        keyed: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            value = next((v for k, v in row.items() if k.lower() == fdef.name.lower()), None)
            if value in (None, ""):
                results[index] = RecordResult(None, False, False, [SalesforceApiError(
                    "MISSING_ARGUMENT", f"{fdef.name} not specified", fields=[fdef.name])])
            else:
                keyed.append((index, str(value)))
        counts: dict[str, int] = {}
        for _, value in keyed:
            counts[value.lower()] = counts.get(value.lower(), 0) + 1
        with self._lock:
            matches = self.external_ids(obj.name, fdef.name, [v for _, v in keyed])
            creates: list[tuple[int, dict[str, Any]]] = []
            updates: list[tuple[int, dict[str, Any]]] = []
            for index, value in keyed:
                found = matches.get(value.lower(), [])
                if counts[value.lower()] > 1:
                    results[index] = RecordResult(None, False, False, [SalesforceApiError(
                        "DUPLICATE_EXTERNAL_ID",
                        f"Duplicate external id specified: {value}", fields=[fdef.name])])
                elif len(found) > 1:
                    results[index] = RecordResult(None, False, False, [SalesforceApiError(
                        "DUPLICATE_EXTERNAL_ID",
                        f"{fdef.name} duplicates value on record with id: {found[0]}", fields=[fdef.name])])
                elif found:
                    values = {k: v for k, v in rows[index].items() if k.lower() not in ("id", fdef.name.lower())}
                    updates.append((index, {**values, "Id": found[0]}))
                elif fdef.name == "Id":
                    results[index] = RecordResult(None, False, False, [SalesforceApiError(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=["Id"])])
                else:
                    creates.append((index, rows[index]))
            for index, result in zip((i for i, _ in updates), self.update_many(obj.name, [r for _, r in updates],
                                                                               user_id=user_id)):
                results[index] = result
            for index, result in zip((i for i, _ in creates), self.create_many(obj.name, [r for _, r in creates],
                                                                               user_id=user_id)):
                results[index] = result
        return [r for r in results if r is not None]

    def delete_many(self, sobject: str, record_ids: Sequence[str | None], *, hard: bool = False) -> list[RecordResult]:
        """Delete many records (with their cascades); each id succeeds or fails on its own.

        :param sobject: object name.
        :param record_ids: 15- or 18-char ids (``None``/empty: a missing id).
        :param hard: erase the rows instead of moving them to the recycle bin (``hardDelete``).
        """
        obj = self.metadata.require(sobject)
        if not obj.deletable:
            raise SalesforceApiError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.label}")
        results: list[RecordResult] = []
        with self._lock:
            for raw in record_ids:
                normalized = ids.normalize(raw) if raw else None
                if not raw:
                    results.append(RecordResult(None, False, False, [SalesforceApiError(
                        "MISSING_ARGUMENT", "Id not specified in a delete call")]))
                    continue
                if normalized is None or normalized[:3] != obj.key_prefix:
                    results.append(RecordResult(None, False, False, [SalesforceApiError(
                        "MALFORMED_ID", f"bad id {raw}", fields=["Id"])]))
                    continue
                targets = [(obj, [normalized])] + (self._cascade_targets(obj, [normalized]) if hard else [])
                try:
                    self.delete(obj.name, normalized)
                except SalesforceApiError as error:
                    if error.error_code == "NOT_FOUND":
                        error = SalesforceApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                    results.append(RecordResult(normalized, False, False, [error]))
                    continue
                if hard:
                    for target, target_ids in targets:
                        self._conn.executemany(f'DELETE FROM {_q(target.name)} WHERE "Id" = ?',
                                               [(t,) for t in target_ids])
                results.append(RecordResult(normalized, True, False))
        return results

    def bulk_query(self, soql: str, *, include_deleted: bool = False,
                   allow_children: bool = False,
                   id_range: tuple[str | None, str | None] | None = None) -> tuple[list[str], list[list[Any]]]:
        """Run a query for the Bulk API: flat column names (``Account.Name``) and API-typed rows.

        :param soql: the query.
        :param include_deleted: include recycle-bin rows (``queryAll``).
        :param allow_children: accept parent-to-child subqueries (their column is left out).
        :param id_range: only records whose Id is in ``[lo, hi)`` (PK chunking; ``None`` ends are open).
        :raises SalesforceApiError: the SOQL is invalid or uses what Bulk queries do not support.
        """
        plan = self._engine.compile(soql, include_deleted=include_deleted)
        if plan.count_only or plan.aggregate is not None:
            raise SalesforceApiError("API_ERROR", "Aggregate queries are not supported by the Bulk API")
        if plan.children and not allow_children:
            raise SalesforceApiError("API_ERROR", "Aggregate Relationships not supported in Bulk Query")
        assert plan.record_shape is not None
        getters: list[tuple[str, list[int], int, FieldDef]] = []

        def walk(entries: list, prefix: str, guards: list[int]) -> None:
            for key, kind, payload in entries:
                if kind == "leaf":
                    getters.append((prefix + key, guards, payload[0], payload[1]))
                elif kind == "rel":
                    walk(payload.entries, f"{prefix}{key}.", [*guards, payload.id_col])

        walk(plan.record_shape.entries, "", [])
        with self._lock:
            raw = plan.fetch(self._conn)
        if id_range is not None:
            lo, hi, col = id_range[0], id_range[1], plan.record_shape.id_col
            raw = [r for r in raw if (lo is None or r[col] >= lo) and (hi is None or r[col] < hi)]
        rows = [[None if any(r[g] is None for g in guards) else api_value(fdef, r[col])
                 for _, guards, col, fdef in getters] for r in raw]
        return [name for name, *_ in getters], rows
    # ================================================================= <<< Bulk API

    # ================================================================= >>> SOAP API
    # Writes the SOAP calls need beyond REST's: system fields set by convertLead/merge (read-only
    # to clients) and emptyRecycleBin's purge of recycle-bin rows.

    def system_update(self, sobject: str, record_id: str, values: dict[str, Any], *,
                      user_id: str | None = None) -> None:
        """Set fields the platform maintains (``Lead.IsConverted``, ``ConvertedAccountId`` ...),
        bypassing the createable/updateable checks clients are held to; fires an update event.

        :param sobject: object name.
        :param record_id: a live record's id.
        :param values: field name -> API value (converted like client values).
        :param user_id: the acting user.
        """
        obj = self.metadata.require(sobject)
        normalized = self._check_id(obj, record_id)
        converters = self._validator(obj)._converters
        change = {obj.fields[k].name: converters[obj.fields[k].name](v) for k, v in values.items()}
        now = self._now()
        change.update({"LastModifiedDate": now, "LastModifiedById": user_id or ADMIN_USER_ID, "SystemModstamp": now})
        with self._lock:
            sets = ", ".join(f"{_q(c)} = ?" for c in change)
            self._conn.execute(f'UPDATE {_q(obj.name)} SET {sets} WHERE "Id" = ? AND "IsDeleted" = 0',
                               [*change.values(), normalized])
            row = self._fetch(obj, [normalized]).get(normalized)
            events = [ChangeEvent(obj.name, "update", normalized, list(values), self._api_record(obj, row))] \
                if row is not None and self._wanted(obj.name) else []
        self._emit(events)

    def purge(self, record_ids: Sequence[str]) -> list[RecordResult]:
        """Erase recycle-bin records (and the rows their delete cascaded to): ``emptyRecycleBin``.

        :param record_ids: ids of deleted records of any object.
        """
        results: list[RecordResult] = []
        with self._lock:
            for raw in record_ids:
                normalized = ids.normalize(raw)
                obj = self.metadata.by_prefix(normalized[:3]) if normalized else None
                row = self._fetch(obj, [normalized]).get(normalized) if obj else None
                if row is None or not row["IsDeleted"]:
                    results.append(RecordResult(normalized, False, False, [SalesforceApiError(
                        "INVALID_ID_FIELD" if row is None else "ENTITY_IS_DELETED",
                        "invalid record id" if row is None else "Entity is not in the recycle bin")]))
                    continue
                for other in self.metadata.objects.values():
                    self._conn.execute(f'DELETE FROM {_q(other.name)} WHERE {_q(_CASCADE_COL)} = ?', (normalized,))
                self._conn.execute(f'DELETE FROM {_q(obj.name)} WHERE "Id" = ?', (normalized,))
                results.append(RecordResult(normalized, True, False))
        return results
    # ================================================================= <<< SOAP API
