"""The Bayeux protocol as Salesforce speaks it: handshake, connect, subscribe, unsubscribe, disconnect.

One ``POST /cometd/XX.X`` carries a JSON array of messages; each gets a reply in order, and a
``/meta/connect`` is held until events arrive or the connect timeout passes. Errors are Bayeux
replies (``"error": "403::Unknown client"``), not HTTP errors, as Salesforce sends them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..auth import token_of
from ..web import json_response, state_of
from .hub import Client, StreamingHub, channel_kind
from .replay import InvalidReplayId

LONG_POLLING = "long-polling"
Message = dict[str, Any]
#: Whether a channel exists (a PushTopic, a CDC entity, a platform event, a StreamingChannel).
ChannelCheck = Callable[[str], bool]


def _reply(message: Message, successful: bool = True, **fields: Any) -> Message:
    reply: Message = {"channel": message.get("channel")}
    if "id" in message:
        reply["id"] = message["id"]
    if message.get("clientId") is not None:
        reply["clientId"] = message["clientId"]
    reply.update(fields)
    reply["successful"] = successful
    return reply


def _error(message: Message, error: str, **fields: Any) -> Message:
    return _reply(message, False, error=error, **fields)


class BayeuxEndpoint:
    """Answers the message batches posted to ``/cometd/XX.X``.

    :param hub: the streaming hub.
    :param channel_exists: decides whether a subscription's channel exists.
    """

    def __init__(self, hub: StreamingHub, channel_exists: ChannelCheck) -> None:
        self.hub = hub
        self.channel_exists = channel_exists

    def _advice(self) -> dict[str, Any]:
        return {"reconnect": "retry", "interval": 0, "timeout": int(self.hub.config.connect_timeout * 1000)}

    async def handle(self, request: web.Request, messages: list[Message]) -> web.StreamResponse:
        """Answer one batch.

        :param request: the HTTP request (its ``Authorization`` header is checked per message).
        :param messages: the Bayeux messages.
        """
        token = token_of(request)
        session = state_of(request).session(token) if token else None
        replies: list[Message] = []
        status = 200
        for message in messages:
            if not isinstance(message, dict):
                replies.append({"successful": False, "error": "400::Invalid message"})
                continue
            channel = message.get("channel")
            if channel == "/meta/handshake":
                reply = self._handshake(message, session)
                if not reply["successful"] and session is None:
                    status = 401
                replies.append(reply)
            elif channel == "/meta/connect":
                replies.extend(await self._connect(request, message, session is not None))
            elif channel in ("/meta/subscribe", "/meta/unsubscribe"):
                replies.append(self._subscription(message, session is not None))
            elif channel == "/meta/disconnect":
                replies.append(self._disconnect(message))
            else:
                replies.append(_error(message, "403::Publish denied" if channel else "400::Channel name not specified"))
        return json_response(replies, status=status)

    # -- meta channels ----------------------------------------------------------------------

    def _handshake(self, message: Message, session: Any) -> Message:
        if session is None:
            self.hub.counters["authentication_errors"] += 1
            return _error(message, "403::Handshake denied", ext={"sfdc": {"failureReason": "401::Authentication invalid"}},
                          advice={"reconnect": "none"})
        types = message.get("supportedConnectionTypes") or []
        if LONG_POLLING not in types:
            return _error(message, f"400::Invalid connection type {','.join(map(str, types)) or 'none'}",
                          supportedConnectionTypes=[LONG_POLLING], advice={"reconnect": "none"})
        client = self.hub.add_client(session.user_id)
        return _reply(message, clientId=client.id, version="1.0", minimumVersion="1.0",
                      supportedConnectionTypes=[LONG_POLLING], ext={"replay": True, "payload.format": True},
                      advice=self._advice())

    def _known(self, message: Message, authenticated: bool) -> tuple[Client | None, Message | None]:
        """The message's client, or the error reply (expired session first, then unknown client)."""
        if not authenticated:
            self.hub.counters["authentication_errors"] += 1
            return None, _error(message, "401::Authentication invalid", advice={"reconnect": "none", "interval": 0})
        client = self.hub.client(message.get("clientId"))
        if client is None:
            self.hub.counters["unknown_client_errors"] += 1
            return None, _error(message, "403::Unknown client", advice={"reconnect": "handshake", "interval": 0})
        return client, None

    async def _connect(self, request: web.Request, message: Message, authenticated: bool) -> list[Message]:
        client, error = self._known(message, authenticated)
        if client is None:
            return [error]  # type: ignore[list-item]
        if message.get("connectionType", LONG_POLLING) != LONG_POLLING:
            return [_error(message, f"400::Invalid connection type {message.get('connectionType')}")]
        self.hub.counters["connects"] += 1
        client.generation += 1
        generation = client.generation
        # The first connect answers at once (CometD does), later ones wait for events.
        if client.connected and not client.pending:
            await self._hold(request, client, generation)
        client.connected = True
        client.last_seen = time.monotonic()
        if request.transport is None or request.transport.is_closing():
            return []  # the connection was dropped while held: its events stay pending for the next connect
        if client.gone:
            self.hub.counters["unknown_client_errors"] += 1
            return [_error(message, "403::Unknown client", advice={"reconnect": "handshake", "interval": 0})]
        token = token_of(request)
        if not (token and state_of(request).session(token)):
            self.hub.counters["authentication_errors"] += 1
            return [_error(message, "401::Authentication invalid", advice={"reconnect": "none", "interval": 0})]
        events, client.pending = client.pending, []
        self.hub.counters["events_delivered"] += len(events)
        return [*events, _reply(message, advice=self._advice())]

    async def _hold(self, request: web.Request, client: Client, generation: int) -> None:
        if client.held is not None:
            client.wake.set()  # an older held connect answers now: one held connect per client
            await asyncio.sleep(0)
        client.wake.clear()
        client.held = request
        try:
            await asyncio.wait_for(client.wake.wait(), timeout=self.hub.config.connect_timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if client.generation == generation:
                client.held = None

    def _subscription(self, message: Message, authenticated: bool) -> Message:
        client, error = self._known(message, authenticated)
        if client is None:
            return error  # type: ignore[return-value]
        channel = message.get("subscription")
        fields = {"subscription": channel}
        if not channel or not isinstance(channel, str):
            return _error(message, "400::Channel name not specified")
        if not channel.startswith("/"):
            return _error(message, "400::Channel subscriptions must start with a leading '/'", **fields)
        if message["channel"] == "/meta/unsubscribe":
            self.hub.unsubscribe(client, channel)
            return _reply(message, **fields)
        if channel_kind(channel) is None or not self.channel_exists(channel):
            return _error(message, f"400::The channel you requested to subscribe to does not exist {{{channel}}}",
                          **fields)
        replay_id = _replay_id(message, channel)
        if replay_id is None:
            return _error(message, "400::The replayId you provided was invalid.  Please provide a valid ID, "
                                   "-2 to replay all events, or -1 to replay only new events.", **fields)
        try:
            self.hub.subscribe(client, channel, replay_id)
        except InvalidReplayId as exc:
            return _error(message, f"400::The replayId {{{exc.replay_id}}} you provided was invalid.  Please provide "
                                   "a valid ID, -2 to replay all events, or -1 to replay only new events.", **fields)
        return _reply(message, **fields)

    def _disconnect(self, message: Message) -> Message:
        client = self.hub.client(message.get("clientId"))
        if client is None:
            return _error(message, "403::Unknown client", advice={"reconnect": "handshake", "interval": 0})
        self.hub.remove_client(client)
        return _reply(message, advice={"reconnect": "none"})


def _replay_id(message: Message, channel: str) -> int | None:
    """The replay id the subscribe asks for (-1 without the replay extension); ``None``: not an integer."""
    replay = (message.get("ext") or {}).get("replay")
    if not isinstance(replay, dict) or channel not in replay:
        return -1
    value = replay[channel]
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= -2 else None
