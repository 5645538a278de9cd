"""Pardot (Account Engagement) connection layer: Salesforce OAuth token + Business Unit header.

The token comes from the shared :class:`~airflow_provider_salesforce_suite.core.auth.SalesforceAuthenticator`
and requests go through :class:`~airflow_provider_salesforce_suite.core.transport.SalesforceSession`
(token cache, one re-auth on 401, retries). Pardot's error bodies are understood by
:func:`parse_pardot_error`, registered with :func:`~airflow_provider_salesforce_suite.core.errors.register_body_parser`.
The object APIs (``hooks/_pardot/objects.py``: v5 objects from one table, v4 batch and query)
and the Import/Export job APIs (``hooks/_pardot/jobs.py``) build on :meth:`PardotHook.request`,
which holds one of :data:`MAX_CONCURRENT_REQUESTS` slots per connection while a call is in flight.
"""

from __future__ import annotations

import json as jsonlib
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping

from airflow.sdk import BaseHook
from requests.structures import CaseInsensitiveDict

from airflow_provider_salesforce_suite.core.auth import SalesforceAuthenticator
from airflow_provider_salesforce_suite.core.config import PARDOT_CONN_TYPE, PardotConnectionConfig
from airflow_provider_salesforce_suite.core.errors import (
    ErrorDetail,
    SalesforceApiError,
    error_from_response,
    raise_for_status,
    register_body_parser,
)
from airflow_provider_salesforce_suite.core.transport import SalesforceSession
from airflow_provider_salesforce_suite.hooks._pardot.jobs import PardotJobsMixin
from airflow_provider_salesforce_suite.hooks._pardot.objects import PardotObjectsMixin

if TYPE_CHECKING:
    import requests

BUSINESS_UNIT_HEADER = "Pardot-Business-Unit-Id"
V4_MARKER = "/version/4/do/"
#: Pardot allows five concurrent API requests per business unit; more get error 66.
MAX_CONCURRENT_REQUESTS = 5
_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def concurrency_slots(key: str) -> threading.BoundedSemaphore:
    """The process-wide semaphore of one connection / business unit (created on first use).

    :param key: connection id and business unit.
    """
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(key, threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS))
# Pardot error codes that are API limits. The concurrency message says "concurrent", which the
# shared retry policy treats as transient; the daily quota (122) is final until the next day.
_LIMIT_CODES = {
    122: "Pardot error 122: daily API quota used up; retrying today will not help",
    66: "Pardot error 66: too many concurrent requests",
}


def parse_pardot_error(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    """Pardot errors: v5 ``{"code", "message"}`` and v4 ``{"@attributes": {"stat": "fail", "err_code"}, "err"}``.

    Limit codes become ``REQUEST_LIMIT_EXCEEDED``; any other code becomes ``PARDOT_<code>``.

    :param body: response body.
    :param content_type: response content type (unused: Pardot labels some JSON errors text/html).
    """
    try:
        data = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or "errorCode" in data:
        return None
    attributes = data.get("@attributes")
    if isinstance(attributes, dict) and attributes.get("stat") == "fail":
        code, message = attributes.get("err_code"), data.get("err", "")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
    elif isinstance(data.get("code"), int) and isinstance(data.get("message"), str):
        code, message = data["code"], data["message"]
    else:
        return None
    try:
        code = int(code)
    except (TypeError, ValueError):
        return [ErrorDetail(error_code=None, message=str(message))]
    if code in _LIMIT_CODES:
        return [ErrorDetail(error_code="REQUEST_LIMIT_EXCEEDED", message=f"{message} ({_LIMIT_CODES[code]})")]
    return [ErrorDetail(error_code=f"PARDOT_{code}", message=str(message))]


register_body_parser(parse_pardot_error)

#: Pardot's answers to a missing (181) or a wrong, inactive or inaccessible (201) Business Unit id.
BUSINESS_UNIT_CODES = frozenset({"PARDOT_181", "PARDOT_201"})


class PardotBusinessUnitError(SalesforceApiError):
    """Pardot refused the connection's Business Unit id (error 181: missing; 201: not found or inactive).

    The token itself is valid, so re-authenticating cannot help: fix the connection's ``business_unit_id``
    (Setup > Account Engagement > Business Unit Setup) or give the user access to that Business Unit.
    """

    @classmethod
    def from_error(cls, error: SalesforceApiError, business_unit_id: str, conn_id: str) -> PardotBusinessUnitError:
        """The error for Pardot's answer ``error``, naming the Business Unit id that was sent.

        :param error: the error parsed from Pardot's reply.
        :param business_unit_id: the id the connection sent (not a secret).
        :param conn_id: the Airflow connection id.
        """
        message = (f"business_unit_id {business_unit_id!r} of connection {conn_id!r} is wrong, inactive or not "
                   f"accessible to the connection's user (Pardot: {error.message})")
        return cls(error.status, error.error_code, message, fields=error.fields, method=error.method,
                   path=error.path, errors=error.errors)


class PardotHook(PardotObjectsMixin, PardotJobsMixin, BaseHook):
    """Talks to the Pardot API of one Business Unit. Constructing it does no I/O.

    :param pardot_conn_id: Airflow connection id of type ``salesforce_pardot``.
    :param api_version: overrides the connection's Salesforce ``api_version`` (used for the token only).
    """

    conn_name_attr = "pardot_conn_id"
    default_conn_name = "salesforce_pardot_default"
    conn_type = PARDOT_CONN_TYPE
    hook_name = "Salesforce Pardot (Account Engagement)"

    def __init__(self, pardot_conn_id: str = default_conn_name, *, api_version: str | None = None) -> None:
        super().__init__()
        self.pardot_conn_id = pardot_conn_id
        self._api_version_override = api_version

    @cached_property
    def config(self) -> PardotConnectionConfig:
        """The validated connection config (reads the connection on first use)."""
        conn = self.get_connection(self.pardot_conn_id)
        return PardotConnectionConfig.from_connection(conn, api_version=self._api_version_override)

    @cached_property
    def authenticator(self) -> SalesforceAuthenticator:
        return SalesforceAuthenticator(self.config.salesforce)

    @cached_property
    def session(self) -> SalesforceSession:
        """The authenticated session; the configured Pardot host may receive the token."""
        return SalesforceSession(self.config.salesforce, self.authenticator, trusted_urls=[self.config.pardot_host])

    @property
    def pardot_api_version(self) -> int:
        return self.config.pardot_api_version

    @property
    def business_unit_id(self) -> str:
        return self.config.business_unit_id

    def v5_path(self, path: str = "") -> str:
        """``/api/v5/objects/{path}``, e.g. ``v5_path("prospects/42")``."""
        return f"/api/v5/objects/{path.lstrip('/')}"

    def v4_path(self, obj: str, operation: str) -> str:
        """``/api/{obj}/version/4/do/{operation}``, e.g. ``v4_path("prospect", "query")``."""
        return f"/api/{obj.strip('/')}/version/4/do/{operation.strip('/')}"

    def url(self, path_or_url: str) -> str:
        """Absolute URL of a Pardot path (absolute URLs, such as ``nextPageUrl``, pass through)."""
        if "://" in path_or_url:
            return path_or_url
        return f"{self.config.pardot_host}/{path_or_url.lstrip('/')}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send a Pardot request with the Business Unit header and raise a ``SalesforceApiError`` on failure.

        v4 paths get ``format=json`` unless the caller chose a format, and a v4 ``stat="fail"`` body
        raises even when the HTTP status is 2xx.

        :param method: HTTP method.
        :param path_or_url: ``/api/v5/objects/...`` or ``/api/{object}/version/4/do/{op}`` (resolved
            against ``pardot_host``), or an absolute URL.
        :param params: query parameters.
        :param json: JSON body.
        :param data: form or raw body (must be replayable: bytes, str or dict).
        :param headers: extra headers.
        :param files: multipart parts, as ``requests`` takes them (bytes content, so replayable).
        :param stream: do not read the body of a successful response up front.
        :param idempotent: whether the call may be replayed after a dropped connection (default: by method).
        """
        url = self.url(path_or_url)
        send_headers = CaseInsensitiveDict(headers or {})
        send_headers[BUSINESS_UNIT_HEADER] = self.config.business_unit_id
        v4 = V4_MARKER in url
        if v4 and "format" not in (params or {}):
            params = {**(params or {}), "format": "json"}
        with concurrency_slots(f"{self.pardot_conn_id}/{self.config.business_unit_id}"):
            response = self.session.request(
                method, url, params=params, json=json, data=data, headers=send_headers, files=files,
                stream=stream, idempotent=idempotent,
            )
        try:
            raise_for_status(response)
            if v4 and not stream and "json" in response.headers.get("Content-Type", ""):
                self._raise_for_v4_failure(response)
        except SalesforceApiError as exc:
            if exc.error_code in BUSINESS_UNIT_CODES:
                raise PardotBusinessUnitError.from_error(exc, self.business_unit_id, self.pardot_conn_id) from None
            raise
        return response

    @staticmethod
    def _raise_for_v4_failure(response: requests.Response) -> None:
        try:
            attributes = (response.json() or {}).get("@attributes")
        except (ValueError, AttributeError):
            return
        if isinstance(attributes, dict) and attributes.get("stat") == "fail":
            raise error_from_response(response.status_code, response.headers, response.content,
                                      method=response.request.method, path=response.request.url)

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate with Salesforce and read one prospect id: the Airflow UI's "Test" button."""
        try:
            if self.pardot_api_version == 5:
                self.request("GET", self.v5_path("prospects"), params={"fields": "id", "limit": 1})
            else:
                self.request("GET", self.v4_path("prospect", "query"), params={"limit": 1})
        except Exception as exc:  # the UI wants a message, not a traceback; our errors carry no secrets
            return False, f"{type(exc).__name__}: {exc}"
        return True, (f"Connected to Pardot API v{self.pardot_api_version} at {self.config.pardot_host} "
                      f"(business unit {self.business_unit_id})")
