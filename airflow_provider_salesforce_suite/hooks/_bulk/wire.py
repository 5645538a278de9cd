"""Bulk API request descriptions and response parsers, shared by the sync and async hook calls.

Bulk 2.0 speaks JSON under ``/services/data/vXX.X/jobs/``; Bulk 1.0 speaks XML (or JSON) under
``/services/async/XX.X/``. Requests are described once here as :class:`Endpoint` constants and
bodies built by pure functions; responses are parsed by pure functions: the hook's sync methods
and their ``a_`` twins only send.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Mapping, NamedTuple

from airflow_provider_salesforce_suite.core.errors import ErrorDetail, register_body_parser
from airflow_provider_salesforce_suite.core.safexml import local_name, parse_xml_safely, xml_text

V1_NAMESPACE = "http://www.force.com/2009/06/asyncapi/dataload"
#: Bulk 1.0 content types of batch data, by job ``contentType``.
V1_CONTENT_TYPES = {"CSV": "text/csv; charset=UTF-8", "JSON": "application/json; charset=UTF-8",
                    "XML": "application/xml; charset=UTF-8"}
XML_CONTENT_TYPE = "application/xml; charset=UTF-8"
CSV_CONTENT_TYPE = "text/csv"
PK_CHUNKING_HEADER = "Sforce-Enable-PKChunking"
LOCATOR_HEADER = "Sforce-Locator"
NUMBER_OF_RECORDS_HEADER = "Sforce-NumberOfRecords"

IngestResults = Literal["successful", "failed", "unprocessed"]
#: Result resource of each kind of Bulk 2.0 ingest result.
V2_RESULT_RESOURCES: dict[str, str] = {
    "successful": "successfulResults", "failed": "failedResults", "unprocessed": "unprocessedrecords",
}
V2_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
V1_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")
JOB_KINDS = ("ingest", "query")


class Endpoint(NamedTuple):
    """An HTTP method and a path template relative to the API's base path.

    :param method: HTTP method.
    :param template: ``str.format`` template (``{job_id}``, ``{kind}``...).
    """

    method: str
    template: str

    def path(self, **values: str) -> str:
        return self.template.format(**values)


# -- Bulk 2.0 (relative to /services/data/vXX.X/) -------------------------------------------------------
V2_CREATE = Endpoint("POST", "jobs/{kind}")
V2_LIST = Endpoint("GET", "jobs/{kind}")
V2_GET = Endpoint("GET", "jobs/{kind}/{job_id}")
V2_SET_STATE = Endpoint("PATCH", "jobs/{kind}/{job_id}")
V2_DELETE = Endpoint("DELETE", "jobs/{kind}/{job_id}")
V2_UPLOAD = Endpoint("PUT", "jobs/ingest/{job_id}/batches")
V2_INGEST_RESULTS = Endpoint("GET", "jobs/ingest/{job_id}/{resource}")
V2_QUERY_RESULTS = Endpoint("GET", "jobs/query/{job_id}/results")
V2_QUERY_RESULT_PAGES = Endpoint("GET", "jobs/query/{job_id}/resultPages")
# -- Bulk 1.0 (relative to /services/async/XX.X/) ---------------------------------------------------------
V1_CREATE = Endpoint("POST", "job")
V1_GET = Endpoint("GET", "job/{job_id}")
V1_SET_STATE = Endpoint("POST", "job/{job_id}")
V1_ADD_BATCH = Endpoint("POST", "job/{job_id}/batch")
V1_LIST_BATCHES = Endpoint("GET", "job/{job_id}/batch")
V1_GET_BATCH = Endpoint("GET", "job/{job_id}/batch/{batch_id}")
V1_BATCH_REQUEST = Endpoint("GET", "job/{job_id}/batch/{batch_id}/request")
V1_BATCH_RESULT = Endpoint("GET", "job/{job_id}/batch/{batch_id}/result")
V1_QUERY_RESULT = Endpoint("GET", "job/{job_id}/batch/{batch_id}/result/{result_id}")


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming them."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


# -- Bulk 2.0 bodies ------------------------------------------------------------------------------------
def v2_ingest_job_body(sobject: str, operation: str, *, external_id_field: str | None, column_delimiter: str,
                       line_ending: str, assignment_rule_id: str | None) -> dict[str, Any]:
    """The JSON body of "Create a Job" (ingest)."""
    check_choice(operation, V2_INGEST_OPERATIONS, "operation")
    if operation == "upsert" and not external_id_field:
        raise ValueError("upsert needs external_id_field")
    body: dict[str, Any] = {"object": sobject, "operation": operation, "contentType": "CSV",
                            "columnDelimiter": column_delimiter, "lineEnding": line_ending}
    if external_id_field:
        body["externalIdFieldName"] = external_id_field
    if assignment_rule_id:
        body["assignmentRuleId"] = assignment_rule_id
    return body


def v2_query_job_body(soql: str, *, include_deleted: bool, column_delimiter: str, line_ending: str) -> dict[str, Any]:
    """The JSON body of "Create a Query Job"."""
    return {"operation": "queryAll" if include_deleted else "query", "query": soql, "contentType": "CSV",
            "columnDelimiter": column_delimiter, "lineEnding": line_ending}


# -- Bulk 1.0 bodies ------------------------------------------------------------------------------------
def job_info_xml(**fields: Any) -> bytes:
    """A ``<jobInfo>`` document with ``fields`` in the given order (the schema's order matters),
    values escaped; None values are left out.
    """
    parts = [f"<{name}>{xml_text(value)}</{name}>" for name, value in fields.items() if value is not None]
    return (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{V1_NAMESPACE}">'
            + "".join(parts) + "</jobInfo>").encode("utf-8")


def v1_create_job_body(sobject: str, operation: str, *, content_type: str, concurrency_mode: str,
                       external_id_field: str | None) -> bytes:
    """The ``jobInfo`` XML that creates a Bulk 1.0 job."""
    check_choice(operation, V1_OPERATIONS, "operation")
    check_choice(content_type, tuple(V1_CONTENT_TYPES), "content_type")
    check_choice(concurrency_mode, ("Parallel", "Serial"), "concurrency_mode")
    if operation == "upsert" and not external_id_field:
        raise ValueError("upsert needs external_id_field")
    return job_info_xml(operation=operation, object=sobject, externalIdFieldName=external_id_field,
                        concurrencyMode=concurrency_mode, contentType=content_type)


def pk_chunking_header(pk_chunking: Mapping[str, Any] | bool | None) -> dict[str, str]:
    """The ``Sforce-Enable-PKChunking`` header: ``TRUE``, or ``chunkSize=...; parent=...; startRow=...``.

    :param pk_chunking: True, a dict of options (``chunkSize``, ``parent``, ``startRow``), or None/False.
    """
    if not pk_chunking:
        return {}
    if pk_chunking is True:
        return {PK_CHUNKING_HEADER: "TRUE"}
    return {PK_CHUNKING_HEADER: "; ".join(f"{key}={value}" for key, value in pk_chunking.items())}


# -- Bulk 1.0 responses ---------------------------------------------------------------------------------
def _typed(name: str, text: str) -> Any:
    if name.startswith("number") or name.endswith("ProcessingTime"):
        try:
            return int(text)
        except ValueError:
            return text
    if name == "apiVersion":
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _element_dict(element: Any) -> dict[str, Any]:
    return {local_name(child.tag): _typed(local_name(child.tag), child.text or "") for child in element}


def parse_v1_body(body: bytes, content_type: str = "") -> Any:
    """A Bulk 1.0 response as Python: ``jobInfo``/``batchInfo`` -> dict, ``batchInfoList`` ->
    ``{"batchInfo": [dict, ...]}``, ``result-list`` -> ``[id, ...]``. JSON bodies (jobs created
    with JSON content) already have these shapes.

    :param body: the response body.
    :param content_type: the response's ``Content-Type``.
    :raises ValueError: the body is neither JSON nor safe, well-formed XML.
    """
    stripped = body.lstrip()
    if "json" in content_type.lower() or stripped[:1] in (b"{", b"["):
        return json.loads(body)
    root = parse_xml_safely(body)
    if root is None:
        raise ValueError("the Bulk API 1.0 response is not well-formed XML (or declares a DTD)")
    name = local_name(root.tag)
    if name == "batchInfoList":
        return {"batchInfo": [_element_dict(child) for child in root]}
    if name == "result-list":
        return [child.text or "" for child in root]
    return _element_dict(root)


def batch_list(parsed: Any) -> list[dict[str, Any]]:
    """The batches of a parsed ``batchInfoList`` (JSON or XML)."""
    batches = parsed.get("batchInfo", []) if isinstance(parsed, dict) else parsed
    return [batches] if isinstance(batches, dict) else list(batches or [])


def parse_v1_error(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    """Bulk 1.0 errors: ``<error><exceptionCode>..</exceptionCode><exceptionMessage>..`` (XML) or
    ``{"exceptionCode": .., "exceptionMessage": ..}`` (JSON); None for any other body."""
    if b"exceptionCode" not in body:
        return None
    if body.lstrip()[:1] == b"{":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and "exceptionCode" in data:
            return [ErrorDetail(str(data["exceptionCode"]), str(data.get("exceptionMessage", "")))]
        return None
    root = parse_xml_safely(body)
    if root is None or local_name(root.tag) != "error":
        return None
    values = {local_name(child.tag): (child.text or "").strip() for child in root}
    if not values.get("exceptionCode"):
        return None
    return [ErrorDetail(values["exceptionCode"], values.get("exceptionMessage", ""))]


register_body_parser(parse_v1_error)
