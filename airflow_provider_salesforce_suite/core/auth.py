"""Authentication flows and the per-process token cache.

One :class:`SalesforceAuthenticator` per connection config implements every flow once, synchronously;
async callers run the same code in a worker thread. Tokens are cached per connection per process, and
:meth:`SalesforceAuthenticator.reauthenticate` only fetches a new token if the cache still holds the
stale one, so N threads that all see the same expired session cause a single token request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from airflow_provider_salesforce_suite.core.config import (
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    SalesforceConnectionConfig,
    normalize_url,
)
from airflow_provider_salesforce_suite.core.errors import (
    SalesforceAuthError,
    SalesforceSessionExpiredError,
    snippet,
)
from airflow_provider_salesforce_suite.core.retry import RetryPolicy
from airflow_provider_salesforce_suite.core.safexml import parse_xml_safely, unsafe_xml_reason, xml_text
from airflow_provider_salesforce_suite.core.secrets import mask

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 180
# Salesforce removes SOAP login() from API 65.0 (retired for all versions in Summer '27).
SOAP_LOGIN_MAX_VERSION = "64.0"


@dataclass(frozen=True, repr=False)
class Token:
    """An access token and where to use it.

    :param access_token: the bearer token / session id (never shown in repr).
    :param instance_url: the org's instance URL, as returned by the token endpoint.
    :param issued_at: ``time.time()`` when we received it.
    :param token_type: OAuth token type.
    :param extra: other non-secret fields of the token response (``id``, ``scope``, ``issued_at``).
    """

    access_token: str
    instance_url: str
    issued_at: float = field(default_factory=time.time)
    token_type: str = "Bearer"
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r}, issued_at={self.issued_at:.0f}, access_token='***')"


# Process-wide cache: (conn_id, config fingerprint) -> Token, plus rotated refresh tokens.
_CACHE: dict[tuple[str, str], Token] = {}
_ROTATED_REFRESH_TOKENS: dict[tuple[str, str], str] = {}
_KEY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_CACHE_LOCK = threading.Lock()
_soap_warned = False


def clear_token_cache() -> None:
    """Forget every cached token and rotated refresh token (tests, credential changes)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _ROTATED_REFRESH_TOKENS.clear()


def _key_lock(key: tuple[str, str]) -> threading.Lock:
    with _CACHE_LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class SalesforceAuthenticator:
    """Obtains and renews access tokens for one connection config.

    :param config: the validated connection config.
    :param http: requests session for token calls; a plain one with the config's TLS/proxy settings
        is made when omitted (never the authenticating session itself, to avoid recursion).
    """

    def __init__(self, config: SalesforceConnectionConfig, http: requests.Session | None = None) -> None:
        self.config = config
        self._key = (config.conn_id, config.fingerprint())
        self._http = http or self._plain_session(config)
        self._policy = RetryPolicy.from_config(config)
        self._flows: dict[str, Callable[[], Token]] = {
            "password": self._password_flow,
            "jwt": self._jwt_flow,
            "client_credentials": self._client_credentials_flow,
            "refresh_token": self._refresh_token_flow,
            "session": self._session_flow,
            "soap_login": self._soap_login_flow,
        }

    @staticmethod
    def _plain_session(config: SalesforceConnectionConfig) -> requests.Session:
        session = requests.Session()
        session.verify = config.requests_verify
        if config.proxies:
            session.proxies.update(config.proxies)
        return session

    @property
    def can_reauthenticate(self) -> bool:
        """False for a bare session id: nothing to renew it with."""
        return self.config.auth_type != "session"

    # -- public API ------------------------------------------------------------------------------
    def get_token(self) -> Token:
        """The cached token, fetching one if none is cached."""
        token = _CACHE.get(self._key)
        if token is not None:
            return token
        with _key_lock(self._key):
            token = _CACHE.get(self._key)
            if token is None:
                token = self._fetch()
                _CACHE[self._key] = token
            return token

    def reauthenticate(self, stale: Token | str | None) -> Token:
        """A fresh token, unless another caller already replaced ``stale`` (then theirs is returned).

        :param stale: the token (or its string) that the server just rejected.
        :raises SalesforceSessionExpiredError: for ``auth_type='session'``, which cannot renew.
        """
        stale_value = stale.access_token if isinstance(stale, Token) else stale
        if not self.can_reauthenticate:
            raise SalesforceSessionExpiredError(
                401,
                "INVALID_SESSION_ID",
                "the session id is expired or invalid, and auth_type 'session' cannot re-authenticate: "
                "give the connection a fresh session_id or use an OAuth auth_type",
            )
        with _key_lock(self._key):
            current = _CACHE.get(self._key)
            if current is not None and current.access_token != stale_value:
                return current
            log.info("Salesforce session for connection %r expired; re-authenticating", self.config.conn_id)
            token = self._fetch()
            _CACHE[self._key] = token
            return token

    def invalidate(self) -> None:
        """Drop this connection's cached token."""
        _CACHE.pop(self._key, None)

    async def aget_token(self) -> Token:
        """Async :meth:`get_token` (same implementation, in a worker thread)."""
        return await asyncio.to_thread(self.get_token)

    async def areauthenticate(self, stale: Token | str | None) -> Token:
        """Async :meth:`reauthenticate` (same implementation, in a worker thread)."""
        return await asyncio.to_thread(self.reauthenticate, stale)

    # -- flows -----------------------------------------------------------------------------------
    def _fetch(self) -> Token:
        return self._flows[self.config.auth_type]()

    def _password_flow(self) -> Token:
        c = self.config
        return self._token_request(
            {
                "grant_type": "password",
                "client_id": c.consumer_key,
                "client_secret": c.consumer_secret,
                "username": c.username,
                "password": (c.password or "") + (c.security_token or ""),
            }
        )

    def _client_credentials_flow(self) -> Token:
        c = self.config
        return self._token_request(
            {"grant_type": "client_credentials", "client_id": c.consumer_key, "client_secret": c.consumer_secret}
        )

    def _refresh_token_flow(self) -> Token:
        c = self.config
        refresh_token = _ROTATED_REFRESH_TOKENS.get(self._key, c.refresh_token)
        form = {"grant_type": "refresh_token", "client_id": c.consumer_key, "refresh_token": refresh_token}
        if c.consumer_secret:
            form["client_secret"] = c.consumer_secret
        return self._token_request(form)

    def jwt_audience(self) -> str:
        """``aud`` claim: login/test.salesforce.com, else the configured host (My Domain, emulator)."""
        url = self.config.login_url
        if url in (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL):
            return url
        return normalize_url(url, "host")

    def _jwt_flow(self) -> Token:
        import jwt  # pyjwt; only this flow needs it

        c = self.config
        now = int(time.time())
        claims = {"iss": c.consumer_key, "sub": c.username, "aud": self.jwt_audience(),
                  "exp": now + JWT_LIFETIME_SECONDS}
        try:
            assertion = jwt.encode(claims, c.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise SalesforceAuthError(f"cannot sign the JWT with the configured private key: {type(exc).__name__}") from None
        return self._token_request({"grant_type": JWT_GRANT, "assertion": assertion})

    def _session_flow(self) -> Token:
        c = self.config
        assert c.session_id and c.instance_url  # guaranteed by config validation
        return Token(access_token=c.session_id, instance_url=c.instance_url)

    def _soap_login_flow(self) -> Token:
        # The SOAP fault parser tells the retry policy that a login fault (INVALID_LOGIN, HTTP 500)
        # is final, not a bare 500 to retry; SOAP hooks register it, a REST hook would not have.
        from airflow_provider_salesforce_suite.hooks._soap import faults  # noqa: F401

        global _soap_warned
        c = self.config
        if not _soap_warned:
            _soap_warned = True
            log.warning(
                "auth_type 'soap_login' uses the SOAP login() call, which Salesforce removes from API 65.0 "
                "and retires in Summer '27; switch to an OAuth flow (jwt, client_credentials, refresh_token)"
            )
        version = min(c.api_version, SOAP_LOGIN_MAX_VERSION, key=_version_tuple)
        # Self-service and IP-allowlisted users log in scoped to their org (the official provider's
        # "IP filtering" connections).
        scope = (f"<env:Header><urn:LoginScopeHeader><urn:organizationId>{xml_text(c.organization_id)}"
                 "</urn:organizationId></urn:LoginScopeHeader></env:Header>") if c.organization_id else ""
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:urn="urn:partner.soap.sforce.com">{scope}<env:Body><urn:login>'
            f"<urn:username>{xml_text(c.username or '')}</urn:username>"
            f"<urn:password>{xml_text((c.password or '') + (c.security_token or ''))}</urn:password>"
            "</urn:login></env:Body></env:Envelope>"
        )
        response = self._post(
            f"{c.login_url}/services/Soap/u/{version}",
            data=envelope.encode("utf-8"),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
        )
        root = parse_xml_safely(response.content)
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in (root.iter() if root is not None else [])}
        if response.status_code != 200 or "sessionId" not in values:
            code = values.get("faultcode", "").split(":")[-1] or None
            text = values.get("faultstring") or unsafe_xml_reason(response.content) or snippet(response.content)
            raise SalesforceAuthError(
                f"SOAP login failed (HTTP {response.status_code}{', ' + code if code else ''}): {text}",
                error=code, error_description=text, status=response.status_code,
            )
        session_id = values["sessionId"]
        mask(session_id)
        server = values.get("serverUrl", "")
        instance_url = normalize_url(server, "serverUrl") if server else c.login_url
        return Token(access_token=session_id, instance_url=instance_url, token_type="SOAP")

    # -- HTTP ------------------------------------------------------------------------------------
    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        """POST to a login endpoint under the shared retry policy, as an idempotent call: asking for a
        token again is safe, so a dropped connection, a read timeout and a bare 500 are retried too."""
        # transport imports this module; by the time a token is needed both are loaded.
        from airflow_provider_salesforce_suite.core.transport import send_with_retries

        c = self.config
        return send_with_retries(
            lambda: self._http.post(url, timeout=(c.connect_timeout, c.timeout), verify=c.requests_verify, **kwargs),
            "POST", url, self._policy, idempotent=True,
        )

    def _token_request(self, form: dict[str, Any]) -> Token:
        url = f"{self.config.login_url}{TOKEN_PATH}"
        response = self._post(url, data=form, headers={"Accept": "application/json"})
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200 or not isinstance(payload, dict) or "access_token" not in payload:
            error = payload.get("error") if isinstance(payload, dict) else None
            description = payload.get("error_description") if isinstance(payload, dict) else None
            detail = f"{error}: {description}" if error else snippet(response.content)
            raise SalesforceAuthError(
                f"Salesforce OAuth ({form['grant_type'].rsplit(':', 1)[-1]}) failed with HTTP "
                f"{response.status_code}: {detail}",
                error=error, error_description=description, status=response.status_code,
            )
        access_token = str(payload["access_token"])
        mask(access_token)
        new_refresh = payload.get("refresh_token")
        if new_refresh and self.config.auth_type == "refresh_token":
            mask(new_refresh)
            if new_refresh != _ROTATED_REFRESH_TOKENS.get(self._key, self.config.refresh_token):
                log.info("Salesforce rotated the refresh token of connection %r", self.config.conn_id)
            _ROTATED_REFRESH_TOKENS[self._key] = new_refresh
        instance_url = payload.get("instance_url")
        if not instance_url:
            raise SalesforceAuthError("the token response has no instance_url", status=response.status_code)
        extra = {k: v for k, v in payload.items() if k in ("id", "scope", "issued_at", "token_type")}
        return Token(
            access_token=access_token,
            instance_url=normalize_url(str(instance_url), "instance_url"),
            token_type=str(payload.get("token_type") or "Bearer"),
            extra=extra,
        )

    def current_refresh_token(self) -> str | None:
        """The refresh token in use (after rotation), for callers that persist it."""
        return _ROTATED_REFRESH_TOKENS.get(self._key, self.config.refresh_token)
