"""SOAP (partner API) operators: any operation, query to a file, convert leads, merge, email,
undelete and empty the recycle bin.

Every operator takes ``salesforce_conn_id`` (templated), builds its
:class:`~airflow_provider_salesforce_suite.hooks.soap.SalesforceSoapHook` lazily in ``execute`` and
returns JSON-safe values (dates and datetimes as ISO text) for XCom.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from airflow.sdk import BaseOperator

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

DEFAULT_CONN_ID = SalesforceSoapHook.default_conn_name


class SalesforceSoapResultError(SalesforceSuiteError):
    """Some records/requests of a SOAP call failed and ``fail_on_errors`` is set; ``results`` has them all.

    :param message: the error text.
    :param results: the JSON-safe per-item results.
    """

    def __init__(self, message: str, results: list[Any]) -> None:
        super().__init__(message)
        self.results = results


def json_safe(value: Any) -> Any:
    """``value`` with dates/datetimes/times as ISO text, Decimals as floats, bytes as base64."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def rest_shape(record: Any) -> Any:
    """A SOAP record dict in the REST shape the record writers know (``type`` -> ``attributes``)."""
    if isinstance(record, list):
        return [rest_shape(item) for item in record]
    if not isinstance(record, Mapping):
        return record
    out: dict[str, Any] = {}
    if "type" in record and isinstance(record["type"], str):
        out["attributes"] = {"type": record["type"]}
    for key, value in record.items():
        if key == "type":
            continue
        out[key] = rest_shape(value) if isinstance(value, (Mapping, list)) else value
    return out


class _SalesforceSoapOperator(BaseOperator):
    """Base of the SOAP operators: connection id, SOAP headers and the lazily built hook.

    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    :param soap_headers: SOAP headers for the call(s), e.g. ``{"EmailHeader": {"triggerUserEmail": True}}``.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "soap_headers")

    def __init__(self, *, salesforce_conn_id: str = DEFAULT_CONN_ID, api_version: str | None = None,
                 soap_headers: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version
        self.soap_headers = soap_headers

    @cached_property
    def hook(self) -> SalesforceSoapHook:
        """The SOAP hook on ``salesforce_conn_id``."""
        return SalesforceSoapHook(self.salesforce_conn_id, api_version=self.api_version)


class _PerItemOperator(_SalesforceSoapOperator):
    """An operation with one result per input item; optionally fails on any item error."""

    def __init__(self, *, fail_on_errors: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on_errors = fail_on_errors

    def _finish(self, what: str, results: list[Any]) -> list[Any]:
        results = json_safe(results)
        failed = [r for r in results if isinstance(r, Mapping) and not r.get("success", True)]
        self.log.info("%s: %d item(s), %d failed", what, len(results), len(failed))
        if failed and self.fail_on_errors:
            first = (failed[0].get("errors") or [{}])[0]
            raise SalesforceSoapResultError(
                f"{what}: {len(failed)} of {len(results)} failed (first: {first.get('statusCode')}: "
                f"{first.get('message')})", results)
        return results


class SalesforceSoapOperator(_SalesforceSoapOperator):
    """Call any partner SOAP operation; push its result (plain JSON-safe values) to XCom.

    Records in the arguments are dicts with a ``type`` key; hook methods named like the operation
    (``convert_lead`` for ``convertLead``) are used when they exist, so record lists are split into
    calls of 200 and typed; any other operation goes through ``hook.call``.

    :param operation: the WSDL operation (``describeGlobal``, ``getUpdated``, ``create`` ...).
    :param arguments: the operation's arguments (the hook method's keyword arguments, or the WSDL's
        request elements for ``hook.call``).
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers for the call.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "operation", "arguments", "soap_headers")

    def __init__(self, *, operation: str, arguments: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operation = operation
        self.arguments = arguments

    def execute(self, context: Context) -> Any:
        arguments = dict(self.arguments or {})
        method = _HOOK_METHODS.get(self.operation)
        if method is not None:
            result = getattr(self.hook, method)(**arguments, headers=self.soap_headers)
        else:
            result = self.hook.call(self.operation, headers=self.soap_headers, **arguments)
        if self.operation in ("query", "queryAll"):
            result = list(result)
        return json_safe(result)


_HOOK_METHODS = {
    "query": "query", "queryAll": "query_all", "queryMore": "query_more", "search": "search",
    "retrieve": "retrieve", "create": "create", "update": "update", "upsert": "upsert", "delete": "delete",
    "undelete": "undelete", "emptyRecycleBin": "empty_recycle_bin", "merge": "merge",
    "convertLead": "convert_lead", "process": "process", "findDuplicates": "find_duplicates",
    "findDuplicatesByIds": "find_duplicates_by_ids", "sendEmail": "send_email",
    "sendEmailMessage": "send_email_message", "describeGlobal": "describe_global",
    "describeSObject": "describe_sobject", "describeSObjects": "describe_sobjects",
    "getDeleted": "get_deleted", "getUpdated": "get_updated", "getServerTimestamp": "get_server_timestamp",
    "getUserInfo": "get_user_info",
}


class SalesforceSoapQueryOperator(_SalesforceSoapOperator):
    """Run a SOQL query through the SOAP API (``query``/``queryAll`` + ``queryMore``) and write the
    rows to ``output_uri`` page by page in constant memory; returns ``{"output_uri", "format", "rows", "columns"}``.

    :param soql: the SOQL query.
    :param output_uri: URI, path or ``ObjectStoragePath`` of the file (``csv``, ``jsonl``, ``parquet``).
    :param output_format: ``csv``, ``jsonl`` or ``parquet`` (``+ ".gz"``); default from the suffix.
    :param include_deleted: use ``queryAll``.
    :param batch_size: ``QueryOptions.batchSize`` (200-2000).
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: further SOAP headers.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "soql", "output_uri", "output_format", "soap_headers")
    template_fields_renderers = {"soql": "sql"}

    def __init__(self, *, soql: str, output_uri: str | ObjectStoragePath, output_format: str | None = None,
                 include_deleted: bool = False, batch_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.soql = soql
        self.output_uri = output_uri
        self.output_format = output_format
        self.include_deleted = include_deleted
        self.batch_size = batch_size

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import RecordWriter

        pages = self.hook.query_pages(self.soql, include_deleted=self.include_deleted,
                                      batch_size=self.batch_size, headers=self.soap_headers)
        with RecordWriter(self.output_uri, self.output_format, soql=self.soql) as writer:
            for page in pages:
                writer.write_page(json_safe(rest_shape(page)))
        self._lineage_result = result = {"output_uri": writer.uri, "format": writer.format, "rows": writer.rows,
                                         "columns": writer.output_columns}  # for OpenLineage
        return result

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The output file; the queried sObject comes on complete (it needs the instance URL)."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.query_to_file(self, self.soql, self.output_uri, complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the columns written (typed by describe) and the rows."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.query_to_file(self, self.soql, self.output_uri, _lineage.task_result(self, task_instance),
                                      complete=True)


class SalesforceConvertLeadsOperator(_PerItemOperator):
    """Convert leads (``convertLead``, 100 per call); returns one result per lead
    (``leadId``, ``accountId``, ``contactId``, ``opportunityId``, ``success``, ``errors``).

    :param lead_converts: ``LeadConvert`` dicts (``leadId``, ``convertedStatus``, and optionally
        ``accountId``, ``contactId``, ``ownerId``, ``doNotCreateOpportunity``, ``opportunityName`` ...).
    :param converted_status: default ``convertedStatus`` for items without one.
    :param do_not_create_opportunity: default ``doNotCreateOpportunity`` for items without one.
    :type fail_on_errors: bool
    :param fail_on_errors: fail the task (after pushing nothing) when any lead failed to convert.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers (``DuplicateRuleHeader``, ``EmailHeader`` ...).
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "lead_converts", "converted_status", "soap_headers")

    def __init__(self, *, lead_converts: Iterable[Mapping[str, Any]] | str, converted_status: str | None = None,
                 do_not_create_opportunity: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lead_converts = lead_converts
        self.converted_status = converted_status
        self.do_not_create_opportunity = do_not_create_opportunity

    def execute(self, context: Context) -> list[Any]:
        defaults: dict[str, Any] = {}
        if self.converted_status:
            defaults["convertedStatus"] = self.converted_status
        if self.do_not_create_opportunity is not None:
            defaults["doNotCreateOpportunity"] = self.do_not_create_opportunity
        items = [{**defaults, **item} for item in _items(self.lead_converts, "lead_converts")]
        return self._finish("convertLead", self.hook.convert_lead(items, headers=self.soap_headers))


class SalesforceMergeRecordsOperator(_PerItemOperator):
    """Merge duplicate records into a master (``merge``); one result per merge request.

    :param merge_requests: ``{"masterRecord": {"type": "Account", "Id": ...}, "recordToMergeIds": [...]}`` dicts
        (up to two ids each; fields set on the master record are saved with the merge).
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers.
    :type fail_on_errors: bool
    :param fail_on_errors: fail the task when any merge failed.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "merge_requests", "soap_headers")

    def __init__(self, *, merge_requests: Iterable[Mapping[str, Any]] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.merge_requests = merge_requests

    def execute(self, context: Context) -> list[Any]:
        return self._finish("merge", self.hook.merge(_items(self.merge_requests, "merge_requests"),
                                                     headers=self.soap_headers))


class SalesforceSendEmailOperator(_PerItemOperator):
    """Send emails (``sendEmail``, 10 per call); one ``{"success", "errors"}`` per message.

    :param messages: ``SingleEmailMessage`` dicts (``toAddresses``, ``subject``, ``plainTextBody``,
        ``htmlBody``, ``targetObjectId``, ``templateId``, ``whatId`` ...).
    :param mass: the messages are ``MassEmailMessage`` dicts (``targetObjectIds``, ``templateId``).
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers.
    :type fail_on_errors: bool
    :param fail_on_errors: fail the task when any message failed.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "messages", "soap_headers")

    def __init__(self, *, messages: Iterable[Mapping[str, Any]] | str, mass: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.messages = messages
        self.mass = mass

    def execute(self, context: Context) -> list[Any]:
        return self._finish("sendEmail", self.hook.send_email(_items(self.messages, "messages"), mass=self.mass,
                                                              headers=self.soap_headers))


class _IdsOperator(_PerItemOperator):
    """An operation on a list of record ids with one result per id."""

    template_fields: Sequence[str] = ("salesforce_conn_id", "ids", "soap_headers")
    operation = ""
    hook_method = ""

    def __init__(self, *, ids: Iterable[str] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ids = ids

    def execute(self, context: Context) -> list[Any]:
        method = getattr(self.hook, self.hook_method)
        return self._finish(self.operation, method(_items(self.ids, "ids"), headers=self.soap_headers))


class SalesforceUndeleteOperator(_IdsOperator):
    """Restore records from the recycle bin (``undelete``, 200 per call); one result per id.

    :param ids: record ids.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers (``AllOrNoneHeader``).
    :type fail_on_errors: bool
    :param fail_on_errors: fail the task when any id failed.
    """

    operation, hook_method = "undelete", "undelete"


class SalesforceEmptyRecycleBinOperator(_IdsOperator):
    """Purge deleted records from the recycle bin for good (``emptyRecycleBin``, 200 per call).

    :param ids: ids of deleted records.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    :type soap_headers: Mapping[str, Mapping[str, Any]] | None
    :param soap_headers: SOAP headers.
    :type fail_on_errors: bool
    :param fail_on_errors: fail the task when any id failed.
    """

    operation, hook_method = "emptyRecycleBin", "empty_recycle_bin"


def _items(value: Any, name: str) -> list[Any]:
    """A rendered list argument; a string (an unrendered or non-native template) is refused clearly."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list (for Jinja-templated XCom set render_template_as_native_obj=True "
                        f"on the DAG), not {type(value).__name__}")
    return list(value)
