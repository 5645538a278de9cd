"""Flow-controlled delivery of one topic's events to one stream (``Subscribe`` and
``ManagedSubscribe`` alike).

The stream holds a cursor (the last replay id delivered, or where it started) and the number of
events the client still asked for (``num_requested`` summed over its requests, minus what was
sent). It never sends more than asked for, and sends an empty keepalive batch carrying the cursor
after ``keepalive_seconds`` without a response. It wakes when the hub logs events on its topic, when
the client asks for more, and at least once a second to notice an expired session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..streaming.replay import LoggedEvent
from .wire import AUTH_ERROR, REPLAY_ID_CORRUPTED, REPLAY_ID_MISSING, SERVICE_UNAVAILABLE, PubSubFault, replay_int

if TYPE_CHECKING:
    from .service import PubSubService

#: Events per response at most (Salesforce's limit per FetchRequest).
MAX_BATCH = 100
_SESSION_CHECK_SECONDS = 1.0


@dataclass
class Batch:
    """What to send next: events (possibly none, for a keepalive) and out-of-band items.

    :param events: the events, oldest first.
    :param cursor: the stream's position after them (the response's ``latest_replay_id``).
    :param pending: what the client still asked for after them.
    :param extras: other items to send (managed subscriptions' commit responses).
    """

    events: list[LoggedEvent]
    cursor: int
    pending: int
    extras: list[Any] = field(default_factory=list)


def start_cursor(service: PubSubService, topic: str, preset: str, replay_id: bytes) -> int:
    """Where a subscription starts: the replay id its first event follows.

    :param service: the Pub/Sub service.
    :param topic: the topic.
    :param preset: ``LATEST``, ``EARLIEST`` or ``CUSTOM``.
    :param replay_id: the ``CUSTOM`` start (the last id the client has).
    :raises PubSubFault: ``CUSTOM`` without a replay id, or one that is not valid or no longer retained.
    """
    log = service.hub.log(topic)
    if preset == "LATEST":
        return log.last_id
    if preset == "EARLIEST":
        return log.oldest_id - 1
    if not replay_id:
        raise PubSubFault("INVALID_ARGUMENT", REPLAY_ID_MISSING,
                          "The Replay ID validation failed: a CUSTOM replay preset needs a replay ID.")
    try:
        value = replay_int(replay_id)
    except ValueError:
        value = -1
    # the id right before the oldest retained one counts: a client that saw it misses nothing
    if value < log.oldest_id - 1 or value > log.last_id:
        raise PubSubFault("INVALID_ARGUMENT", REPLAY_ID_CORRUPTED,
                          f"The Replay ID validation failed: replay ID {replay_id.hex() or '(empty)'} is not valid "
                          f"or is outside the retention window of {topic}.")
    return value


class Stream:
    """One open stream's delivery state.

    :param service: the Pub/Sub service.
    :param topic: the topic (the event log's channel).
    :param token: the access token the stream authenticated with.
    :param cursor: the start position (see :func:`start_cursor`).
    """

    def __init__(self, service: PubSubService, topic: str, token: str, cursor: int) -> None:
        self.service = service
        self.topic = topic
        self.token = token
        self.cursor = cursor
        self.pending = 0
        self.delivered_up_to = cursor
        self.extras: list[Any] = []
        self.fault: PubSubFault | None = None
        #: monotonic time until which the stream sends nothing at all (the stall knob)
        self.stalled_until = 0.0
        self._wake = asyncio.Event()
        self._unwatch = service.hub.watch(topic, self._wake.set)
        self._reader: asyncio.Future[None] | None = None
        #: run once when the stream closes (a managed subscription becomes free again)
        self.on_close: list[Callable[[], None]] = []
        service.streams.add(self)

    def read_with(self, reader: Coroutine[Any, Any, None]) -> None:
        """Run the task that reads the client's later requests until the stream closes.

        :param reader: a coroutine feeding :meth:`request`, :meth:`send_extra` and :meth:`fail`.
        """
        self._reader = asyncio.ensure_future(reader)

    def request(self, count: int) -> None:
        """The client asked for ``count`` more events.

        :param count: a FetchRequest's ``num_requested`` (validated by the caller).
        """
        self.pending += count
        self._wake.set()

    def send_extra(self, item: Any) -> None:
        """Queue an out-of-band item for the next response (a commit response).

        :param item: anything the servicer knows how to send.
        """
        self.extras.append(item)
        self._wake.set()

    def fail(self, fault: PubSubFault) -> None:
        """End the stream with ``fault`` (a bad request read by the reader task, a knob).

        :param fault: the error to send.
        """
        if self.fault is None:
            self.fault = fault
        self._wake.set()

    def drop(self) -> None:
        """Admin knob: end the stream with ``UNAVAILABLE``."""
        self.fail(PubSubFault("UNAVAILABLE", SERVICE_UNAVAILABLE, "The Pub/Sub API service is unavailable."))

    def stall(self, seconds: float) -> None:
        """Admin knob: send nothing, not even keepalives, for ``seconds`` (a half-dead connection).

        :param seconds: how long.
        """
        self.stalled_until = time.monotonic() + seconds
        self._wake.set()

    def close(self) -> None:
        """The RPC ended: stop reading requests and watching the topic."""
        if self._reader is not None:
            self._reader.cancel()
        self._unwatch()
        self.service.streams.discard(self)
        for callback in self.on_close:
            callback()

    async def batches(self) -> AsyncIterator[Batch]:
        """What to send, as it becomes due (ends only by raising :class:`PubSubFault`)."""
        last_sent = time.monotonic()
        while True:
            if self.fault is not None:
                raise self.fault
            if self.service.state.session(self.token) is None:
                raise PubSubFault("UNAUTHENTICATED", AUTH_ERROR,
                                  "An authentication exception occurred: the session expired or was revoked.")
            stalled = self.stalled_until - time.monotonic()
            if stalled > 0:
                self._wake.clear()
                await _wait(self._wake, min(stalled, _SESSION_CHECK_SECONDS))
                last_sent = time.monotonic()  # the keepalive clock restarts when the stall ends
                continue
            log = self.service.hub.log(self.topic)
            self.cursor = max(min(self.cursor, log.last_id), log.oldest_id - 1)  # a reset or an age-out
            events = log.after(self.cursor, min(self.pending, MAX_BATCH))
            keepalive_due = time.monotonic() - last_sent >= self.service.config.keepalive_seconds
            if events or self.extras or keepalive_due:
                if events:
                    self.cursor = events[-1].replay_id
                    self.delivered_up_to = self.cursor
                    self.pending -= len(events)
                extras, self.extras = self.extras, []
                last_sent = time.monotonic()
                yield Batch(events, self.cursor, self.pending, extras)
                continue
            self._wake.clear()
            await _wait(self._wake, min(_SESSION_CHECK_SECONDS,
                                        self.service.config.keepalive_seconds - (time.monotonic() - last_sent)))


async def _wait(wake: asyncio.Event, seconds: float) -> None:
    """Until ``wake`` is set or ``seconds`` passed."""
    try:
        await asyncio.wait_for(wake.wait(), max(seconds, 0.001))
    except asyncio.TimeoutError:
        pass


class PublishHandle:
    """An open ``PublishStream`` as the drop knob sees it.

    :param service: the Pub/Sub service.
    """

    def __init__(self, service: PubSubService) -> None:
        self.service = service
        self._dropped = asyncio.Event()
        service.streams.add(self)

    def drop(self) -> None:
        """Admin knob: end the stream with ``UNAVAILABLE`` (even while it waits for a request)."""
        self._dropped.set()

    async def next_request(self, requests: AsyncIterator[Any]) -> Any | None:
        """The client's next request (``None``: it closed its side).

        :param requests: the RPC's request iterator.
        :raises PubSubFault: the stream was dropped.
        """
        if not self._dropped.is_set():
            reading = asyncio.ensure_future(requests.__anext__())
            dropped = asyncio.ensure_future(self._dropped.wait())
            await asyncio.wait({reading, dropped}, return_when=asyncio.FIRST_COMPLETED)
            dropped.cancel()
            if not self._dropped.is_set():
                try:
                    return reading.result()
                except StopAsyncIteration:
                    return None
            reading.cancel()
        raise PubSubFault("UNAVAILABLE", SERVICE_UNAVAILABLE, "The Pub/Sub API service is unavailable.")

    def close(self) -> None:
        """The RPC ended."""
        self.service.streams.discard(self)
