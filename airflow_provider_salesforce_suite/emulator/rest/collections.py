"""sObject Collections (``/composite/sobjects``) and relationship traversal.

Every write runs inside :meth:`Store.transaction`; each record in its own nested savepoint, so a
failing record never leaves half a write behind, and ``allOrNone`` rolls the whole request back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from .. import ids
from ..errors import SalesforceApiError
from ..store import RecordResult, Store
from ..store.bulk import duplicate_external_id, repeated_keys
from ..web import json_response, read_json, session_of, state_of
from . import handlers
from .handlers import _fields_param, _version

#: Records per create/update/upsert/delete request; ids per retrieve request. Both limits, and the 10
#: chunks below, are Salesforce's: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
#: resources_composite_sobjects_collections_create.htm ("A single request can process up to 10 chunks").
#: The errorCode for more than 10 chunks (INVALID_BATCH_REQUEST) is not documented: unconfirmed (the
#: message is the one Salesforce's runtime gives, docs/contract-tests.md).
MAX_RECORDS = 200
MAX_RETRIEVE_IDS = 2000
#: A create or update may mix object types in at most this many consecutive runs ("chunks").
MAX_CHUNKS = 10

ROLLED_BACK = SalesforceApiError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)


class _RollBack(Exception):
    """Raised inside a transaction to undo it (allOrNone with a failed record)."""


def too_many(limit: int) -> SalesforceApiError:
    """Salesforce's error for a collection over its size limit.

    :param limit: the limit that was exceeded.
    """
    return SalesforceApiError(
        "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {limit} records into this call"
    )


def error_item(error: SalesforceApiError) -> dict[str, Any]:
    """One element of a SaveResult's ``errors`` (``statusCode``, not ``errorCode``, here).

    :param error: the error.
    """
    return {"statusCode": error.error_code, "message": error.message, "fields": list(error.fields)}


def save_result(result: RecordResult, *, upsert: bool = False) -> dict[str, Any]:
    """A SaveResult/UpsertResult as collections render it; a failed create has no ``id``.

    :param result: the store's per-record outcome.
    :param upsert: include ``created``.
    """
    body: dict[str, Any] = {}
    if result.id is not None:
        body["id"] = result.id
    body["success"] = result.success
    body["errors"] = [error_item(e) for e in result.errors]
    if upsert:
        body["created"] = bool(result.created) if result.success else False
    return body


async def _collection_body(request: web.Request) -> tuple[list[dict[str, Any]], bool]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must contain a list of records: records",
                                 fields=["records"])
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise too_many(MAX_RECORDS)
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise SalesforceApiError("JSON_PARSER_ERROR", "allOrNone must be a boolean", fields=["allOrNone"])
    return records, all_or_none


def _record_type(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    attributes = record.get("attributes")
    return attributes.get("type") if isinstance(attributes, dict) else None


def _values(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}


def _run(store: Store, all_or_none: bool, work: Callable[[], list[RecordResult]]) -> list[RecordResult]:
    """Run ``work`` in one transaction; with ``all_or_none``, any failure undoes all of it."""
    results: list[RecordResult] = []
    try:
        with store.transaction():
            results = work()
            if all_or_none and not all(r.success for r in results):
                raise _RollBack
    except _RollBack:
        results = [r if not r.success else RecordResult(r.id if r.created is False else None, False, False,
                                                        [ROLLED_BACK]) for r in results]
    return results


def _one(store: Store, action: Callable[[], RecordResult]) -> RecordResult:
    """One record's write in its own savepoint; an error becomes a failed result."""
    try:
        with store.transaction():
            return action()
    except SalesforceApiError as error:
        return RecordResult(None, False, False, [error])


def _by_chunks(store: Store, records: Sequence[Any], creating: bool, user_id: str) -> list[RecordResult]:
    """Consecutive records of one type go to the store together, as Salesforce's chunks do."""
    results: list[RecordResult] = []
    start = 0
    while start < len(records):
        sobject = _record_type(records[start])
        end = start + 1
        while end < len(records) and _record_type(records[end]) == sobject and sobject is not None:
            end += 1
        chunk = records[start:end]
        if sobject is None or not _known(store, sobject):
            message = (f"sObject type '{sobject}' is not supported." if sobject
                       else "Must specify a type in the attributes of every record")
            results += [RecordResult(None, False, False, [SalesforceApiError("INVALID_TYPE", message)])] * len(chunk)
        else:
            rows = [_values(r) for r in chunk]
            try:
                if creating:
                    results += store.create_many(sobject, rows, user_id=user_id)
                else:
                    results += store.update_many(sobject, rows, user_id=user_id)
            except SalesforceApiError as error:  # the whole chunk (unknown or read-only type)
                ids_ = [None if creating else ids.normalize(r.get("Id") or r.get("id")) for r in rows]
                results += [RecordResult(i, False, False, [error]) for i in ids_]
        start = end
    return results


def _known(store: Store, sobject: str) -> bool:
    try:
        store.metadata.require(sobject)
    except SalesforceApiError:
        return False
    return True


def _chunk_count(records: Sequence[Any]) -> int:
    count, previous = 0, object()
    for record in records:
        sobject = _record_type(record)
        if sobject != previous:
            count, previous = count + 1, sobject
    return count


async def _create_or_update(request: web.Request, creating: bool) -> web.Response:
    _version(request)
    records, all_or_none = await _collection_body(request)
    if _chunk_count(records) > MAX_CHUNKS:
        raise SalesforceApiError(
            "INVALID_BATCH_REQUEST",
            "Cannot have more than 10 chunks in a single operation. Please rearrange the data to reduce chunking.",
        )
    store = state_of(request).store
    user_id = session_of(request).user_id
    results = _run(store, all_or_none, lambda: _by_chunks(store, records, creating, user_id))
    return json_response([save_result(r) for r in results])


async def create(request: web.Request) -> web.Response:
    """``POST .../composite/sobjects``: create up to 200 records (types may mix, in ≤10 chunks)."""
    return await _create_or_update(request, creating=True)


async def update(request: web.Request) -> web.Response:
    """``PATCH .../composite/sobjects``: update up to 200 records, each with its ``id``."""
    return await _create_or_update(request, creating=False)


async def upsert(request: web.Request) -> web.Response:
    """``PATCH .../composite/sobjects/{sobject}/{field}``: upsert up to 200 records by external id."""
    version = _version(request)
    records, all_or_none = await _collection_body(request)
    sobject, field = request.match_info["sobject"], request.match_info["field"]
    store = state_of(request).store
    obj = store.metadata.require(sobject)
    user_id = session_of(request).user_id

    repeated = repeated_keys(records, field)

    def upsert_one(record: Any) -> RecordResult:
        rtype = _record_type(record)
        if rtype is None or rtype.lower() != obj.name.lower():
            raise SalesforceApiError("INVALID_TYPE", f"Record type {rtype} does not match {obj.name}")
        values = _values(record)
        key = next((k for k in values if k.lower() == field.lower()), None)
        if key is None or values[key] in (None, ""):
            raise SalesforceApiError("MISSING_ARGUMENT", f"{field} not specified", fields=[field])
        if str(values[key]).lower() in repeated:
            raise duplicate_external_id(field, values[key])
        record_id, created = store.upsert(obj.name, field, str(values[key]), values, user_id=user_id,
                                          api_version=version)
        return RecordResult(record_id, True, created)

    results = _run(store, all_or_none, lambda: [_one(store, lambda r=r: upsert_one(r)) for r in records])
    return json_response([save_result(r, upsert=True) for r in results])


async def delete(request: web.Request) -> web.Response:
    """``DELETE .../composite/sobjects?ids=a,b&allOrNone=true``."""
    _version(request)
    raw_ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
    if not raw_ids:
        raise SalesforceApiError("MISSING_ARGUMENT", "Missing parameter: ids", fields=["ids"])
    if len(raw_ids) > MAX_RECORDS:
        raise too_many(MAX_RECORDS)
    all_or_none = request.query.get("allOrNone", "false").lower() == "true"
    store = state_of(request).store

    def delete_one(raw: str) -> RecordResult:
        normalized = ids.normalize(raw)
        obj = store.metadata.by_prefix(normalized[:3]) if normalized else None
        if normalized is None or obj is None:
            raise SalesforceApiError("MALFORMED_ID", f"malformed id {raw}")
        try:
            store.delete(obj.name, normalized)
        except SalesforceApiError as error:
            return RecordResult(normalized, False, False, [error])
        return RecordResult(normalized, True, False)

    results = _run(store, all_or_none, lambda: [_one(store, lambda r=r: delete_one(r)) for r in raw_ids])
    return json_response([save_result(r) for r in results])


async def _retrieve(request: web.Request, raw_ids: Any, fields: Any) -> web.Response:
    version = _version(request)
    if not isinstance(raw_ids, list) or not raw_ids:
        raise SalesforceApiError("MISSING_ARGUMENT", "Missing parameter: ids", fields=["ids"])
    if not isinstance(fields, list) or not fields:
        raise SalesforceApiError("MISSING_ARGUMENT", "Missing parameter: fields", fields=["fields"])
    if len(raw_ids) > MAX_RETRIEVE_IDS:
        raise too_many(MAX_RETRIEVE_IDS)
    store = state_of(request).store
    sobject = request.match_info["sobject"]
    records: list[dict[str, Any] | None] = []
    for raw in raw_ids:
        try:
            records.append(store.retrieve(sobject, str(raw), fields, api_version=version))
        except SalesforceApiError as error:
            if error.error_code != "NOT_FOUND" or ids.normalize(str(raw)) is None:
                raise
            records.append(None)  # Salesforce answers null for ids it cannot find
    return json_response(records)


async def retrieve(request: web.Request) -> web.Response:
    """``GET .../composite/sobjects/{sobject}?ids=a,b&fields=Id,Name``: records in id order, or null."""
    raw_ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
    return await _retrieve(request, raw_ids, _fields_param(request))


async def retrieve_post(request: web.Request) -> web.Response:
    """``POST .../composite/sobjects/{sobject}`` with ``{"ids": [...], "fields": [...]}`` (up to 2000 ids)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must be an object with ids and fields")
    return await _retrieve(request, body.get("ids"), body.get("fields"))


# -- relationship traversal -------------------------------------------------------------------


async def related_or_external_id(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/{id}/{relationship}``, else ``.../{externalIdField}/{value}``.

    Salesforce tells the two apart the same way: a record id followed by a relationship name.
    """
    store = state_of(request).store
    obj = store.metadata.require(request.match_info["sobject"])
    record_id = ids.normalize(request.match_info["field"])
    name = request.match_info["value"]
    if record_id is None or record_id[:3] != obj.key_prefix or (obj.relationship(name) is None
                                                                   and obj.child(name) is None):
        return await handlers.retrieve_by_external_id(request)
    version = _version(request)
    fields = _fields_param(request)
    parent_field = obj.relationship(name)
    if parent_field is not None:
        record = store.retrieve(obj.name, record_id, [parent_field.name], api_version=version)
        target = record[parent_field.name]
        if target is None:
            raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
        parent = store.metadata.by_prefix(target[:3])
        assert parent is not None
        return json_response(store.retrieve(parent.name, target, fields, api_version=version))
    rel = obj.child(name)
    assert rel is not None
    store.retrieve(obj.name, record_id, ["Id"], api_version=version)  # 404 if the parent is gone
    child = store.metadata.objects[rel.child_sobject]
    columns = fields or list(child.fields)
    soql = f"SELECT {', '.join(columns)} FROM {child.name} WHERE {rel.field} = '{record_id}'"
    return json_response(store.query(soql, api_version=version))
