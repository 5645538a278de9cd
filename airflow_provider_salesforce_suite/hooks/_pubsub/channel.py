"""The gRPC side of the Pub/Sub hook: one ``grpc.aio`` channel per hook and event loop, the call
metadata (``accesstoken``, ``instanceurl``, ``tenantid``) from the shared auth layer, unary calls
with one re-authentication on ``UNAUTHENTICATED`` and bounded retries, and gRPC errors turned into
:mod:`core.errors` exceptions.

The org id (``tenantid``) comes from the token response's ``id`` URL (``.../id/<org id>/<user id>``),
or, for a bare session id, from the OpenID ``userinfo`` endpoint; it is asked for once per channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlsplit

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceOutcomeUnknownError,
    SalesforcePubSubAuthError,
    SalesforcePubSubError,
    pubsub_error,
)
from airflow_provider_salesforce_suite.core.retry import RetryPolicy
from airflow_provider_salesforce_suite.core.tls import looks_like_tls_failure

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.auth import SalesforceAuthenticator, Token
    from airflow_provider_salesforce_suite.core.config import SalesforceConnectionConfig

log = logging.getLogger(__name__)

#: gRPC status names that mean "try again on a new call" (the server or the path to it is unwell).
TRANSIENT_CODES = frozenset({"UNAVAILABLE"})
_MAX_MESSAGE_BYTES = 128 * 1024 * 1024
# Details gRPC gives when no connection could be made: the request never left.
_NOT_CONNECTED = ("failed to connect", "connection refused", "dns resolution failed", "name resolution")


@dataclass(frozen=True)
class Identity:
    """Who the token belongs to.

    :param org_id: the org id (``tenantid``).
    :param user_id: the user id (``CreatedById`` of published platform events).
    """

    org_id: str
    user_id: str | None


def identity_from_token(token: Token) -> Identity | None:
    """The org and user of a token response's ``id`` URL (``https://host/id/<org>/<user>``), if it has one."""
    url = (token.extra or {}).get("id")
    if not url:
        return None
    parts = [p for p in urlsplit(str(url)).path.split("/") if p]
    if len(parts) >= 3 and parts[-3] == "id":
        return Identity(org_id=parts[-2], user_id=parts[-1])
    return None


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): doubling from ``initial_backoff``, capped, with jitter."""
    base = min(policy.max_backoff, policy.initial_backoff * (2 ** (attempt - 1)))
    return base + random.uniform(0, policy.initial_backoff)


def status_name(exc: BaseException) -> str | None:
    """The gRPC status name of an ``AioRpcError`` (None for anything else)."""
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:
        return None
    return getattr(value, "name", None)


def trailers_of(exc: Any) -> tuple[tuple[str, Any], ...]:
    try:
        return tuple((str(k), v) for k, v in (exc.trailing_metadata() or ()))
    except Exception:
        return ()


def rpc_error(exc: Any, what: str) -> SalesforcePubSubError:
    """Our exception for a failed RPC (an ``AioRpcError``)."""
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    return pubsub_error(status_name(exc) or "UNKNOWN", details, trailers_of(exc), what=what)


def is_transient(exc: Any) -> bool:
    """Whether a new call may fix what ended this one: ``UNAVAILABLE`` (not a TLS failure), or ``INTERNAL`` that Salesforce did
    not send (no ``error-code``: gRPC's own report of a stream broken mid-write, "Internal error from Core")."""
    code = status_name(exc)
    if code in TRANSIENT_CODES:
        # A failed TLS handshake comes as UNAVAILABLE too, but no new call fixes a certificate.
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        return not looks_like_tls_failure(details or "")
    return code == "INTERNAL" and not any(k.lower() == "error-code" for k, _ in trailers_of(exc))


def never_sent(exc: Any) -> bool:
    """Whether the call failed before it reached the server (no connection could be made), so a
    call that must not run twice may be sent again. Any answer, even Salesforce's own
    ``UNAVAILABLE`` with ``sfdc.platform.eventbus.grpc.service.unavailable``, may come after the
    server acted: such a ``Publish`` has an unknown outcome."""
    details = (exc.details() or "").lower() if callable(getattr(exc, "details", None)) else ""
    return any(text in details for text in _NOT_CONNECTED)


class PubSubChannel:
    """A channel to the Pub/Sub endpoint and the metadata of its calls.

    :param config: the connection config (TLS trust: ``ca_bundle`` / ``verify``).
    :param authenticator: the connection's shared token source.
    :param endpoint: ``host:port``.
    :param userinfo: fetches the OpenID ``userinfo`` document (for tokens without an ``id`` URL).
    :param tenant_id: overrides the org id sent as ``tenantid``.
    """

    def __init__(self, config: SalesforceConnectionConfig, authenticator: SalesforceAuthenticator, endpoint: str,
                 userinfo: Callable[[], Awaitable[dict[str, Any]]], *, tenant_id: str | None = None) -> None:
        self.config = config
        self.authenticator = authenticator
        self.endpoint = endpoint
        self.policy = RetryPolicy.from_config(config)
        self._userinfo = userinfo
        self._tenant_override = tenant_id
        self._identity: Identity | None = None
        self._channel: Any = None
        self._stub: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- channel -----------------------------------------------------------------------------------
    @property
    def plaintext(self) -> bool:
        """An emulator started with ``--no-tls`` on loopback (the login URL is ``http://``)."""
        return self.config.login_url.startswith("http://")

    def _credentials(self) -> Any:
        import grpc

        if self.config.verify and self.config.ca_bundle:
            with open(self.config.ca_bundle, "rb") as handle:
                return grpc.ssl_channel_credentials(root_certificates=handle.read())
        if self.config.verify:
            return grpc.ssl_channel_credentials()
        # gRPC cannot switch verification off: trust whatever certificate the endpoint presents.
        host, _, port = self.endpoint.rpartition(":")
        log.warning("verify is false: trusting the certificate %s presents without checking it (testing only)",
                    self.endpoint)
        pem = ssl.get_server_certificate((host.strip("[]"), int(port)), timeout=self.config.connect_timeout)
        return grpc.ssl_channel_credentials(root_certificates=pem.encode("ascii"))

    async def stub(self) -> Any:
        """The ``PubSubStub`` on this event loop's channel (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._stub is not None and self._loop is loop:
            return self._stub
        import grpc

        from airflow_provider_salesforce_suite.core.pubsub import stubs

        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)]
        if self.plaintext:
            channel = grpc.aio.insecure_channel(self.endpoint, options=options)
        else:
            credentials = await asyncio.to_thread(self._credentials)
            channel = grpc.aio.secure_channel(self.endpoint, credentials, options=options)
        self._channel, self._loop = channel, loop
        self._stub = stubs().pb2_grpc.PubSubStub(channel)
        return self._stub

    async def close(self) -> None:
        """Close the channel (open calls end with ``CANCELLED``)."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()

    # -- metadata ----------------------------------------------------------------------------------
    async def identity(self, token: Token) -> Identity:
        """The org and user of ``token`` (asked for once; a new token of the same connection has the same)."""
        if self._identity is None:
            found = identity_from_token(token)
            if found is None:
                info = await self._userinfo()
                org_id = info.get("organization_id") if isinstance(info, dict) else None
                if not org_id:
                    raise SalesforcePubSubError(
                        "cannot tell the org id (Pub/Sub tenantid): the token response has no id URL and userinfo "
                        "has no organization_id")
                found = Identity(org_id=str(org_id), user_id=info.get("user_id"))
            self._identity = found
        return self._identity

    async def metadata(self, token: Token) -> tuple[tuple[str, str], ...]:
        """``accesstoken``, ``instanceurl`` and ``tenantid`` for a call made with ``token``."""
        tenant = self._tenant_override or (await self.identity(token)).org_id
        return (("accesstoken", token.access_token), ("instanceurl", token.instance_url), ("tenantid", tenant))

    # -- calls -------------------------------------------------------------------------------------
    async def reauthenticate(self, token: Token, reauthenticated: bool, exc: Any, what: str) -> Token:
        """A fresh token after ``UNAUTHENTICATED``; the error itself when this token was already a fresh one."""
        if not self.authenticator.can_reauthenticate:
            error = rpc_error(exc, what)
            raise SalesforcePubSubAuthError(
                f"Salesforce Pub/Sub {what} was refused (UNAUTHENTICATED): the session id is expired or invalid, and "
                "auth_type 'session' cannot re-authenticate: give the connection a fresh session_id or use an OAuth "
                "auth_type", grpc_code=error.grpc_code, error_code=error.error_code, rpc_id=error.rpc_id) from None
        if reauthenticated:
            raise rpc_error(exc, what) from None
        log.info("Pub/Sub API rejected the session (UNAUTHENTICATED); re-authenticating")
        return await self.authenticator.areauthenticate(token)

    async def unary(self, method: str, request: Any, *, what: str, idempotent: bool = True) -> Any:
        """Call a unary RPC; ``UNAUTHENTICATED`` re-authenticates once, ``UNAVAILABLE`` is retried with
        backoff when the call may be sent again.

        :param method: the RPC (``GetTopic``, ``GetSchema``, ``Publish``).
        :param request: its request message.
        :param what: the call in the user's words, for errors.
        :param idempotent: False for ``Publish``: a call that may have been carried out is not sent again.
        :raises SalesforceOutcomeUnknownError: a non-idempotent call was sent and its answer was lost.
        :raises SalesforcePubSubError: the call failed (the subclass says why).
        """
        import grpc

        token = await self.authenticator.aget_token()
        reauthenticated, attempt = False, 0
        while True:
            stub = await self.stub()
            try:
                return await getattr(stub, method)(request, metadata=await self.metadata(token),
                                                   timeout=self.config.timeout)
            except grpc.aio.AioRpcError as exc:
                code = status_name(exc)
                if code == "UNAUTHENTICATED":
                    token = await self.reauthenticate(token, reauthenticated, exc, what)
                    reauthenticated = True
                    continue
                if is_transient(exc) or code == "DEADLINE_EXCEEDED":
                    safe = idempotent or (code in TRANSIENT_CODES and never_sent(exc))
                    if not safe:
                        raise SalesforceOutcomeUnknownError(
                            f"Salesforce Pub/Sub {what} was sent, then failed ({code}: {exc.details()}) before its "
                            "answer arrived") from None
                    if attempt < self.policy.max_retries:
                        attempt += 1
                        delay = backoff_delay(self.policy, attempt)
                        log.warning("Pub/Sub %s failed transiently (%s); retry %d of %d in %.2fs", what, code,
                                    attempt, self.policy.max_retries, delay)
                        await asyncio.sleep(delay)
                        continue
                raise rpc_error(exc, what) from None
