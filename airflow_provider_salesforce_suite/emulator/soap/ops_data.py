"""Data calls: query/queryAll/queryMore, retrieve, search and the writes (create, update, upsert,
delete, undelete, emptyRecycleBin), all through the store's and REST collections' own code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.safexml import xml_text
from .. import ids
from ..errors import SalesforceApiError
from ..metadata.model import ObjectDef
from ..rest.collections import _by_chunks as write_by_type_runs
from ..rest.collections import _one as one_in_savepoint
from ..rest.collections import _run as run_all_or_none
from ..rest.collections import too_many
from ..soql.parser import parse as parse_soql
from ..store import RecordResult
from ..store.bulk import duplicate_external_id, repeated_keys
from .envelope import parse_sobject
from .render import error_xml, query_result, sobject, spell

if TYPE_CHECKING:
    from .routes import SoapCall

MAX_WRITE = 200
MAX_RETRIEVE = 2000


def require_type(call: SoapCall, name: str | None) -> ObjectDef:
    """The object called ``name`` or Salesforce's ``INVALID_TYPE`` fault.

    :param call: the call.
    :param name: an sObject name.
    """
    obj = call.store.metadata.get(name or "")
    if obj is None:
        raise SalesforceApiError(
            "INVALID_TYPE", f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
            "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call "
            "for the appropriate names.")
    return obj


def all_or_none(call: SoapCall) -> bool:
    """Whether the ``AllOrNoneHeader`` asks for all-or-none.

    :param call: the call.
    """
    return (call.envelope.header_value("AllOrNoneHeader", "allOrNone") or "").lower() == "true"


def _limited(items: list, limit: int) -> list:
    if len(items) > limit:
        raise too_many(limit)
    return items


# -- query ----------------------------------------------------------------------------------------


def _query_xml(call: SoapCall, page: dict[str, Any], sobject_name: str | None) -> str:
    obj = call.store.metadata.get(sobject_name or "")
    if obj is not None and page.get("records") and page["records"][0].get("attributes", {}).get("type") != obj.name:
        obj = None  # aggregate results
    locator = page.get("nextRecordsUrl", "").rsplit("/", 1)[-1] or None
    return query_result("result", page, obj, call.store.metadata, locator)


#: SOAP's default QueryOptions batchSize (the store clamps any size to 200..2000).
DEFAULT_BATCH_SIZE = 500


def _batch_size(call: SoapCall) -> int:
    raw = call.envelope.header_value("QueryOptions", "batchSize")
    try:
        return int(raw) if raw else DEFAULT_BATCH_SIZE
    except ValueError:
        return DEFAULT_BATCH_SIZE


def _query(call: SoapCall, include_deleted: bool) -> str:
    soql = call.envelope.text("queryString")
    if not soql:
        raise SalesforceApiError("MALFORMED_QUERY", "A query string has to be specified")
    page = call.store.query(soql, include_deleted=include_deleted, batch_size=_batch_size(call),
                            api_version=call.version)
    return _query_xml(call, page, parse_soql(soql).sobject)


def query(call: SoapCall) -> str:
    """``query(queryString)``."""
    return _query(call, include_deleted=False)


def query_all(call: SoapCall) -> str:
    """``queryAll(queryString)``: recycle-bin rows too."""
    return _query(call, include_deleted=True)


def query_more(call: SoapCall) -> str:
    """``queryMore(queryLocator)``."""
    locator = call.envelope.text("queryLocator") or ""
    page = call.store.query_more(locator, api_version=call.version)
    records = page.get("records") or []
    sobject_name = records[0].get("attributes", {}).get("type") if records else None
    return _query_xml(call, page, sobject_name)


def retrieve(call: SoapCall) -> str:
    """``retrieve(fieldList, sObjectType, ids[])``: a ``result`` per id, nil when not found."""
    obj = require_type(call, call.envelope.text("sObjectType"))
    fields = [f.strip() for f in (call.envelope.text("fieldList") or "").split(",") if f.strip()]
    if not fields:
        raise SalesforceApiError("MALFORMED_QUERY", "fieldList must not be empty")
    for name in fields:
        if obj.field(name) is None:
            raise SalesforceApiError("INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'. If you are "
                                     "attempting to use a custom field, be sure to append the '__c' after the custom "
                                     "field name. Please reference your WSDL or the describe call for the "
                                     "appropriate names.")
    out = []
    for raw in _limited(call.envelope.texts("ids"), MAX_RETRIEVE):
        try:
            record = call.store.retrieve(obj.name, raw, fields, api_version=call.version)
        except SalesforceApiError as error:
            if error.error_code == "MALFORMED_ID":
                raise SalesforceApiError("INVALID_ID_FIELD", f"invalid record id: {raw}") from None
            record = None
        out.append(sobject("result", _ordered(record, fields), obj, call.store.metadata))
    return "".join(out)


def _ordered(record: dict[str, Any] | None, fields: list[str]) -> dict[str, Any] | None:
    if record is None:
        return None
    by_lower = {k.lower(): k for k in record}
    ordered = {"attributes": record["attributes"]}
    for name in fields:
        key = by_lower.get(name.lower())
        if key is not None:
            ordered[key] = record[key]
    ordered.setdefault("Id", record.get("Id"))
    return ordered


def search(call: SoapCall) -> str:
    """``search(searchString)``: a SearchResult of SearchRecords."""
    sosl = call.envelope.text("searchString") or ""
    if not sosl.strip():
        raise SalesforceApiError("MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces.")
    metadata = call.store.metadata
    rows = []
    for record in call.store.search(sosl, api_version=call.version):
        obj = metadata.get(record.get("attributes", {}).get("type", ""))
        rows.append(f"<searchRecords>{sobject('record', record, obj, metadata)}</searchRecords>")
    return f'<result><queryId xsi:nil="true"/>{"".join(rows)}</result>'


# -- writes ---------------------------------------------------------------------------------------


def _records(call: SoapCall, tag: str = "sObjects") -> list[dict[str, Any]]:
    """The call's sObjects in the REST collections' shape (``attributes.type`` + values)."""
    records = []
    for element in _limited(call.envelope.children(tag), MAX_WRITE):
        sobject_type, values, to_null = parse_sobject(element)
        require_type(call, sobject_type)
        for name in to_null:
            values[name] = None
        records.append({"attributes": {"type": sobject_type}, **values})
    return records


def save_results(results: list[RecordResult], *, upsert: bool = False) -> str:
    """SaveResults/UpsertResults/DeleteResults/UndeleteResults as ``result`` elements.

    :param results: the store's per-record outcomes.
    :param upsert: include ``created``.
    """
    out = []
    for r in results:
        created = f"<created>{spell(bool(r.created) and r.success)}</created>" if upsert else ""
        errors = "".join(error_xml(e) for e in r.errors)
        rid = f"<id>{xml_text(r.id)}</id>" if r.id else '<id xsi:nil="true"/>'
        # UpsertResult is created, errors, id, success; the others errors, id, success (partner.wsdl)
        out.append(f"<result>{created}{errors}{rid}<success>{spell(r.success)}</success></result>")
    return "".join(out)


def _write(call: SoapCall, creating: bool) -> str:
    records = _records(call)
    user = call.user_id or ""
    results = run_all_or_none(call.store, all_or_none(call),
                              lambda: write_by_type_runs(call.store, records, creating, user))
    return save_results(results)


def create(call: SoapCall) -> str:
    """``create(sObjects[])``."""
    return _write(call, creating=True)


def update(call: SoapCall) -> str:
    """``update(sObjects[])``: ``fieldsToNull`` clears fields."""
    return _write(call, creating=False)


def upsert(call: SoapCall) -> str:
    """``upsert(externalIDFieldName, sObjects[])``: UpsertResults with ``created``."""
    field = call.envelope.text("externalIDFieldName") or ""
    records = _records(call)
    store = call.store

    repeated = repeated_keys(records, field)

    def work() -> list[RecordResult]:
        results = []
        for record in records:
            sobject_type = record["attributes"]["type"]
            values = {k: v for k, v in record.items() if k != "attributes"}
            key = next((k for k in values if k.lower() == field.lower()), None)
            if key is None or values[key] in (None, ""):
                results.append(RecordResult(None, False, False, [SalesforceApiError(
                    "MISSING_ARGUMENT", f"{field} not specified", fields=[field])]))
                continue
            if str(values[key]).lower() in repeated:
                results.append(RecordResult(None, False, False, [duplicate_external_id(field, values[key])]))
                continue
            value = values.pop(key)
            if field.lower() == "id":
                values = {k: v for k, v in values.items() if k.lower() != "id"}

            def action(t: str = sobject_type, v: str = value, vals: dict = values) -> RecordResult:
                record_id, created = store.upsert(t, field, v, vals, user_id=call.user_id, api_version=call.version)
                return RecordResult(record_id, True, created)

            results.append(one_in_savepoint(store, action))
        return results

    results = run_all_or_none(store, all_or_none(call), work)
    for result in results:  # the store speaks REST here; the SOAP call reports these codes
        for index, error in enumerate(result.errors):
            if error.error_code == "NOT_FOUND":
                result.errors[index] = SalesforceApiError("INVALID_FIELD", error.message)
            elif error.error_code == "MULTIPLE_CHOICES":
                result.errors[index] = SalesforceApiError("DUPLICATE_EXTERNAL_ID", error.message, fields=[field])
    return save_results(results, upsert=True)


def _by_id(call: SoapCall, action: Any) -> list[RecordResult]:
    """Run ``action(obj, id)`` per id of the call, each in its own savepoint."""
    raw_ids = _limited(call.envelope.texts("ids"), MAX_WRITE)
    store = call.store

    def work() -> list[RecordResult]:
        results = []
        for raw in raw_ids:
            normalized = ids.normalize(raw)
            obj = store.metadata.by_prefix(normalized[:3]) if normalized else None
            if obj is None:
                results.append(RecordResult(None, False, False, [SalesforceApiError(
                    "INVALID_ID_FIELD", "invalid record id" if raw else "Id not specified", fields=["Id"])]))
                continue
            result = one_in_savepoint(store, lambda o=obj, n=normalized: action(o, n) or RecordResult(n, True, False))
            if not result.success:
                error = result.errors[0]
                if error.error_code == "NOT_FOUND":
                    error = SalesforceApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                result = RecordResult(normalized, False, False, [error])
            results.append(result)
        return results

    return run_all_or_none(store, all_or_none(call), work)


def delete(call: SoapCall) -> str:
    """``delete(ids[])``: to the recycle bin."""
    return save_results(_by_id(call, lambda obj, rid: call.store.delete(obj.name, rid)))


def undelete(call: SoapCall) -> str:
    """``undelete(ids[])``."""
    return save_results(_by_id(call, lambda obj, rid: call.store.undelete(obj.name, rid)))


def empty_recycle_bin(call: SoapCall) -> str:
    """``emptyRecycleBin(ids[])``: erase recycle-bin records for good."""
    return save_results(call.store.purge(_limited(call.envelope.texts("ids"), MAX_WRITE)))


OPERATIONS = {"query": query, "queryAll": query_all, "queryMore": query_more, "retrieve": retrieve,
              "search": search, "create": create, "update": update, "upsert": upsert, "delete": delete,
              "undelete": undelete, "emptyRecycleBin": empty_recycle_bin}
