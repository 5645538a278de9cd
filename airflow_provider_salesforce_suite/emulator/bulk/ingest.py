"""Turning Bulk ingest rows into store writes: column mapping, relationship columns, per-record results.

Used by both APIs' workers; a row's failure never fails its neighbours, only an invalid header
(unknown column) fails the whole job or batch (:class:`InvalidBatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from ..errors import SalesforceApiError
from ..metadata.model import FieldDef, ObjectDef
from ..store import RecordResult, Store
from .csvdata import NULL_MARKER

#: Rows written per store call (the store lock is released between chunks).
CHUNK_ROWS = 5000
#: Most characters per field: Bulk API 2.0 131,072; Bulk API 1.0 32,000.
V2_MAX_FIELD_CHARS = 131_072
V1_MAX_FIELD_CHARS = 32_000


class InvalidBatch(Exception):
    """The whole job/batch is invalid (``InvalidBatch : Field name not found : Foo``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_text(error: SalesforceApiError) -> str:
    """The ``sf__Error`` / ``Error`` cell: ``CODE:message:Field1,Field2 --``.

    :param error: the record's error.
    """
    fields = ",".join(error.fields)
    return f"{error.error_code}:{error.message}:{fields + ' ' if fields else ''}--"


@dataclass
class _RefColumn:
    """A relationship column ``Account.External_Id__c``: sets ``AccountId`` by external id."""

    index: int
    field: FieldDef
    target: str
    external_field: str


class RowMapper:
    """Maps one upload's header onto an object's fields.

    :param store: the store.
    :param sobject: the job's object.
    :param operation: the job's operation.
    :param header: the CSV header.
    :param external_id_field: the upsert key.
    :param max_field_chars: the API's most characters per field (a longer value fails its row).
    :raises InvalidBatch: a column is not a field of the object.
    """

    def __init__(self, store: Store, sobject: str, operation: str, header: list[str],
                 external_id_field: str | None, max_field_chars: int = V2_MAX_FIELD_CHARS) -> None:
        self.store = store
        self.max_field_chars = max_field_chars
        self.obj: ObjectDef = store.metadata.require(sobject)
        self.operation = operation
        self.header = header
        self.columns: list[tuple[int, str]] = []
        self.refs: list[_RefColumn] = []
        self.id_index: int | None = None
        for index, name in enumerate(header):
            if not name:
                raise InvalidBatch("InvalidBatch : Field name not provided")
            if "." in name:
                self.refs.append(self._ref_column(index, name))
                continue
            fdef = self.obj.field(name)
            if fdef is None:
                raise InvalidBatch(f"InvalidBatch : Field name not found : {name}")
            if fdef.name == "Id":
                self.id_index = index
            self.columns.append((index, fdef.name))
        if operation in ("delete", "hardDelete") and self.id_index is None:
            raise InvalidBatch("InvalidBatch : Field name not found : Id")
        if operation == "upsert" and external_id_field and self.obj.field(external_id_field) is None:
            raise InvalidBatch(f"InvalidBatch : Field name not found : {external_id_field}")

    def _ref_column(self, index: int, name: str) -> _RefColumn:
        relationship, _, ext = name.partition(".")
        fdef = self.obj.relationship(relationship.split(":")[0])
        target = relationship.split(":")[1] if ":" in relationship else (fdef.reference_to[0] if fdef else None)
        target_obj = self.store.metadata.get(target) if target else None
        ext_def = target_obj.field(ext) if target_obj else None
        if fdef is None or ext_def is None or not (ext_def.external_id or ext_def.name == "Id"):
            raise InvalidBatch(f"InvalidBatch : Field name not found : {name}")
        return _RefColumn(index, fdef, target_obj.name, ext_def.name)

    def values(self, cells: list[str]) -> dict[str, Any]:
        """A row's field values: empty cells are left out, ``#N/A`` sets null.

        :param cells: the row's cells.
        :raises SalesforceApiError: the row has more cells than the header, or a value over the
            API's per-field limit (``STRING_TOO_LONG``; NUL and the field's own rules are the store's
            shared validation).
        """
        if len(cells) > len(self.header):
            raise SalesforceApiError("INVALID_FIELD", "Record has more fields than the header row")
        out: dict[str, Any] = {}
        for index, name in self.columns:
            value = cells[index] if index < len(cells) else ""
            if value == "":
                continue
            if len(value) > self.max_field_chars:
                raise SalesforceApiError("STRING_TOO_LONG", f"{name}: data value too large: {len(value)} characters "
                                         f"(max length={self.max_field_chars})", fields=[name])
            out[name] = None if value == NULL_MARKER else value
        return out

    def resolve(self, rows: list[tuple[list[str], dict[str, Any]]], failures: dict[int, SalesforceApiError]) -> None:
        """Replace relationship columns by the ids of the records they name.

        :param rows: ``(cells, values)`` per row; values gain the reference field.
        :param failures: row index -> error, for values not found.
        """
        for ref in self.refs:
            wanted = {cells[ref.index] for cells, _ in rows if ref.index < len(cells) and cells[ref.index]}
            found = self.store.external_ids(ref.target, ref.external_field, wanted) if wanted else {}
            for i, (cells, values) in enumerate(rows):
                value = cells[ref.index] if ref.index < len(cells) else ""
                if not value or i in failures:
                    continue
                matches = found.get(value.lower(), [])
                if len(matches) == 1:
                    values[ref.field.name] = matches[0]
                elif not matches:
                    failures[i] = SalesforceApiError(
                        "INVALID_FIELD", f"Foreign key external ID: {value} not found for field "
                        f"{ref.external_field} in entity {ref.target}", fields=[ref.field.name])
                else:
                    failures[i] = SalesforceApiError(
                        "INVALID_FIELD", f"More than 1 record found for external ID field {ref.external_field} "
                        f"with value {value} in entity {ref.target}", fields=[ref.field.name])

    def write(self, rows: list[list[str]], *, user_id: str, external_id_field: str | None) -> list[RecordResult]:
        """Write one chunk of rows; one result per row, in order.

        :param rows: the chunk's cells.
        :param user_id: the job's owner.
        :param external_id_field: the upsert key.
        """
        failures: dict[int, SalesforceApiError] = {}
        mapped: list[tuple[list[str], dict[str, Any]]] = []
        for i, cells in enumerate(rows):
            try:
                mapped.append((cells, self.values(cells)))
            except SalesforceApiError as error:
                failures[i] = error
                mapped.append((cells, {}))
        if self.refs:
            self.resolve(mapped, failures)
        good = [i for i in range(len(rows)) if i not in failures]
        payload = [mapped[i][1] for i in good]
        op = self.operation
        if op == "insert":
            written = self.store.create_many(self.obj.name, payload, user_id=user_id)
        elif op == "update":
            written = self.store.update_many(self.obj.name, payload, user_id=user_id)
        elif op == "upsert":
            written = self.store.upsert_many(self.obj.name, external_id_field or "Id", payload, user_id=user_id)
        else:
            written = self.store.delete_many(self.obj.name, [v.get("Id") for v in payload], hard=op == "hardDelete")
        results: list[RecordResult] = []
        by_index = dict(zip(good, written))
        for i in range(len(rows)):
            results.append(by_index[i] if i in by_index else RecordResult(None, False, False, [failures[i]]))
        return results


def chunks(rows: Iterable[list[str]], size: int = CHUNK_ROWS) -> Iterator[list[list[str]]]:
    """Consecutive lists of at most ``size`` rows.

    :param rows: the rows.
    :param size: chunk size.
    """
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def run_ingest(mapper: RowMapper, rows: Iterable[list[str]], *, user_id: str, external_id_field: str | None,
               on_chunk: Callable[[list[list[str]], list[RecordResult]], None],
               stop: Callable[[], bool]) -> list[list[str]]:
    """Write every row chunk by chunk, reporting each chunk's results.

    :param mapper: the header mapping.
    :param rows: the rows.
    :param user_id: the job's owner.
    :param external_id_field: the upsert key.
    :param on_chunk: receives each chunk and its results.
    :param stop: polled between chunks (abort); the rest is returned unprocessed.
    :returns: rows left unprocessed.
    """
    it = chunks(rows)
    for chunk in it:
        if stop():
            return [row for rest in (chunk, *it) for row in rest]
        on_chunk(chunk, mapper.write(chunk, user_id=user_id, external_id_field=external_id_field))
    return []
