"""What the gRPC servicer and the ``/__emulator__/pubsub`` knobs share: config, topics, open
streams, managed subscriptions. Lives on the emulator's event loop thread (as the hub does)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .managed import ManagedSubscriptions
from .topics import TopicCatalog

if TYPE_CHECKING:
    from ..state import EmulatorState
    from ..streaming.channels import ChannelRouter
    from ..streaming.hub import StreamingHub
    from .delivery import PublishHandle, Stream

#: Salesforce sends a keepalive FetchResponse after 270 s without events.
KEEPALIVE_SECONDS = 270.0


@dataclass
class PubSubConfig:
    """Pub/Sub knobs (``POST /__emulator__/pubsub/config``).

    :param keepalive_seconds: seconds without events before an empty keepalive ``FetchResponse``.
    :param delay_ms: latency added before every RPC's answer and every streamed response.
    """

    keepalive_seconds: float = KEEPALIVE_SECONDS
    delay_ms: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply admin-API changes.

        :param changes: a subset of the fields.
        :raises ValueError: unknown keys or bad values.
        """
        unknown = set(changes) - {"keepalive_seconds", "delay_ms"}
        if unknown:
            raise ValueError(f"unknown pubsub config keys: {sorted(unknown)}")
        if "keepalive_seconds" in changes:
            value = float(changes["keepalive_seconds"])
            if value <= 0:
                raise ValueError("keepalive_seconds must be > 0")
            self.keepalive_seconds = value
        if "delay_ms" in changes:
            value = int(changes["delay_ms"])
            if value < 0:
                raise ValueError("delay_ms must be >= 0")
            self.delay_ms = value

    def to_json(self) -> dict[str, Any]:
        """The config as the admin API shows it."""
        return asdict(self)


class PubSubService:
    """The Pub/Sub API's state over the one emulator state and the Streaming API's event log.

    :param state: the emulator state (store, sessions).
    :param hub: the streaming hub (the event log).
    :param router: the channel router (which topics exist).
    """

    def __init__(self, state: EmulatorState, hub: StreamingHub, router: ChannelRouter) -> None:
        self.state = state
        self.hub = hub
        self.router = router
        self.config = PubSubConfig()
        self.catalog = TopicCatalog(router)
        self.managed = ManagedSubscriptions()
        self.streams: set[Stream | PublishHandle] = set()
        #: ``host:port`` of the gRPC server once it listens
        self.endpoint: str | None = None
        self.counters = {"rpcs": 0, "events_delivered": 0, "events_published": 0, "streams_dropped": 0}

    def drop_streams(self) -> int:
        """Admin knob: end every open stream with ``UNAVAILABLE``.

        :returns: how many streams were dropped.
        """
        streams = list(self.streams)
        for stream in streams:
            stream.drop()
        self.counters["streams_dropped"] += len(streams)
        return len(streams)

    def reset(self) -> None:
        """A data reset: open streams end (the log they read is gone), managed subscriptions go."""
        self.drop_streams()
        self.managed.clear()
        self.config = PubSubConfig()
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero the counters (``DELETE /__emulator__/stats`` and data resets)."""
        self.counters = dict.fromkeys(self.counters, 0)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/__emulator__/stats``."""
        return {**self.counters, "open_streams": len(self.streams)}


PUBSUB_KEY: web.AppKey[PubSubService] = web.AppKey("emulator_pubsub")
