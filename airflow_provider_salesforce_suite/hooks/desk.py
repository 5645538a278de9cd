"""Desk connection layer: Basic or OAuth 1.0a auth, timeouts, TLS and the shared retry policy.

Salesforce retired the hosted Desk.com service in March 2020; this hook serves Desk-compatible
API v2 endpoints (``{site}/api/v2/...``) such as archives and the emulator. Desk's error bodies
(``{"message", "errors"}``) are understood by :func:`parse_desk_error`, registered with
:func:`~airflow_provider_salesforce_suite.core.errors.register_body_parser`.
"""

from __future__ import annotations

import json as jsonlib
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

from airflow_provider_salesforce_suite.core.config import DESK_CONN_TYPE, DeskConnectionConfig
from airflow_provider_salesforce_suite.core.errors import ErrorDetail, raise_for_status, register_body_parser
from airflow_provider_salesforce_suite.core.retry import RetryPolicy
from airflow_provider_salesforce_suite.core.transport import send_with_retries

if TYPE_CHECKING:
    from requests.auth import AuthBase

API_PREFIX = "/api/v2/"


def parse_desk_error(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    """Desk errors: ``{"message": "Validation Failed", "errors": {"subject": ["blank"]}}``.

    The fields named in ``errors`` become :attr:`ErrorDetail.fields`, and their reasons join the message.

    :param body: response body.
    :param content_type: response content type.
    """
    try:
        data = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or "errorCode" in data or not isinstance(data.get("errors"), dict):
        return None
    reasons = []
    for name, why in data["errors"].items():
        why = ", ".join(str(w) for w in why) if isinstance(why, list) else str(why)
        reasons.append(f"{name}: {why}")
    message = str(data.get("message") or "Desk error")
    if reasons:
        message += f" ({'; '.join(reasons)})"
    return [ErrorDetail(error_code=None, message=message, fields=[str(k) for k in data["errors"]])]


register_body_parser(parse_desk_error)


class DeskHook(BaseHook):
    """Talks to one Desk site's API v2. Constructing it does no I/O.

    :param desk_conn_id: Airflow connection id of type ``salesforce_desk``.
    """

    conn_name_attr = "desk_conn_id"
    default_conn_name = "salesforce_desk_default"
    conn_type = DESK_CONN_TYPE
    hook_name = "Salesforce Desk"

    def __init__(self, desk_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.desk_conn_id = desk_conn_id

    @cached_property
    def config(self) -> DeskConnectionConfig:
        """The validated connection config (reads the connection on first use)."""
        return DeskConnectionConfig.from_connection(self.get_connection(self.desk_conn_id))

    @cached_property
    def auth(self) -> AuthBase:
        """Basic auth (email + password) or an OAuth 1.0a signer, per the connection's ``auth_type``."""
        c = self.config
        if c.auth_type == "oauth1":
            from requests_oauthlib import OAuth1  # only OAuth 1.0a connections need it

            return OAuth1(c.consumer_key, client_secret=c.consumer_secret,
                          resource_owner_key=c.access_token, resource_owner_secret=c.access_token_secret)
        return requests.auth.HTTPBasicAuth(c.email, c.password)

    @cached_property
    def session(self) -> requests.Session:
        """A plain requests session with the connection's proxies; credentials are added per request."""
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if self.config.proxies:
            session.proxies.update(self.config.proxies)
        return session

    def url(self, path_or_url: str) -> str:
        """``cases`` or ``/api/v2/cases`` -> ``{site}/api/v2/cases``; absolute URLs pass through."""
        if "://" in path_or_url:
            return path_or_url
        path = path_or_url if path_or_url.startswith("/api/") else API_PREFIX + path_or_url.lstrip("/")
        return self.config.site_url + path

    def _is_site(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == urlsplit(self.config.site_url).netloc.lower()

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send a Desk API request with retries and raise a ``SalesforceApiError`` on non-2xx.

        A 429 waits for Desk's rate-limit reset and retries (within ``retry_max_seconds``).
        Credentials are only sent to the configured site, never to a foreign absolute URL.

        :param method: HTTP method.
        :param path_or_url: ``cases``, ``/api/v2/cases/1`` or an absolute URL.
        :param params: query parameters.
        :param json: JSON body.
        :param data: raw body (must be replayable: bytes, str or dict).
        :param headers: extra headers.
        :param stream: do not read the body of a successful response up front.
        :param idempotent: whether the call may be replayed after a dropped connection (default: by method).
        """
        c = self.config
        url = self.url(path_or_url)
        call = {
            "params": params, "json": json, "data": data, "headers": headers, "stream": stream,
            "auth": self.auth if self._is_site(url) else None,
            "timeout": (c.connect_timeout, c.timeout),
            # Explicit per request: requests lets REQUESTS_CA_BUNDLE override session.verify otherwise.
            "verify": c.requests_verify,
        }
        response = send_with_retries(
            lambda: self.session.request(method, url, **call), method, url, RetryPolicy.from_config(c), idempotent
        )
        return raise_for_status(response)

    def test_connection(self) -> tuple[bool, str]:
        """Read the authenticated user: the Airflow UI's "Test" button."""
        try:
            me = self.request("GET", "users/me").json()
        except Exception as exc:  # the UI wants a message, not a traceback; our errors carry no secrets
            return False, f"{type(exc).__name__}: {exc}"
        who = (me.get("email") or me.get("name")) if isinstance(me, dict) else None
        return True, f"Connected to Desk at {self.config.site_url} as {who or 'the configured user'}"
