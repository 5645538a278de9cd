"""Many-row helpers for the Bulk API 1.0/2.0 workers and SOAP: external id lookups for
relationship columns, upsert/delete/hardDelete with per-record results, the recycle-bin purge of
``emptyRecycleBin`` and flat (CSV-shaped) query rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata.model import FieldDef
from ..metadata.validation import api_value
from .core import _CASCADE_COL, _CHUNK, RecordResult, _q
from .records import RecordWrites


def repeated_keys(records: Iterable[Any], field: str) -> set[str]:
    """The values of ``field`` (case-folded) that more than one record of an upsert call carries,
    blanks aside: Salesforce fails every record of the call holding one (the records of one call are
    matched together, so none of them can win).

    :param records: the call's records (field name to value; anything else is skipped).
    :param field: the External ID field (or ``Id``), in any case.
    """
    seen: set[str] = set()
    repeated: set[str] = set()
    for record in records:
        if not isinstance(record, dict):
            continue
        value = next((v for k, v in record.items() if k.lower() == field.lower()), None)
        if value in (None, ""):
            continue
        key = str(value).lower()
        (repeated if key in seen else seen).add(key)
    return repeated


def duplicate_external_id(field: str, value: Any) -> SalesforceApiError:
    """The error of a record whose external id value appears twice in its upsert call.

    :param field: the External ID field's name.
    :param value: the repeated value.
    """
    return SalesforceApiError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}", fields=[field])


class BulkOps(RecordWrites):
    """Many-record operations with one :class:`RecordResult` per row."""

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
        repeated = repeated_keys(rows, fdef.name)
        with self._lock:
            matches = self.external_ids(obj.name, fdef.name, [v for _, v in keyed])
            creates: list[tuple[int, dict[str, Any]]] = []
            updates: list[tuple[int, dict[str, Any]]] = []
            for index, value in keyed:
                found = matches.get(value.lower(), [])
                if value.lower() in repeated:
                    results[index] = RecordResult(None, False, False, [duplicate_external_id(fdef.name, value)])
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
