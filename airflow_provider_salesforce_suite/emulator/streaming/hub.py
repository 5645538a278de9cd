"""The streaming hub: CometD clients, their subscriptions and pending messages, the replay logs.

Lives on the server's event loop thread. Store listeners fire in whatever thread wrote (REST
handlers on the loop, Bulk workers elsewhere); :meth:`StreamingHub.publish_threadsafe` hands
their events to the loop with ``call_soon_threadsafe`` so the hub itself needs no locks.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from .replay import DataBuilder, LoggedEvent, ReplayLog

#: Salesforce's retention windows: PushTopic and generic events 24 hours, CDC and platform events 72.
HOUR = 3600.0
RETENTION_BY_KIND = {"topic": 24 * HOUR, "u": 24 * HOUR, "data": 72 * HOUR, "event": 72 * HOUR}

_CLIENT_ID_CHARS = string.ascii_lowercase + string.digits


@dataclass
class StreamingConfig:
    """Streaming knobs (``POST /__emulator__/streaming/config`` changes them at runtime).

    :param connect_timeout: seconds a ``/meta/connect`` is held without events (Salesforce: 110).
    :param max_interval: seconds a client may go without a connect before the server forgets it.
    :param max_events_per_channel: bound of each replay log (the oldest events age out first).
    :param retention_seconds: retention window per channel kind (``topic``, ``data``, ``event``, ``u``).
    :param cdc_entities: objects selected for Change Data Capture (validated and set by the channel
        router's ``select_cdc``, which knows the org's objects).
    """

    connect_timeout: float = 110.0
    max_interval: float = 300.0
    max_events_per_channel: int = 10_000
    retention_seconds: dict[str, float] = field(default_factory=lambda: dict(RETENTION_BY_KIND))
    cdc_entities: list[str] = field(default_factory=list)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply admin-API changes.

        :param changes: a subset of the fields.
        :raises ValueError: unknown keys or bad values.
        """
        unknown = set(changes) - {"connect_timeout", "max_interval", "max_events_per_channel", "retention_seconds"}
        if unknown:
            raise ValueError(f"unknown streaming config keys: {sorted(unknown)}")
        for key in ("connect_timeout", "max_interval"):
            if key in changes:
                value = float(changes[key])
                if value < 0:
                    raise ValueError(f"{key} must be >= 0")
                setattr(self, key, value)
        if "max_events_per_channel" in changes:
            self.max_events_per_channel = max(1, int(changes["max_events_per_channel"]))
        for kind, seconds in dict(changes.get("retention_seconds") or {}).items():
            if kind not in RETENTION_BY_KIND:
                raise ValueError(f"unknown channel kind {kind!r}")
            self.retention_seconds[kind] = float(seconds)

    def to_json(self) -> dict[str, Any]:
        """The config as the admin API shows it."""
        return asdict(self)


@dataclass
class Client:
    """One handshaken CometD client.

    :param id: its ``clientId``.
    :param user_id: the user whose session handshook.
    """

    id: str
    user_id: str
    subscriptions: set[str] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    #: the transport of the currently held connect, so an admin knob can drop it
    held: web.Request | None = None
    #: bumped by every connect; a held connect answers early when a newer one arrives
    generation: int = 0
    gone: bool = False


def new_client_id() -> str:
    """A clientId shaped like Salesforce's (``1q1ib66fvm7kli1gfoauu95i78g``)."""
    return "".join(secrets.choice(_CLIENT_ID_CHARS) for _ in range(27))


def channel_kind(channel: str) -> str | None:
    """``topic``, ``data``, ``event`` or ``u`` for a subscribable channel name.

    :param channel: e.g. ``/topic/Accounts``.
    """
    parts = channel.split("/")
    return parts[1] if len(parts) >= 3 and parts[1] in RETENTION_BY_KIND and parts[2] else None


class StreamingHub:
    """Clients, subscriptions and replay logs of one emulator.

    :param config: the streaming knobs.
    """

    def __init__(self, config: StreamingConfig | None = None) -> None:
        self.config = config or StreamingConfig()
        self.clients: dict[str, Client] = {}
        self.subscribers: dict[str, set[str]] = {}
        self.logs: dict[str, ReplayLog] = {}
        #: channel -> callbacks run (on the loop thread) after events were logged on it (Pub/Sub streams)
        self.watchers: dict[str, set[Callable[[], None]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.counters: dict[str, int] = {}
        self.reset_counters()

    # -- loop binding -----------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop that owns the hub (called on application startup).

        :param loop: the server's event loop.
        """
        self.loop = loop
        self._loop_thread = threading.get_ident()

    def publish_threadsafe(self, items: list[tuple[str, DataBuilder, frozenset[str]]]) -> None:
        """Publish from any thread: directly on the loop thread, else through ``call_soon_threadsafe``.

        :param items: ``(channel, data builder, user ids)`` in order.
        """
        if not items:
            return
        if self.loop is None or threading.get_ident() == self._loop_thread:
            self.publish_many(items)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish_many, items)

    # -- channels and events ------------------------------------------------------------------

    def log(self, channel: str) -> ReplayLog:
        """The replay log of ``channel`` (created on first use).

        :param channel: the channel name.
        """
        log = self.logs.get(channel)
        if log is None:
            kind = channel_kind(channel) or "topic"
            log = self.logs[channel] = ReplayLog(self.config.retention_seconds[kind], self.config.max_events_per_channel)
        return log

    def publish_many(self, items: Iterable[tuple[str, DataBuilder, frozenset[str]]]) -> None:
        """Log events and fan each out to its channel's subscribers (O(subscribers)).

        :param items: ``(channel, data builder, user ids)``.
        """
        touched: set[str] = set()
        for channel, build, user_ids in items:
            event = self.log(channel).append(build, user_ids)
            self.counters["events_published"] += 1
            touched.add(channel)
            for client_id in self.subscribers.get(channel, ()):
                client = self.clients.get(client_id)
                if client is not None:
                    self._enqueue(client, channel, [event])
        for channel in touched:
            for wake in list(self.watchers.get(channel, ())):
                wake()

    def watch(self, channel: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` whenever events are logged on ``channel`` (the Pub/Sub API's streams).

        :param channel: the channel (a Pub/Sub topic name).
        :param wake: a cheap callback, run on the loop thread.
        :returns: a function that stops watching.
        """
        self.watchers.setdefault(channel, set()).add(wake)
        return lambda: self.watchers.get(channel, set()).discard(wake)

    def publish(self, channel: str, build: DataBuilder, user_ids: frozenset[str] = frozenset()) -> LoggedEvent:
        """Publish one event (loop thread only) and return it.

        :param channel: the channel.
        :param build: makes the event's data from its replay id and creation time.
        :param user_ids: restrict delivery to these users.
        """
        self.publish_many([(channel, build, user_ids)])
        return self.log(channel)._events[-1]

    def _enqueue(self, client: Client, channel: str, events: list[LoggedEvent]) -> None:
        messages = [{"channel": channel, "data": e.data} for e in events
                    if not e.user_ids or client.user_id in e.user_ids]
        if messages:
            client.pending.extend(messages)
            client.wake.set()

    # -- clients --------------------------------------------------------------------------------

    def add_client(self, user_id: str) -> Client:
        """Register a new client (a successful handshake).

        :param user_id: the session's user.
        """
        self._sweep()
        client = Client(new_client_id(), user_id)
        self.clients[client.id] = client
        self.counters["handshakes"] += 1
        return client

    def client(self, client_id: Any) -> Client | None:
        """The live client with this id (``None``: unknown or forgotten).

        :param client_id: the message's ``clientId``.
        """
        client = self.clients.get(client_id) if isinstance(client_id, str) else None
        if client is not None:
            client.last_seen = time.monotonic()
        return client

    def subscribe(self, client: Client, channel: str, replay_id: int) -> None:
        """Subscribe ``client`` to ``channel`` and queue the replayed events.

        :param client: the client.
        :param channel: the channel.
        :param replay_id: -1, -2 or N.
        :raises InvalidReplayId: N is outside the retention window.
        """
        replayed = self.log(channel).replay(replay_id)
        client.subscriptions.add(channel)
        self.subscribers.setdefault(channel, set()).add(client.id)
        self.counters["subscribes"] += 1
        self._enqueue(client, channel, replayed)

    def unsubscribe(self, client: Client, channel: str) -> None:
        """Remove one subscription.

        :param client: the client.
        :param channel: the channel.
        """
        client.subscriptions.discard(channel)
        self.subscribers.get(channel, set()).discard(client.id)

    def remove_client(self, client: Client) -> None:
        """Forget a client (disconnect, idle timeout, admin knob); a held connect answers at once.

        :param client: the client.
        """
        self.clients.pop(client.id, None)
        for channel in client.subscriptions:
            self.subscribers.get(channel, set()).discard(client.id)
        client.gone = True
        client.wake.set()

    def forget_all(self) -> int:
        """Admin knob: forget every client (their next message gets ``403::Unknown client``).

        :returns: how many clients were forgotten.
        """
        clients = list(self.clients.values())
        for client in clients:
            self.remove_client(client)
        self.counters["clients_forgotten"] += len(clients)
        return len(clients)

    def drop_held_connects(self) -> int:
        """Admin knob: abort the connection of every held ``/meta/connect`` (no response at all).

        :returns: how many connections were dropped.
        """
        dropped = 0
        for client in self.clients.values():
            request = client.held
            if request is not None and request.transport is not None:
                request.transport.abort()
                dropped += 1
        return dropped

    def wake_all(self) -> None:
        """Wake every held connect (e.g. sessions were expired: they re-check their session)."""
        for client in self.clients.values():
            client.wake.set()

    def _sweep(self) -> None:
        horizon = time.monotonic() - self.config.max_interval
        for client in [c for c in self.clients.values() if c.held is None and c.last_seen < horizon]:
            self.remove_client(client)

    # -- admin ----------------------------------------------------------------------------------

    def age_out(self, channel: str | None, count: int | None, seconds: float | None) -> int:
        """Admin knob: drop the N oldest events, or shift events back in time, on one or every channel.

        :param channel: the channel (``None``: every channel).
        :param count: how many of the oldest events to drop.
        :param seconds: how far back to shift creation times.
        :returns: how many events left the window.
        """
        logs = [self.log(channel)] if channel else list(self.logs.values())
        return sum(log.age_out(count, seconds) for log in logs)

    def reset(self) -> None:
        """Forget clients, replay logs and counters (a data reset: the records they describe are gone)."""
        self.forget_all()
        self.logs.clear()
        self.subscribers.clear()
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero the counters (``DELETE /__emulator__/stats`` and data resets)."""
        self.counters = dict.fromkeys(("handshakes", "connects", "subscribes", "events_published", "events_delivered",
                                       "unknown_client_errors", "authentication_errors", "clients_forgotten"), 0)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/__emulator__/stats``."""
        return {
            **self.counters,
            "clients": len(self.clients),
            "held_connects": sum(1 for c in self.clients.values() if c.held is not None),
            "subscriptions": sum(len(c.subscriptions) for c in self.clients.values()),
            "channels": len(self.logs),
        }


HUB_KEY: web.AppKey[StreamingHub] = web.AppKey("emulator_streaming_hub")


def hub_of(app: web.Application) -> StreamingHub | None:
    """The application's streaming hub (``None`` if the Streaming API is not registered).

    :param app: the emulator application.
    """
    return app.get(HUB_KEY)
