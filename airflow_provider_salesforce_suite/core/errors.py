"""One exception hierarchy for the whole provider, and the parser that builds it from responses.

``error_from_response`` understands Salesforce's REST error list ``[{"message","errorCode","fields"}]``
and the OAuth dict ``{"error","error_description"}``, and degrades to a short sanitized snippet for
HTML, empty or otherwise unparseable bodies. Other wire formats (Bulk 1.0 / SOAP XML) plug in with
:func:`register_body_parser` without touching this module.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from airflow_provider_salesforce_suite.core.safexml import UNSAFE_XML, unsafe_xml_reason
from airflow_provider_salesforce_suite.core.secrets import redact_text
from airflow_provider_salesforce_suite.core.tls import explain_tls, looks_like_tls_failure, tls_kind

if TYPE_CHECKING:
    import requests

SNIPPET_CHARS = 200


class SalesforceSuiteError(Exception):
    """Root of every exception this provider raises."""


class SalesforceConfigError(SalesforceSuiteError, ValueError):
    """The Airflow connection is incomplete or contradictory (raised before any network call)."""


class SalesforceMissingExtraError(SalesforceSuiteError, ImportError):
    """A feature needs one of the package's extras, and it is not installed.

    :param extra: the extra (``parquet``, ``pubsub``).
    :param feature: what needs it, in the user's words (the subject of "... needs").
    :param missing: the modules that cannot be imported.
    """

    def __init__(self, extra: str, feature: str, missing: list[str]) -> None:
        super().__init__(
            f"{feature} needs the '{extra}' extra, which is not installed (no module {', '.join(missing)}): "
            f"pip install 'airflow-provider-salesforce-suite[{extra}]' on every worker and triggerer",
            name=missing[0] if missing else None,
        )
        self.extra = extra
        self.missing = tuple(missing)


class SalesforceTransportError(SalesforceSuiteError):
    """Connection error or timeout that persisted after the allowed retries."""


class SalesforceOutcomeUnknownError(SalesforceTransportError):
    """A call that is not safe to replay (e.g. an insert ``POST``) was sent, and its connection
    failed before the reply arrived: Salesforce may or may not have carried it out.

    Never retried by the transport. Callers decide: reconcile (query back what was written),
    or report the records as ``OUTCOME_UNKNOWN`` so nobody sends them again blindly.

    :param message: what failed (method, path and the failure's kind; never a secret).
    :param method: HTTP method of the call.
    :param path: URL path of the call, without host or query string.
    """

    def __init__(self, message: str, *, method: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.method = method.upper() if method else None
        self.path = safe_path(path) if path else None


class SalesforceAuthError(SalesforceSuiteError):
    """An authentication flow failed (OAuth token endpoint, SOAP login, or no way to re-authenticate).

    :param message: human readable summary (never contains a secret).
    :param error: OAuth ``error`` (e.g. ``invalid_grant``) or SOAP fault code.
    :param error_description: OAuth ``error_description`` or SOAP fault string.
    :param status: HTTP status of the failed call, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(redact_text(message))
        self.error = error
        self.error_description = redact_text(error_description) if error_description else None
        self.status = status


class SalesforceApiError(SalesforceSuiteError):
    """A Salesforce API call answered with a non-2xx status.

    :param status: HTTP status.
    :param error_code: Salesforce ``errorCode`` (``NOT_FOUND``, ``INVALID_FIELD`` ...) or OAuth ``error``.
    :param message: Salesforce's message (sanitized).
    :param fields: field names the error is about.
    :param method: HTTP method of the call.
    :param path: URL path of the call, without query string or host.
    :param errors: every error element of the response (Salesforce may return several).
    """

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str,
        *,
        fields: list[str] | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: list[ErrorDetail] | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.message = redact_text(message)
        self.fields = list(fields or [])
        self.method = method.upper() if method else None
        self.path = safe_path(path) if path else None
        self.errors = list(errors or [])
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" {self.method or ''} {self.path or ''}".rstrip()
        code = f" {self.error_code}" if self.error_code else ""
        fields = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        return f"Salesforce HTTP {self.status}{code}{fields}:{where}: {self.message}"


class SalesforceUnparseableResponseError(SalesforceApiError, ValueError):
    """A reply whose body is not what its API sends (an HTML page, truncated JSON): raised by the
    sessions' ``response.json()``. A ``ValueError`` too, like the ``JSONDecodeError`` it replaces."""


class SalesforceSessionExpiredError(SalesforceApiError):
    """INVALID_SESSION_ID that survived one re-authentication, or a session that cannot be renewed."""


class SalesforceNotFoundError(SalesforceApiError):
    """HTTP 404: the resource or record does not exist."""


class SalesforceMultipleChoicesError(SalesforceApiError):
    """HTTP 300: e.g. an upsert external id matching several records."""


class SalesforceRequestLimitError(SalesforceApiError):
    """REQUEST_LIMIT_EXCEEDED or HTTP 429: daily API limit or (after retries) concurrency / rate limit."""


class SalesforceServerError(SalesforceApiError):
    """HTTP 5xx that persisted after the allowed retries."""


class SalesforceMalformedQueryError(SalesforceApiError):
    """The SOQL/SOSL query could not be parsed or references unknown fields/objects."""


#: An API limit: REST/SOAP's REQUEST_LIMIT_EXCEEDED and Bulk 1.0's ExceededQuota (daily, or concurrent requests).
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "ExceededQuota"})
_QUERY_CODES = frozenset({"MALFORMED_QUERY", "MALFORMED_SEARCH", "INVALID_QUERY_FILTER_OPERATOR", "INVALID_QUERY_LOCATOR"})
_SESSION_CODES = frozenset({"INVALID_SESSION_ID", "InvalidSessionId"})


@dataclass(frozen=True)
class ErrorDetail:
    """One error element parsed from a response body, whatever its wire format."""

    error_code: str | None
    message: str
    fields: list[str] = field(default_factory=list)


#: A body parser gets (body, content_type) and returns the errors it understood, or None to pass.
BodyParser = Callable[[bytes, str], "list[ErrorDetail] | None"]


def _parse_json_body(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return None
    details = []
    for item in data:
        if not isinstance(item, dict):
            continue
        if "errorCode" in item or "message" in item:
            details.append(
                ErrorDetail(
                    error_code=item.get("errorCode"),
                    message=str(item.get("message", "")),
                    fields=[str(f) for f in item.get("fields") or []],
                )
            )
        elif "error" in item:  # OAuth style
            details.append(
                ErrorDetail(error_code=str(item["error"]), message=str(item.get("error_description", "")))
            )
    return details or None


# Extension point: later wire formats (Bulk 1.0 / SOAP XML) register here; first match wins.
_BODY_PARSERS: list[BodyParser] = [_parse_json_body]


def register_body_parser(parser: BodyParser, *, first: bool = True) -> None:
    """Add a body parser (e.g. for Bulk 1.0 ``<error><exceptionCode>`` or SOAP faults)."""
    if parser in _BODY_PARSERS:
        return
    _BODY_PARSERS.insert(0 if first else len(_BODY_PARSERS), parser)


def parse_error_body(body: bytes | None, content_type: str = "") -> list[ErrorDetail]:
    """Errors understood in ``body`` by the registered parsers; empty when none applies."""
    if not body:
        return []
    for parser in _BODY_PARSERS:
        parsed = parser(body, content_type or "")
        if parsed:
            return parsed
    return []


def safe_path(path_or_url: str) -> str:
    """Path of a URL without host, query string or fragment (they may carry SOQL or secrets)."""
    return urlsplit(path_or_url).path or "/"


def snippet(body: bytes | None, limit: int = SNIPPET_CHARS) -> str:
    """A short, single-line, tag-free and secret-free excerpt of a body, for error messages."""
    if not body:
        return "<empty body>"
    # Redacted before and after the clean-up: unescaping and joining whitespace could change a
    # secret's registered form (an echoed form body's "&amp..." or a password with two spaces).
    text = redact_text(body.decode("utf-8", errors="replace"))
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    title = re.search(r"(?is)<title>(.*?)</title>", text)
    text = re.sub(r"(?s)<[^>]*>", " ", text)
    if title:
        text = title.group(1) + " " + text
    text = " ".join(html.unescape(text).split())
    text = redact_text(text)
    return text[:limit] + ("..." if len(text) > limit else "") if text else "<no text in body>"


def _error_class(status: int, error_code: str | None, message: str) -> type[SalesforceApiError]:
    if error_code in _SESSION_CODES or (status == 401 and error_code is None):
        return SalesforceSessionExpiredError
    if error_code in LIMIT_CODES or status == 429:
        return SalesforceRequestLimitError
    if error_code in _QUERY_CODES:
        return SalesforceMalformedQueryError
    if status == 300:
        return SalesforceMultipleChoicesError
    if status == 404:
        return SalesforceNotFoundError
    if status >= 500:
        return SalesforceServerError
    if status == 401:
        return SalesforceSessionExpiredError
    return SalesforceApiError


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    method: str | None = None,
    path: str | None = None,
    *,
    note: str | None = None,
) -> SalesforceApiError:
    """Build the exception for a non-2xx response.

    :param status: HTTP status.
    :param headers: response headers (``Content-Type`` helps the parsers).
    :param body: raw response body.
    :param method: HTTP method of the request.
    :param path: URL or path of the request; only the path is kept.
    :param note: appended to the message (e.g. why the transport stopped retrying).
    """
    content_type = ""
    if headers:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    details = parse_error_body(body, content_type)
    if details:
        first = details[0]
        message = first.message or "(no message)"
        if len(details) > 1:
            message += f" (+{len(details) - 1} more error(s))"
        message += f"; {note}" if note else ""
        cls = _error_class(status, first.error_code, message)
        return cls(
            status, first.error_code, message, fields=first.fields, method=method, path=path, errors=details
        )
    unsafe = unsafe_xml_reason(body)
    code = UNSAFE_XML if unsafe else None
    message = (unsafe or f"unparseable response body: {snippet(body)}") + (f"; {note}" if note else "")
    return _error_class(status, code, message)(status, code, message, method=method, path=path)


def unparseable_response(status: int, body: bytes | None, method: str | None, path: str | None,
                         expected: str = "JSON") -> SalesforceUnparseableResponseError:
    """The error for a reply whose body cannot be read as ``expected`` (whatever its status).

    :param status: HTTP status.
    :param body: raw response body (only a sanitized snippet is kept).
    :param method: HTTP method of the request.
    :param path: URL or path of the request; only the path is kept.
    :param expected: what the body should have been.
    """
    why = unsafe_xml_reason(body) or f"the body is not valid {expected}: {snippet(body)}"
    return SalesforceUnparseableResponseError(status, None, why, method=method, path=path)


def raise_for_status(response: requests.Response) -> requests.Response:
    """Return ``response`` if 2xx, otherwise raise the matching :class:`SalesforceApiError`."""
    if 200 <= response.status_code < 300:
        return response
    request = response.request
    raise error_from_response(
        response.status_code,
        response.headers,
        response.content,
        method=request.method if request is not None else None,
        path=request.url if request is not None else response.url,
    )


# -- SOAP (partner API) faults ---------------------------------------------------------------------
class SalesforceSoapFaultError(SalesforceApiError):
    """A SOAP fault from the partner API (HTTP 500 ``soapenv:Fault``).

    ``error_code`` is the fault's ``exceptionCode`` (``MALFORMED_QUERY``, ``INVALID_FIELD`` ...).

    :param fault_code: the SOAP ``faultcode`` (e.g. ``sf:MALFORMED_QUERY``).
    :param fault_type: the detail element's name (e.g. ``MalformedQueryFault``), if any.
    :param row: position of a query/search error, for query faults.
    :param column: column of a query/search error, for query faults.
    """

    def __init__(self, status: int, error_code: str | None, message: str, *, fault_code: str | None = None,
                 fault_type: str | None = None, row: int | None = None, column: int | None = None,
                 **kwargs: Any) -> None:
        self.fault_code = fault_code
        self.fault_type = fault_type
        self.row = row
        self.column = column
        super().__init__(status, error_code, message, **kwargs)

    def _describe(self) -> str:
        where = f" {self.method or ''}".rstrip()
        at = f" (row {self.row}, column {self.column})" if self.row is not None else ""
        return f"Salesforce SOAP fault {self.error_code or self.fault_code}{where}{at}: {self.message}"


class SalesforceSoapSessionExpiredError(SalesforceSoapFaultError, SalesforceSessionExpiredError):
    """INVALID_SESSION_ID fault that survived one re-authentication."""


class SalesforceSoapMalformedQueryError(SalesforceSoapFaultError, SalesforceMalformedQueryError):
    """A query/search fault: MALFORMED_QUERY, MALFORMED_SEARCH, INVALID_FIELD, INVALID_TYPE ..."""


class SalesforceSoapRequestLimitError(SalesforceSoapFaultError, SalesforceRequestLimitError):
    """REQUEST_LIMIT_EXCEEDED fault."""


class SalesforceSoapInvalidTypeError(SalesforceSoapFaultError):
    """INVALID_TYPE outside a query (``create``, ``retrieve``, ``describeSObject`` ...): the sObject type
    does not exist or the user cannot see it."""


_SOAP_QUERY_FAULTS = frozenset({"MalformedQueryFault", "MalformedSearchFault", "InvalidFieldFault",
                                "InvalidSObjectFault", "InvalidQueryLocatorFault"})
#: Operations whose field and sObject faults are about the query or search text.
SOAP_QUERY_OPERATIONS = frozenset({"query", "queryAll", "queryMore", "search"})


def soap_fault_class(error_code: str | None, fault_type: str | None,
                     operation: str | None = None) -> type[SalesforceSoapFaultError]:
    """The :class:`SalesforceSoapFaultError` subclass for a fault's exception code / detail type.

    :param error_code: the fault's ``exceptionCode``.
    :param fault_type: the detail element's name (``InvalidSObjectFault`` ...).
    :param operation: the partner operation; an ``InvalidSObjectFault`` or ``InvalidFieldFault`` is a
        query error only for :data:`SOAP_QUERY_OPERATIONS` (None: judged by the fault alone).
    """
    if error_code in _SESSION_CODES:
        return SalesforceSoapSessionExpiredError
    if error_code == "REQUEST_LIMIT_EXCEEDED":
        return SalesforceSoapRequestLimitError
    in_query = operation is None or operation in SOAP_QUERY_OPERATIONS
    if error_code in _QUERY_CODES or (fault_type in _SOAP_QUERY_FAULTS and in_query):
        return SalesforceSoapMalformedQueryError
    if error_code == "INVALID_TYPE" or fault_type == "InvalidSObjectFault":
        return SalesforceSoapInvalidTypeError
    return SalesforceSoapFaultError


def outcome_unknown(error: SalesforceOutcomeUnknownError, what: str,
                    maybe: str | None = None) -> SalesforceOutcomeUnknownError:
    """``error`` restated in the caller's terms: what was sent, what may have happened, that it was not re-sent.

    :param error: what the transport raised.
    :param what: the call in the caller's words (``"SOAP create"``, ``"Desk POST /api/v2/cases"``).
    :param maybe: what may have happened (``"the records may have been created"``).
    """
    maybe = maybe or "it may have been carried out"
    return SalesforceOutcomeUnknownError(
        f"{what} was sent, but its reply was lost ({error}): {maybe}, so it was not sent again (a replay "
        "could do it twice); check before retrying", method=error.method, path=error.path)


# -- Pub/Sub API (gRPC) ------------------------------------------------------------------------------
class SalesforcePubSubError(SalesforceSuiteError):
    """A Pub/Sub API call failed: a gRPC status, with Salesforce's ``error-code`` trailer when it sent one.

    :param message: what failed (never a token).
    :param grpc_code: the gRPC status name (``INVALID_ARGUMENT``, ``UNAVAILABLE`` ...), if any.
    :param error_code: Salesforce's ``error-code`` trailer
        (``sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted`` ...), if any.
    :param rpc_id: Salesforce's ``rpc-id`` for the call (quote it to Salesforce support), if any.
    """

    def __init__(self, message: str, *, grpc_code: str | None = None, error_code: str | None = None,
                 rpc_id: str | None = None) -> None:
        super().__init__(redact_text(message))
        self.grpc_code = grpc_code
        self.error_code = error_code
        self.rpc_id = rpc_id


class SalesforcePubSubAuthError(SalesforcePubSubError):
    """``UNAUTHENTICATED`` that survived one re-authentication (or a session that cannot be renewed)."""


class SalesforcePubSubPermissionError(SalesforcePubSubError):
    """``PERMISSION_DENIED``: the user may not read or publish the topic, or the ``tenantid`` is not the org's."""


class SalesforcePubSubTopicError(SalesforcePubSubError):
    """The topic does not exist, or cannot do what was asked (publish to a change event channel)."""


class SalesforcePubSubReplayIdError(SalesforcePubSubError):
    """The replay id to start from is not valid, or no longer retained: events after it may be lost."""


class SalesforcePubSubCommitError(SalesforcePubSubError):
    """A managed subscription could not commit a replay id."""


class SalesforcePubSubSchemaError(SalesforcePubSubError, ValueError):
    """An event does not fit its topic's Avro schema (raised before it is sent), or a schema is unusable."""


def pubsub_error(grpc_code: str, details: str | None, trailers: Any = (), *, what: str) -> SalesforcePubSubError:
    """The exception for a failed Pub/Sub RPC, chosen by gRPC status and Salesforce's ``error-code`` trailer.

    :param grpc_code: the status name (``grpc.StatusCode.X.name``).
    :param details: the status details (Salesforce appends ``rpcId: ...``).
    :param trailers: the trailing metadata, as ``(key, value)`` pairs.
    :param what: the call in the caller's words (``"Subscribe to /data/AccountChangeEvent"``).
    """
    pairs = {str(k).lower(): v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
             for k, v in (trailers or ())}
    error_code = pairs.get("error-code") or None
    rpc_id = pairs.get("rpc-id") or pairs.get("rpcid") or None
    text = " ".join((details or "").split()) or "(no details)"
    code_text = f"{grpc_code}{', ' + error_code if error_code else ''}"
    message = f"Salesforce Pub/Sub {what} failed ({code_text}): {text}"
    lowered = (error_code or "").lower()
    if grpc_code == "UNAUTHENTICATED":
        cls: type[SalesforcePubSubError] = SalesforcePubSubAuthError
        message += ". The session was rejected after one re-authentication: check the connection's credentials"
    elif "replayid" in lowered or "replay" in lowered:
        cls = SalesforcePubSubReplayIdError
        message += (". Start from EARLIEST or LATEST instead (events between the stored replay id and the oldest "
                    "retained event may be lost)")
    elif "commit" in lowered:
        cls = SalesforcePubSubCommitError
    elif grpc_code == "PERMISSION_DENIED":
        cls = SalesforcePubSubPermissionError
        if "tenant" in text.lower() or "tenant" in lowered:
            message += ". The tenantid metadata is not this org's id"
    elif "topic" in lowered or grpc_code == "NOT_FOUND":
        cls = SalesforcePubSubTopicError
    elif "schema" in lowered:
        cls = SalesforcePubSubSchemaError
    else:
        cls = SalesforcePubSubError
        if grpc_code == "UNAVAILABLE" and looks_like_tls_failure(text):  # gRPC folds TLS failures into UNAVAILABLE
            reason, fix = explain_tls(tls_kind(text=text), "the Pub/Sub endpoint")
            message = (f"Salesforce Pub/Sub {what} failed: TLS certificate/handshake problem: {reason}. Not retried. "
                       f"{fix}. Cause ({code_text}): {text}")
    return cls(message, grpc_code=grpc_code, error_code=error_code, rpc_id=rpc_id)
