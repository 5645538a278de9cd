"""One Streaming API subscription over CometD long-polling, kept alive without gaps.

aiocometd (the ``aiocometd-noloop`` distribution, module ``aiocometd_noloop``; imported lazily) runs
the Bayeux protocol of ONE client session: handshake, the ``/meta/connect`` loop, subscribe and the
event queue. :class:`CometdStream` owns everything that spans sessions, because aiocometd cannot do
it cleanly:

* Salesforce's replay extension and the Bearer token go out through :func:`salesforce_extension`
  (an aiocometd ``Extension``): ``ext.replay`` on the handshake and a ``{channel: replayId}`` map on
  each subscribe, from the last DELIVERED replay id per channel (:class:`ReplayState`).
* A failed ``/meta/connect`` (``401::Authentication invalid``, ``403::Unknown client``) ends the
  session: the extension rewrites its advice to ``none`` before aiocometd reads it. Left alone,
  aiocometd would re-handshake by itself and resubscribe inside the next connect, where a refused
  resubscribe (replay id aged out) is silently dropped, and its ``AuthExtension`` retry treats every
  403 as an auth failure (a token fetch per re-handshake). Instead the stream re-authenticates once on
  a 401 and opens a new session that resubscribes from the last delivered replay id, so nothing is
  skipped; an event seen twice across sessions is dropped by replay id.
* A long poll lost in transit also ends the session (aiocometd would retry it with the same client
  id, but the server counts the events of a lost response as delivered).
* New sessions are opened under :mod:`core.retry`'s policy (bounded backoff on transport errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Literal, Mapping, Sequence

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceSessionExpiredError,
    SalesforceSuiteError,
    SalesforceTransportError,
    safe_path,
)
from airflow_provider_salesforce_suite.core.retry import RetryableFault, RetryPolicy, async_retrying

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.auth import SalesforceAuthenticator, Token

log = logging.getLogger(__name__)

#: Replay ids with a special meaning: only events published from now on, or every retained event.
REPLAY_NEW, REPLAY_ALL = -1, -2
ReplayGapPolicy = Literal["fail", "earliest"]
_GAP_POLICIES = ("fail", "earliest")
HANDSHAKE, CONNECT, SUBSCRIBE = "/meta/handshake", "/meta/connect", "/meta/subscribe"
# "400::The replayId {N} you provided was invalid.  Please provide a valid ID, -2 ... or -1 ..."
_GAP_ERROR = re.compile(r"^400::The replayId \{?(-?\d+)\}? you provided was invalid")
# Added to the advised /meta/connect hold to time out a request (aiocometd then adds 20 %).
_REQUEST_MARGIN_MS = 10_000
# Prefetched events aiocometd holds before it pauses the long poll for a slow consumer.
_MAX_PENDING = 1000


class SalesforceStreamingError(SalesforceSuiteError):
    """The Streaming API refused a request (e.g. an unknown channel) or the stream could not be kept.

    :param message: what went wrong (never contains a token).
    :param channel: the channel concerned, if any.
    :param error: Salesforce's Bayeux ``error`` field (``"400::..."``), if any.
    """

    def __init__(self, message: str, *, channel: str | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.error = error


class SalesforceReplayGapError(SalesforceStreamingError):
    """The replay id to resume from is outside the retention window: events after it may be lost.

    :param channel: the channel.
    :param replay_id: the refused replay id.
    :param error: Salesforce's Bayeux ``error`` field.
    """

    def __init__(self, channel: str, replay_id: int, error: str | None = None) -> None:
        super().__init__(
            f"Replay id {replay_id} on {channel} is outside the event retention window, so events after it "
            "may be lost. Resubscribe with -2 (every retained event) or -1 (new events only), or use "
            "on_replay_gap='earliest'",
            channel=channel, error=error,
        )
        self.replay_id = replay_id


def normalize_channels(channels: str | Sequence[str]) -> list[str]:
    """One or more channel names, validated (``/topic/X``, ``/data/...``, ``/event/X__e``, ``/u/X``).

    :raises ValueError: no channel, a non-string, a name without a leading ``/`` or a meta channel.
    """
    names = [channels] if isinstance(channels, str) else list(channels)
    if not names:
        raise ValueError("give at least one channel, e.g. '/topic/MyTopic'")
    for name in names:
        if not isinstance(name, str) or not name.startswith("/") or len(name) < 2:
            raise ValueError(f"channel names start with '/', e.g. '/topic/MyTopic'; got {name!r}")
        if name.startswith("/meta/"):
            raise ValueError(f"{name!r} is a Bayeux meta channel, not an event channel")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate channels in {names!r}")
    return names


def validate_replay_id(value: Any, channel: str = "") -> int:
    """A replay id: -1 (new events), -2 (all retained) or a stored id >= 0.

    :raises ValueError: anything else (booleans and strings included).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < REPLAY_ALL:
        where = f" for {channel}" if channel else ""
        raise ValueError(f"replay_id{where} must be an int: -1 (new events), -2 (all retained) or a "
                         f"stored replay id >= 0; got {value!r}")
    return value


def validate_gap_policy(value: Any) -> str:
    """:raises ValueError: ``value`` is not ``"fail"`` or ``"earliest"``."""
    if value not in _GAP_POLICIES:
        raise ValueError(f"on_replay_gap must be 'fail' or 'earliest', not {value!r}")
    return value


class ReplayState:
    """Where each channel resumes: after its last delivered event, else from its starting replay id.

    :param channels: the subscribed channels.
    :param replay_id: one id for every channel, or a ``{channel: id}`` map (missing channels: -1).
    """

    def __init__(self, channels: Sequence[str], replay_id: int | Mapping[str, int] = REPLAY_NEW) -> None:
        if isinstance(replay_id, Mapping):
            unknown = set(replay_id) - set(channels)
            if unknown:
                raise ValueError(f"replay_id names channels not subscribed to: {sorted(unknown)}")
            self.start = {ch: validate_replay_id(replay_id.get(ch, REPLAY_NEW), ch) for ch in channels}
        else:
            first = validate_replay_id(replay_id)
            self.start = {ch: first for ch in channels}
        self.delivered: dict[str, int] = {}

    def subscribe_from(self, channel: str) -> int:
        """The replay id to send when (re)subscribing ``channel``."""
        return self.delivered.get(channel, self.start.get(channel, REPLAY_NEW))

    def accept(self, channel: str, replay_id: int | None) -> bool:
        """Record a delivery; False for an event already delivered (a resubscribe may repeat it)."""
        if replay_id is None:
            return True
        last = self.delivered.get(channel)
        if last is not None and replay_id <= last:
            return False
        self.delivered[channel] = replay_id
        return True

    def restart_from_earliest(self, channel: str) -> None:
        """Resume ``channel`` from every retained event (after a replay gap)."""
        self.start[channel] = REPLAY_ALL
        self.delivered.pop(channel, None)


def event_replay_id(message: Mapping[str, Any]) -> int | None:
    """``data.event.replayId`` of a Bayeux event message, if present."""
    data = message.get("data")
    event = data.get("event") if isinstance(data, Mapping) else None
    value = event.get("replayId") if isinstance(event, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_failure(response: Mapping[str, Any] | None) -> str:
    """What a failed Bayeux reply asks of the client: ``auth``, ``gap``, ``reopen`` or ``fatal``.

    A 401 comes as ``error: "401::Authentication invalid"`` on ``/meta/connect``, or nested as
    ``ext.sfdc.failureReason`` of a ``403::Handshake denied`` handshake reply.
    """
    if not response:
        return "reopen"
    error = str(response.get("error") or "")
    ext = response.get("ext")
    sfdc = ext.get("sfdc") if isinstance(ext, Mapping) else None
    reason = str(sfdc.get("failureReason") or "") if isinstance(sfdc, Mapping) else ""
    if error.startswith("401") or reason.startswith("401"):
        return "auth"
    if _GAP_ERROR.match(error):
        return "gap"
    if response.get("channel") in (HANDSHAKE, CONNECT):
        return "reopen"
    return "fatal"


def salesforce_extension(state: ReplayState, token: Token) -> Any:
    """An aiocometd ``Extension`` adding the Bearer token, the replay extension, and taking over
    the reconnect advice of failed connects (see the module docstring).

    :param state: the replay positions (read on every subscribe).
    :param token: the token of this session.
    """
    from aiocometd_noloop import Extension

    class SalesforceExtension(Extension):
        async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
            headers["Authorization"] = f"Bearer {token.access_token}"
            for message in payload:
                channel = message.get("channel")
                if channel == HANDSHAKE:
                    message.setdefault("ext", {})["replay"] = True
                elif channel == SUBSCRIBE:
                    subscription = message.get("subscription")
                    message.setdefault("ext", {})["replay"] = {subscription: state.subscribe_from(subscription)}

        async def incoming(self, payload: list[dict[str, Any]], headers: Any = None) -> None:
            for message in payload:
                advice = message.get("advice")
                if isinstance(advice, dict) and isinstance(advice.get("timeout"), (int, float)):
                    # aiocometd times requests out at 1.2 x the advised hold: too tight for short
                    # holds, and a poll timed out client-side loses the events the server sent in it.
                    message["advice"] = {**advice, "timeout": advice["timeout"] + _REQUEST_MARGIN_MS}
                if message.get("channel") == CONNECT and message.get("successful") is False:
                    # The stream, not aiocometd, decides how to recover (re-auth, new session).
                    message["advice"] = {**(message.get("advice") or {}), "reconnect": "none"}

    return SalesforceExtension()


class CometdStream:
    """Event messages of ``channels``, across as many CometD sessions as it takes.

    :param url_for: the CometD endpoint for a token (``{instance}/cometd/{version}``).
    :param authenticator: the shared token source (``aget_token``/``areauthenticate``).
    :param channels: validated channel names.
    :param state: replay positions (shared with the caller, which may persist them).
    :param on_replay_gap: ``"fail"`` raises :class:`SalesforceReplayGapError`; ``"earliest"``
        resubscribes that channel from -2.
    :param ssl: aiohttp's ``ssl`` argument (False, True or an ``SSLContext``).
    :param proxy: proxy URL for the CometD host, if any.
    :param policy: bounds for opening a session.
    :param connect_timeout: seconds one attempt to open a session (handshake, first connect,
        subscribes) may take before it counts as failed and is retried.
    """

    def __init__(self, *, url_for: Callable[[Token], str], authenticator: SalesforceAuthenticator,
                 channels: Sequence[str], state: ReplayState, on_replay_gap: ReplayGapPolicy, ssl: Any,
                 proxy: str | None, policy: RetryPolicy, connect_timeout: float) -> None:
        validate_gap_policy(on_replay_gap)
        self.url_for = url_for
        self.authenticator = authenticator
        self.channels = list(channels)
        self.state = state
        self.on_replay_gap = on_replay_gap
        self.ssl = ssl
        self.proxy = proxy
        self.policy = policy
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._token: Token | None = None
        self._reauthenticated = False
        #: Sessions opened so far (1 + reconnects), for logs and tests.
        self.sessions = 0

    # -- public --------------------------------------------------------------------------------
    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Yield each new event message once, in order per channel; close the session at the end."""
        flaps = 0
        try:
            while True:
                await self._open()
                opened, delivered = time.monotonic(), 0
                async for message in self._until_lost():
                    if self.state.accept(message["channel"], event_replay_id(message)):
                        delivered += 1
                        yield message
                await self._discard()
                # A session that dies at once, over and over, is a broken endpoint, not a blip.
                flaps = flaps + 1 if not delivered and time.monotonic() - opened < self.connect_timeout else 0
                if flaps > self.policy.max_retries:
                    raise SalesforceStreamingError(
                        f"the Streaming API connection kept failing right after the handshake "
                        f"({flaps} sessions in a row)")
        finally:
            await self._discard()

    # -- sessions ------------------------------------------------------------------------------
    async def _open(self) -> None:
        try:
            await async_retrying(self.policy)(self._open_once)
        except RetryableFault as fault:
            raise SalesforceTransportError(
                f"Could not open a Streaming API session ({fault.reason}) after retries") from None

    async def _open_once(self) -> None:
        import aiohttp
        from aiocometd_noloop import Client, ConnectionType
        from aiocometd_noloop.exceptions import ServerError, TransportError

        token = self._token or await self.authenticator.aget_token()
        while True:
            url = self.url_for(token)
            client = Client(url, ConnectionType.LONG_POLLING, connection_timeout=None,
                            ssl=self.ssl, extensions=[salesforce_extension(self.state, token)],
                            max_pending_count=_MAX_PENDING)
            if self.proxy:  # aiocometd posts through its own session: give it one that knows the proxy
                client._http_session = aiohttp.ClientSession(json_serialize=json.dumps, proxy=self.proxy)
            self._client = client
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await client.open()
                    for channel in self.channels:
                        await client.subscribe(channel)
            except ServerError as exc:
                await self._discard()
                kind = classify_failure(exc.response)
                if kind == "auth":
                    token = await self._reauthenticate(token, url)
                    continue
                if kind == "gap":
                    self._replay_gap(exc.response or {})
                    continue
                error = str((exc.response or {}).get("error") or exc.message)
                if kind == "reopen":
                    raise RetryableFault(f"Bayeux {error}") from None
                channel = (exc.response or {}).get("subscription")
                raise SalesforceStreamingError(
                    f"Streaming API refused {'the subscription to ' + channel if channel else 'the request'}: {error}",
                    channel=channel, error=error) from None
            except (TransportError, aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                # ValueError/KeyError: a non-Bayeux body (e.g. an HTML error page) - transient at best.
                await self._discard()
                raise RetryableFault(f"{type(exc).__name__} on {safe_path(url)}") from exc
            except BaseException:
                await self._discard()
                raise
            self._token = token
            self._reauthenticated = False  # this token works: a later expiry may re-authenticate again
            self.sessions += 1
            log.info("Streaming API session %d open on %s: %s", self.sessions, safe_path(url),
                     ", ".join(f"{ch} from {self.state.subscribe_from(ch)}" for ch in self.channels))
            return

    async def _until_lost(self) -> AsyncIterator[dict[str, Any]]:
        """Messages of the current session until the server or the network ends it.

        A long poll that fails in transit (dropped, timed out) ends the session too, though
        aiocometd would retry it with the same client id: whatever the server had put in the lost
        response counts as delivered there, so only a resubscribe from our last DELIVERED replay id
        is free of gaps. aiocometd reports such a failure only by entering ``CONNECTING``.
        """
        from aiocometd_noloop.constants import TransportState
        from aiocometd_noloop.exceptions import ClientInvalidOperation, ServerError, TransportError

        client = self._client
        while True:
            receive = asyncio.ensure_future(client.receive())
            lost = asyncio.ensure_future(client._transport.wait_for_state(TransportState.CONNECTING))
            try:
                await asyncio.wait({receive, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                if not receive.done():
                    receive.cancel()
                    with suppress(asyncio.CancelledError, Exception):
                        await receive  # a message taken here comes back with the resubscribe
            if receive.cancelled():
                while client.has_pending_messages:  # received before the failure: still in order
                    yield client._incoming_queue.get_nowait()
                log.warning("Streaming API long poll failed in transit; opening a new session")
                return
            try:
                message = receive.result()
            except ServerError as exc:
                kind = classify_failure(exc.response)
                log.info("Streaming API session ended: %s", (exc.response or {}).get("error") or exc.message)
                if kind == "auth":
                    assert self._token is not None
                    self._token = await self._reauthenticate(self._token, self.url_for(self._token))
                return
            except (TransportError, ClientInvalidOperation) as exc:
                log.warning("Streaming API connection lost (%s); opening a new session", type(exc).__name__)
                return
            yield message

    async def _reauthenticate(self, token: Token, url: str) -> Token:
        """One re-authentication per rejected token; a fresh token rejected at once is fatal."""
        if self._reauthenticated:
            raise SalesforceSessionExpiredError(
                401, "INVALID_SESSION_ID",
                "the Streaming API rejected a freshly issued token (401::Authentication invalid)",
                method="POST", path=url)
        self._reauthenticated = True
        log.info("Streaming API session expired (401::Authentication invalid); re-authenticating")
        return await self.authenticator.areauthenticate(token)

    def _replay_gap(self, response: Mapping[str, Any]) -> None:
        error = str(response.get("error") or "")
        match = _GAP_ERROR.match(error)
        replay_id = int(match.group(1)) if match else REPLAY_NEW
        channel = str(response.get("subscription") or next(
            (ch for ch in self.channels if self.state.subscribe_from(ch) == replay_id), self.channels[0]))
        if self.on_replay_gap == "fail" or self.state.subscribe_from(channel) == REPLAY_ALL:
            raise SalesforceReplayGapError(channel, replay_id, error)
        log.warning("Replay id %d on %s is outside the retention window: replaying every retained event (-2) "
                    "instead; events between may have been lost", replay_id, channel)
        self.state.restart_from_earliest(channel)

    async def _discard(self) -> None:
        """Close the current session, whatever state aiocometd left it in."""
        client, self._client = self._client, None
        if client is None:
            return
        transport = client._transport
        task = getattr(transport, "_connect_task", None)
        if task is not None:
            # aiocometd's done-callback calls result() on the task it cancels while closing, and on
            # Python >= 3.8 CancelledError escapes its `except Exception` into asyncio's error log.
            task.remove_done_callback(transport._connect_done)
        with suppress(Exception):
            if not client.closed:
                await client.close()
                return
            # open() failed after the handshake: aiocometd leaves the transport and session running.
            if transport is not None:
                await transport.disconnect()
                await transport.close()
            await client._close_http_session()
