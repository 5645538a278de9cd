"""Record writes: create, update, delete/undelete (with cascades), upsert by external id and
the platform's own system-field updates (SOAP ``convertLead``/``merge``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata import ObjectDef
from .core import _CASCADE_COL, _CHUNK, ChangeEvent, RecordResult, _not_found, _q
from .seed import ADMIN_USER_ID
from .setup_rules import SetupRules


class RecordWrites(SetupRules):
    """Create, update, delete, undelete and upsert records, firing change events."""

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
            self._check_record_types(obj, cleaned, failures, creating=True)
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
            derived = self._derived_fields(obj)
            columns = ["Id", *system, *system_defaults, *defaults, *(f.name for f in auto_fields)]
            columns += [f for f in derived if f not in columns]
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
                if derived:
                    merged.update(self._derive_setup_fields(obj, merged, row, None, now))
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
                "The Id field should not be specified in the sobject data.", fields=[]
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
            self._check_record_types(obj, cleaned, failures, creating=False)
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
                setup_derived = self._derive_setup_fields(obj, after, values, before, now)
                if setup_derived:
                    values.update(setup_derived)
                    after.update(setup_derived)
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

    # ----------------------------------------------------------------- upsert

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

    # ----------------------------------------------------------------- system fields (SOAP)
    # convertLead/merge set fields that are read-only to clients.

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
