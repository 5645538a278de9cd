"""What the gRPC servicer and the ``/__emulator__/pubsub`` knobs share: config, topics, open
streams, managed subscriptions. Lives on the emulator's event loop thread (as the hub does)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .delivery import Stream
from .managed import ManagedSubscriptions
from .topics import TopicCatalog
from .wire import SERVICE_UNAVAILABLE, PubSubFault

if TYPE_CHECKING:
    from ..state import EmulatorState
    from ..streaming.channels import ChannelRouter
    from ..streaming.hub import StreamingHub
    from .delivery import PublishHandle

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


RPCS = ("GetTopic", "GetSchema", "Subscribe", "Publish", "PublishStream", "ManagedSubscribe")
_STATUSES = ("CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
             "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
             "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


@dataclass
class RpcFault:
    """An injected RPC failure (``POST /__emulator__/pubsub/faults``).

    :param rpc: the RPC it hits (``*``: any).
    :param status: the gRPC status code's name.
    :param error_code: the ``error-code`` trailer.
    :param message: the status message.
    :param count: hit this many calls, then it is spent (``None``: every call).
    :param after: for ``Publish`` / ``PublishStream``: publish first, then fail (the events ARE
        published, the client only sees the error: a lost reply).
    """

    rpc: str = "*"
    status: str = "UNAVAILABLE"
    error_code: str = SERVICE_UNAVAILABLE
    message: str = "The Pub/Sub API service is unavailable."
    count: int | None = 1
    after: bool = False
    hits: int = 0

    def __post_init__(self) -> None:
        if self.rpc != "*" and self.rpc not in RPCS:
            raise ValueError(f"rpc must be one of {', '.join(RPCS)} or *")
        if self.status not in _STATUSES or self.status == "OK":
            raise ValueError(f"status must be a gRPC status code name, got {self.status!r}")
        if self.count is not None and int(self.count) < 1:
            raise ValueError("count must be >= 1")

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API shows it."""
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
        self.faults: list[RpcFault] = []
        #: ``host:port`` of the gRPC server once it listens
        self.endpoint: str | None = None
        self.counters = {"rpcs": 0, "events_delivered": 0, "events_published": 0, "streams_dropped": 0}

    def add_fault(self, spec: dict[str, Any]) -> RpcFault:
        """Add an injected failure from its admin-API JSON.

        :param spec: :class:`RpcFault` fields.
        :raises ValueError: unknown keys or bad values.
        """
        unknown = set(spec) - {"rpc", "status", "error_code", "message", "count", "after"}
        if unknown:
            raise ValueError(f"unknown pubsub fault keys: {sorted(unknown)}")
        fault = RpcFault(**spec)
        self.faults.append(fault)
        return fault

    def fault_for(self, rpc: str, *, after: bool = False) -> PubSubFault | None:
        """The injected failure that hits this call, if any (a hit spends one of its ``count``).

        :param rpc: the RPC's name.
        :param after: whether the call was carried out already (publishes).
        """
        for rule in self.faults:
            if rule.after == after and rule.rpc in ("*", rpc):
                rule.hits += 1
                if rule.count is not None and rule.hits >= rule.count:
                    self.faults.remove(rule)
                return PubSubFault(rule.status, rule.error_code, rule.message)
        return None

    def drop_streams(self) -> int:
        """Admin knob: end every open stream with ``UNAVAILABLE``.

        :returns: how many streams were dropped.
        """
        streams = list(self.streams)
        for stream in streams:
            stream.drop()
        self.counters["streams_dropped"] += len(streams)
        return len(streams)

    def stall_streams(self, seconds: float) -> int:
        """Admin knob: open Subscribe/ManagedSubscribe streams send nothing for ``seconds``.

        :param seconds: how long (> 0).
        :returns: how many streams stall.
        :raises ValueError: a bad duration.
        """
        if not seconds > 0:
            raise ValueError("seconds must be > 0")
        stalled = [s for s in self.streams if isinstance(s, Stream)]
        for stream in stalled:
            stream.stall(seconds)
        return len(stalled)

    def reset(self) -> None:
        """A data reset: open streams end (the log they read is gone), managed subscriptions go."""
        self.drop_streams()
        self.managed.clear()
        self.faults.clear()
        self.config = PubSubConfig()
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero the counters (``DELETE /__emulator__/stats`` and data resets)."""
        self.counters = dict.fromkeys(self.counters, 0)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/__emulator__/stats``."""
        return {**self.counters, "open_streams": len(self.streams)}


PUBSUB_KEY: web.AppKey[PubSubService] = web.AppKey("emulator_pubsub")
