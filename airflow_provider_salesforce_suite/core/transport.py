"""HTTP transport: timeouts, TLS, proxies, auth header, one re-auth on expiry, retries, limit info.

:class:`SalesforceSession` (requests) and :class:`AsyncSalesforceSession` (aiohttp) make the same
decisions by calling the same pure functions (:func:`auth_headers`, :func:`needs_reauth`, and
:mod:`~airflow_provider_salesforce_suite.core.retry`'s :func:`~.retry.check_reply`,
:func:`~.retry.raise_transport_failure`, :func:`~.retry.retries_exhausted`) and the same tenacity policy:

* a TLS certificate/handshake problem is never retried, and its error says how to fix ``verify`` /
  ``ca_bundle``; a failed connect is retried for any method;
* a connection reset or closed mid-request/mid-reply, or a read timeout, is retried for idempotent
  calls (GET, HEAD, PUT, DELETE, OPTIONS, or ``idempotent=True``); any other call raises
  :class:`~airflow_provider_salesforce_suite.core.errors.SalesforceOutcomeUnknownError` (the server may
  have carried it out), never retried;
* transient replies (see :func:`~.retry.classify_transient`) are retried within the same bounds.

Both RETURN responses (so simple-salesforce's own status handling works on top); callers turn non-2xx
into exceptions with :func:`~airflow_provider_salesforce_suite.core.errors.raise_for_status`. The
responses' ``json()`` raises
:class:`~airflow_provider_salesforce_suite.core.errors.SalesforceUnparseableResponseError` (status, method,
path and a sanitized snippet) for a body that is not JSON, such as a proxy's HTML page or a cut reply.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies

from airflow_provider_salesforce_suite.core.auth import SalesforceAuthenticator, Token
from airflow_provider_salesforce_suite.core.errors import (
    SalesforceSessionExpiredError,
    error_from_response,
    unparseable_response,
)
from airflow_provider_salesforce_suite.core.limits import LIMIT_INFO_HEADER, ApiUsage, LimitWatcher, parse_limit_info
from airflow_provider_salesforce_suite.core.retry import (
    RetryableFault,
    RetryPolicy,
    async_retrying,
    check_reply,
    raise_transport_failure,
    retries_exhausted,
    sync_retrying,
)

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_salesforce_suite.core.config import SalesforceConnectionConfig

log = logging.getLogger(__name__)

BULK_V1_PREFIX = "/services/async/"
#: Hosts whose environment settings a session remembers (a session talks to a handful).
_ENVIRONMENT_HOSTS = 32
_BULK_INVALID_SESSION = re.compile(rb"<exceptionCode>\s*InvalidSessionId\s*</exceptionCode>")
# Hosts that may receive the token besides the instance and login hosts.
SALESFORCE_DOMAINS = (".salesforce.com", ".force.com", ".pardot.com", ".cloudforce.com", ".salesforce-setup.com")


# -- pure decisions shared by the sync and async sessions ------------------------------------------
def needs_reauth(status: int, headers: Mapping[str, str] | None, body: bytes | None) -> bool:
    """Whether the response says the token is no longer valid.

    REST answers 401 (INVALID_SESSION_ID); Bulk 1.0 answers 400 with ``InvalidSessionId`` in XML.
    """
    if status == 401:
        return True
    return status == 400 and bool(body) and bool(_BULK_INVALID_SESSION.search(body))


def should_authenticate(url: str, token: Token, login_url: str, trusted_hosts: Iterable[str] = ()) -> bool:
    """Only Salesforce hosts get the token: never leak it to a foreign absolute URL.

    :param trusted_hosts: further hosts configured on the connection (e.g. a Pardot host) that may get it.
    """
    host = (urlsplit(url).hostname or "").lower()
    own = {urlsplit(token.instance_url).hostname, urlsplit(login_url).hostname, *trusted_hosts}
    return host in own or host.endswith(SALESFORCE_DOMAINS)


def url_hosts(urls: Iterable[str]) -> frozenset[str]:
    """Lower-cased host names of ``urls`` (for ``trusted_hosts``)."""
    return frozenset(h.lower() for h in (urlsplit(u).hostname for u in urls) if h)


def auth_headers(url: str, token: Token, headers: Mapping[str, str] | None) -> CaseInsensitiveDict:
    """Caller headers with the current token injected, replacing any stale one the caller set."""
    merged = CaseInsensitiveDict(headers or {})
    if urlsplit(url).path.startswith(BULK_V1_PREFIX):
        merged.pop("Authorization", None)
        merged["X-SFDC-Session"] = token.access_token
    else:
        merged.pop("X-SFDC-Session", None)
        merged["Authorization"] = f"Bearer {token.access_token}"
    return merged


def absolute_url(path_or_url: str, token: Token) -> str:
    """``/services/...`` paths resolve against the token's instance URL; absolute URLs pass through."""
    if "://" in path_or_url:
        return path_or_url
    return urljoin(token.instance_url + "/", path_or_url.lstrip("/"))


# What requests raises for a failure on the wire (SSLError and ProxyError are ConnectionErrors; a
# reply cut mid-body is a ChunkedEncodingError).
_REQUESTS_FAILURES = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class SalesforceResponse(requests.Response):
    """The ``requests.Response`` our sessions return: ``json()`` names the call when the body is not JSON."""

    def json(self, **kwargs: Any) -> Any:
        """The decoded JSON body.

        :param kwargs: passed to :func:`json.loads`.
        :raises SalesforceUnparseableResponseError: the body is not JSON (an HTML page, a cut reply).
        """
        try:
            return super().json(**kwargs)
        except ValueError:
            request = self.request
            raise unparseable_response(self.status_code, self.content, request.method if request else None,
                                       self.url) from None


def error_body(response: requests.Response) -> bytes:
    """The body of an error response; successful (possibly streamed) bodies stay unread."""
    return response.content if response.status_code >= 400 else b""


def send_with_retries(send: Callable[[], requests.Response], method: str, url: str, policy: RetryPolicy,
                      idempotent: bool | None = None) -> SalesforceResponse:
    """Call ``send`` under the retry policy and return the final response (2xx or not).

    Transient responses and failures are retried with backoff (or the server's requested wait) as
    the module docstring says; a failure that is not retried, or keeps failing, raises
    :class:`~airflow_provider_salesforce_suite.core.errors.SalesforceTransportError` (or its
    ``SalesforceOutcomeUnknownError`` subclass).

    :param send: performs one HTTP attempt.
    :param method: HTTP method (decides what is safe to replay).
    :param url: request URL (only its path appears in errors).
    :param policy: retry bounds.
    :param idempotent: override whether the call may be replayed after an ambiguous failure.
    """
    attempts = 0

    def attempt() -> requests.Response:
        nonlocal attempts
        attempts += 1
        try:
            response = send()
        except _REQUESTS_FAILURES as exc:
            raise_transport_failure(exc, method=method, url=url, idempotent=idempotent, attempts=attempts)
        check_reply(response.status_code, response.headers, error_body(response), method=method, url=url,
                    idempotent=idempotent, policy=policy, result=response)
        return response

    try:
        response = sync_retrying(policy)(attempt)
    except RetryableFault as fault:
        response = retries_exhausted(fault, method=method, url=url, attempts=attempts)
    response.__class__ = SalesforceResponse  # same layout: json() now names the call on a bad body
    return response


# -- requests --------------------------------------------------------------------------------------
class SalesforceSession(requests.Session):
    """A requests session that authenticates, re-authenticates once, retries and records API usage.

    :param config: the validated connection config.
    :param authenticator: token source; one per config is made when omitted.
    :param trusted_urls: further configured base URLs (e.g. the Pardot host) whose host may get the token.
    """

    def __init__(self, config: SalesforceConnectionConfig, authenticator: SalesforceAuthenticator | None = None,
                 *, trusted_urls: Iterable[str] = ()):
        super().__init__()
        self.config = config
        self.authenticator = authenticator or SalesforceAuthenticator(config)
        self.trusted_hosts = url_hosts(trusted_urls)
        self.policy = RetryPolicy.from_config(config)
        self.verify = config.requests_verify
        if config.proxies:
            self.proxies.update(config.proxies)
        self.api_usage: ApiUsage | None = None
        self._limits = LimitWatcher(config.limit_warning_threshold, config.conn_id)
        # (scheme, host, no_proxy) -> the environment's proxies and CA bundle, read once per session
        self._environment: dict[tuple[str, str, Any], tuple[dict[str, str], str | None]] = {}

    @property
    def token(self) -> Token:
        """The current token (fetched on first use)."""
        return self.authenticator.get_token()

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        """requests' merge of a call's settings with the environment's and the session's, with the
        environment's proxies (``*_proxy``, ``no_proxy``) and CA bundle (``REQUESTS_CA_BUNDLE``,
        ``CURL_CA_BUNDLE``) read once per host for the session's life: requests reads them on every
        call, most of a poll's client CPU."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._environment.get(key)
        if found is None:
            if len(self._environment) >= _ENVIRONMENT_HOSTS:
                self._environment.clear()
            found = (get_environ_proxies(url, no_proxy=no_proxy),
                     os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))
            self._environment[key] = found
        env_proxies, ca_bundle = found
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = ca_bundle or verify
        return {"proxies": merge_setting(proxies, self.proxies), "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}

    def request(  # type: ignore[override]
        self, method: str, url: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send with auth, one re-auth on an expired session, and transient-fault retries.

        :param method: HTTP method.
        :param url: absolute URL or a path like ``/services/data/v64.0/limits``.
        :param idempotent: override whether the call may be replayed after an ambiguous failure.
        :param kwargs: anything :meth:`requests.Session.request` takes. Bodies must be replayable
            (bytes, str, dict, ``json=``), since a retry or re-auth sends them again.
        """
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self.config.connect_timeout, self.config.timeout)
        if kwargs.get("verify") is None:
            # Explicit per request: requests lets REQUESTS_CA_BUNDLE override session.verify otherwise.
            kwargs["verify"] = self.verify
        token = self.authenticator.get_token()
        response = self._send(method, url, token, idempotent, kwargs)
        if needs_reauth(response.status_code, response.headers, error_body(response)) and \
                should_authenticate(absolute_url(url, token), token, self.config.login_url, self.trusted_hosts):
            if not self.authenticator.can_reauthenticate:
                raise SalesforceSessionExpiredError(
                    response.status_code, "INVALID_SESSION_ID",
                    "the session id is expired or invalid, and auth_type 'session' cannot re-authenticate: "
                    "give the connection a fresh session_id or use an OAuth auth_type",
                    method=method, path=absolute_url(url, token),
                )
            response.close()
            fresh = self.authenticator.reauthenticate(token)
            # A second rejection is returned as is (the caller raises it): never a loop.
            response = self._send(method, url, fresh, idempotent, kwargs)
        self._record_usage(response.headers.get(LIMIT_INFO_HEADER))
        return response

    def _send(self, method: str, url: str, token: Token, idempotent: bool | None,
              kwargs: dict[str, Any]) -> requests.Response:
        full_url = absolute_url(url, token)
        call = dict(kwargs)
        if should_authenticate(full_url, token, self.config.login_url, self.trusted_hosts):
            call["headers"] = auth_headers(full_url, token, kwargs.get("headers"))
        send = super().request
        return send_with_retries(lambda: send(method, full_url, **call), method, full_url, self.policy, idempotent)

    def _record_usage(self, header: str | None) -> None:
        usage = parse_limit_info(header)
        if usage is not None:
            self.api_usage = usage
            self._limits.observe(usage)


# -- aiohttp ---------------------------------------------------------------------------------------
class AsyncResponse:
    """A fully read aiohttp response.

    :param status: HTTP status.
    :param headers: response headers (case-insensitive).
    :param body: raw body.
    :param method: request method.
    :param url: request URL.
    """

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, method: str, url: str) -> None:
        self.status = status
        self.headers = CaseInsensitiveDict(headers)
        self.body = body
        self.method = method
        self.url = url

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The decoded JSON body (None when empty).

        :raises SalesforceUnparseableResponseError: the body is not JSON (an HTML page, a cut reply).
        """
        try:
            return jsonlib.loads(self.body) if self.body else None
        except ValueError:
            raise unparseable_response(self.status, self.body, self.method, self.url) from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def raise_for_status(self) -> AsyncResponse:
        """Return self if 2xx, otherwise raise the matching ``SalesforceApiError``."""
        if not self.ok:
            raise error_from_response(self.status, self.headers, self.body, self.method, self.url)
        return self


class AsyncSalesforceSession:
    """The aiohttp twin of :class:`SalesforceSession`, for triggers.

    :param config: the validated connection config.
    :param authenticator: token source (shared with the sync session, so one token cache).
    :param trusted_urls: further configured base URLs (e.g. the Pardot host) whose host may get the token.
    """

    def __init__(self, config: SalesforceConnectionConfig, authenticator: SalesforceAuthenticator | None = None,
                 *, trusted_urls: Iterable[str] = ()):
        self.config = config
        self.authenticator = authenticator or SalesforceAuthenticator(config)
        self.trusted_hosts = url_hosts(trusted_urls)
        self.policy = RetryPolicy.from_config(config)
        self.api_usage: ApiUsage | None = None
        self._limits = LimitWatcher(config.limit_warning_threshold, config.conn_id)
        self._client: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ssl(self) -> Any:
        import ssl

        if not self.config.verify:
            return False
        return ssl.create_default_context(cafile=self.config.ca_bundle) if self.config.ca_bundle else True

    async def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        # aiohttp sessions belong to one event loop; triggers may run on a new one.
        if self._client is None or self._client.closed or self._loop is not loop:
            timeout = aiohttp.ClientTimeout(
                sock_connect=self.config.connect_timeout, sock_read=self.config.timeout
            )
            self._client = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(ssl=self._ssl())
            )
            self._loop = loop
        return self._client

    async def close(self) -> None:
        if self._client is not None and not self._client.closed:
            await self._client.close()
        self._client = None

    async def __aenter__(self) -> AsyncSalesforceSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> AsyncResponse:
        """Send like :meth:`SalesforceSession.request`; the body is read before returning."""
        call = {"params": params, "json": json, "data": data}
        token = await self.authenticator.aget_token()
        response = await self._send(method, url, token, headers, idempotent, call)
        if needs_reauth(response.status, response.headers, response.body) and \
                should_authenticate(absolute_url(url, token), token, self.config.login_url, self.trusted_hosts):
            if not self.authenticator.can_reauthenticate:
                raise SalesforceSessionExpiredError(
                    response.status, "INVALID_SESSION_ID",
                    "the session id is expired or invalid, and auth_type 'session' cannot re-authenticate: "
                    "give the connection a fresh session_id or use an OAuth auth_type",
                    method=method, path=absolute_url(url, token),
                )
            fresh = await self.authenticator.areauthenticate(token)
            response = await self._send(method, url, fresh, headers, idempotent, call)
        usage = parse_limit_info(response.headers.get(LIMIT_INFO_HEADER))
        if usage is not None:
            self.api_usage = usage
            self._limits.observe(usage)
        return response

    async def _send(self, method: str, url: str, token: Token, headers: Mapping[str, str] | None,
                    idempotent: bool | None, call: dict[str, Any]) -> AsyncResponse:
        import aiohttp

        full_url = absolute_url(url, token)
        send_headers = dict(auth_headers(full_url, token, headers)) if \
            should_authenticate(full_url, token, self.config.login_url, self.trusted_hosts) else dict(headers or {})
        proxy = (self.config.proxies or {}).get(urlsplit(full_url).scheme)
        client = await self._session()

        attempts = 0

        async def attempt() -> AsyncResponse:
            nonlocal attempts
            attempts += 1
            try:
                async with client.request(
                    method, full_url, headers=send_headers, proxy=proxy, **call
                ) as raw:
                    response = AsyncResponse(raw.status, raw.headers, await raw.read(), method, full_url)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                raise_transport_failure(exc, method=method, url=full_url, idempotent=idempotent, attempts=attempts)
            check_reply(response.status, response.headers, response.body, method=method, url=full_url,
                        idempotent=idempotent, policy=self.policy, result=response)
            return response

        try:
            return await async_retrying(self.policy)(attempt)
        except RetryableFault as fault:
            return retries_exhausted(fault, method=method, url=full_url, attempts=attempts)
