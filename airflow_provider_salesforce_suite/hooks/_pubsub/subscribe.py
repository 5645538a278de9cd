"""Subscriptions: ``Subscribe`` and ``ManagedSubscribe`` streams kept alive across calls.

One :class:`EventStream` yields the events of a topic (or a managed subscription) for as long as
the caller iterates, over as many gRPC calls as it takes:

* Flow control: the first request asks for ``batch_size`` events; each response that brings events
  asks for as many again, so the server always has ``batch_size`` requested, at most twice that is
  ever held here, and a slow caller slows the stream down rather than filling memory.
* ``UNAUTHENTICATED`` re-authenticates once (again after the next answered request) and reconnects.
* ``UNAVAILABLE``, a stream the server ends, or no message within ``keepalive_timeout`` (Salesforce
  sends a keepalive every 270 s) reconnect with bounded backoff, resuming after the last DELIVERED
  replay id (``CUSTOM``); an event seen again is dropped by replay id, so none is lost or repeated.
* A managed subscription keeps its position on Salesforce's side: :meth:`EventStream.commit` sends a
  ``CommitReplayRequest`` and waits for its answer (commits not answered when a stream breaks are
  sent again on the next one: committing a replay id twice is harmless).

Each call is a :class:`~.streams.Duplex` (a writer and a reader task), so commit answers arrive
while the caller is busy with an event; its queue holds at most what was requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubCommitError
from airflow_provider_salesforce_suite.hooks._pubsub.channel import is_transient, rpc_error, status_name
from airflow_provider_salesforce_suite.hooks._pubsub.events import (
    PubSubEvent,
    PubSubKeepalive,
    replay_id_after,
)
from airflow_provider_salesforce_suite.hooks._pubsub.streams import STREAM_END, Duplex, Reconnects, StreamBroken

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._pubsub.avro import AvroSchema
    from airflow_provider_salesforce_suite.hooks._pubsub.channel import PubSubChannel

log = logging.getLogger(__name__)

#: Salesforce sends a keepalive after 270 s without events; a little more without any message means
#: the stream is dead even if the connection looks open.
DEFAULT_KEEPALIVE_TIMEOUT = 330.0


class EventStream:
    """Events of one topic or managed subscription across as many calls as it takes (module doc).

    :param channel: the hook's channel.
    :param schema: ``schema_id -> AvroSchema`` (cached ``GetSchema``).
    :param topic: the topic (``Subscribe``), or the topic to label a managed subscription's events with.
    :param replay_preset: ``LATEST``, ``EARLIEST`` or ``CUSTOM`` (``Subscribe`` only).
    :param replay_id: the replay id to start after, with ``CUSTOM``.
    :param batch_size: events requested at a time (``num_requested``).
    :param keepalives: also yield :class:`PubSubKeepalive` for the server's empty responses.
    :param keepalive_timeout: seconds without any message before the stream counts as dead.
    :param subscription: the managed subscription's id (``18x...``) or developer name: use
        ``ManagedSubscribe`` instead of ``Subscribe``.
    """

    def __init__(self, channel: PubSubChannel, schema: Callable[[str], Awaitable[AvroSchema]], *, topic: str,
                 replay_preset: str = "LATEST", replay_id: bytes | None = None, batch_size: int = 100,
                 keepalives: bool = False, keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
                 subscription: str | None = None) -> None:
        self.channel = channel
        self.schema = schema
        self.topic = topic
        self.replay_preset = replay_preset
        self.replay_id = replay_id
        self.batch_size = batch_size
        self.keepalives = keepalives
        self.keepalive_timeout = keepalive_timeout
        self.subscription = subscription
        #: The replay id of the last event handed to the caller (resume after it).
        self.last_delivered: bytes | None = None
        #: A LATEST subscription that has delivered nothing resumes from the newest id a keepalive named.
        self._tip: bytes | None = None
        #: Calls made so far (1 + reconnects), for logs and tests.
        self.calls = 0
        self._call_now: Duplex | None = None
        self._commits: dict[str, tuple[bytes, asyncio.Future[bytes]]] = {}
        self._pb2: Any = None

    @property
    def what(self) -> str:
        return f"ManagedSubscribe to {self.subscription}" if self.subscription else f"Subscribe to {self.topic}"

    # -- requests ----------------------------------------------------------------------------------
    def _first_request(self) -> Any:
        pb2 = self._pb2
        if self.subscription:
            is_id = self.subscription[:3] == "18x" and len(self.subscription) in (15, 18)
            return pb2.ManagedFetchRequest(subscription_id=self.subscription if is_id else "",
                                           developer_name="" if is_id else self.subscription,
                                           num_requested=self.batch_size)
        if self.last_delivered is not None or self._tip is not None:
            return pb2.FetchRequest(topic_name=self.topic, replay_preset=pb2.ReplayPreset.Value("CUSTOM"),
                                    replay_id=self.last_delivered or self._tip, num_requested=self.batch_size)
        return pb2.FetchRequest(topic_name=self.topic, replay_preset=pb2.ReplayPreset.Value(self.replay_preset),
                                replay_id=self.replay_id or b"", num_requested=self.batch_size)

    def _more(self, count: int) -> Any:
        if self.subscription:
            return self._pb2.ManagedFetchRequest(num_requested=count)
        return self._pb2.FetchRequest(topic_name=self.topic, num_requested=count)

    def _send(self, request: Any) -> None:
        if self._call_now is not None:  # between calls, the next call sends what is unanswered
            self._call_now.send(request)

    # -- managed commits ---------------------------------------------------------------------------
    def _commit_request(self, request_id: str, replay_id: bytes) -> Any:
        pb2 = self._pb2
        return pb2.ManagedFetchRequest(
            commit_replay_id_request=pb2.CommitReplayRequest(commit_request_id=request_id, replay_id=replay_id))

    async def commit(self, replay_id: bytes, *, timeout: float | None = None) -> None:
        """Commit ``replay_id`` to the managed subscription and wait for Salesforce's answer.

        :param replay_id: the replay id of the last event the caller has safely processed.
        :param timeout: seconds to wait for the answer (default: the connection's ``timeout``).
        :raises SalesforcePubSubCommitError: Salesforce refused the commit, or did not answer in time.
        """
        if not self.subscription:
            raise SalesforcePubSubCommitError("commit() is for managed subscriptions (managed_subscribe)")
        if not isinstance(replay_id, (bytes, bytearray)) or not replay_id:
            raise SalesforcePubSubCommitError(f"commit() takes an event's replay id (bytes), got {replay_id!r}")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._commits[request_id] = (bytes(replay_id), future)
        self._send(self._commit_request(request_id, bytes(replay_id)))
        wait = timeout if timeout is not None else self.channel.config.timeout
        try:
            await asyncio.wait_for(asyncio.shield(future), wait)
        except asyncio.TimeoutError:
            raise SalesforcePubSubCommitError(
                f"{self.what}: no answer to the commit of a replay id within {wait:.0f}s") from None
        finally:
            self._commits.pop(request_id, None)

    def _commit_answered(self, response: Any) -> None:
        answer = response.commit_response
        error = answer.error if answer.HasField("error") else None
        if error is not None and (error.code or error.msg):
            entry = self._commits.get(answer.commit_request_id)
            if entry is not None and not entry[1].done():
                code = self._pb2.ErrorCode.Name(error.code) if error.code else "UNKNOWN"
                entry[1].set_exception(SalesforcePubSubCommitError(
                    f"Salesforce refused to commit a replay id to managed subscription {self.subscription}: "
                    f"{error.msg or 'no message'} ({code})", error_code=code))
            return
        committed = bytes(answer.replay_id)
        # Commits may be coalesced: an answer for a later replay id settles the earlier ones too.
        for request_id, (replay_id, future) in list(self._commits.items()):
            covered = request_id == answer.commit_request_id or (
                committed and len(replay_id) == len(committed) and replay_id <= committed)
            if covered and not future.done():
                future.set_result(committed)

    # -- the stream --------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[PubSubEvent | PubSubKeepalive]:
        """Yield events (and keepalives if asked) until the caller stops iterating."""
        from airflow_provider_salesforce_suite.core.pubsub import stubs

        self._pb2 = stubs().pb2
        reconnects = Reconnects(self.channel, self.what, await self.channel.authenticator.aget_token())
        while True:
            try:
                async with contextlib.aclosing(self._call(reconnects.token)) as items:
                    async for item in items:
                        reconnects.worked()
                        if item is not None:
                            yield item
                raise StreamBroken("the server ended the stream")
            except StreamBroken as broken:
                await reconnects.after(broken, "reconnecting, resuming " + (
                    "after the last delivered event" if self.last_delivered else "from the start position"))

    async def _call(self, token: Any) -> AsyncIterator[PubSubEvent | PubSubKeepalive | None]:
        """One gRPC call: yields what it delivers (None for a message with nothing for the caller);
        raises :class:`StreamBroken` when the call ends in a way a new call can fix."""
        import grpc

        stub = await self.channel.stub()
        metadata = await self.channel.metadata(token)
        on_response = self._commit_answered if self.subscription else None
        call = Duplex(stub, "ManagedSubscribe" if self.subscription else "Subscribe", metadata, on_response)
        self.calls += 1
        schema_id, schema = None, None  # the last schema used (a topic rarely changes it)
        try:
            call.send(self._first_request())
            self._call_now = call
            for request_id, (replay_id, future) in self._commits.items():
                if not future.done():  # unanswered on a broken stream: send again
                    call.send(self._commit_request(request_id, replay_id))
            while True:
                try:
                    response = await call.next(self.keepalive_timeout)
                except asyncio.TimeoutError:
                    raise StreamBroken(f"no message (not even a keepalive) for {self.keepalive_timeout:g}s") from None
                if response is STREAM_END:
                    raise StreamBroken("the server ended the stream")
                if isinstance(response, grpc.aio.AioRpcError):
                    code = status_name(response)
                    if code == "UNAUTHENTICATED":
                        raise StreamBroken("UNAUTHENTICATED", reauthenticate=response)
                    if is_transient(response):
                        raise StreamBroken(f"{code}: {response.details()}")
                    raise rpc_error(response, self.what)
                if isinstance(response, BaseException):
                    raise response
                events = list(response.events)
                if not events and self.subscription and response.HasField("commit_response"):
                    continue  # a commit's answer (settled by the reader), not a keepalive
                if not events:
                    latest = bytes(response.latest_replay_id)
                    if latest and self.last_delivered is None and self.replay_preset == "LATEST" and \
                            not self.subscription:
                        self._tip = latest  # the server has nothing for us: everything up to here is past
                    yield PubSubKeepalive(latest, int(response.pending_num_requested)) if self.keepalives else None
                    continue
                # Ask for as many as arrived before handing them out: the server works while the caller
                # does, and at most 2 x batch_size events are ever held (this response and the next).
                call.send(self._more(len(events)))
                for consumer_event in events:
                    replay_id = bytes(consumer_event.replay_id)
                    if not replay_id_after(replay_id, self.last_delivered):
                        continue  # seen before a reconnect
                    event = consumer_event.event
                    if event.schema_id != schema_id:
                        schema_id, schema = event.schema_id, await self.schema(event.schema_id)
                    payload = schema.decode(bytes(event.payload))
                    self.last_delivered = replay_id
                    yield PubSubEvent(topic=self.topic, replay_id=replay_id, event_id=event.id,
                                      schema_id=event.schema_id, payload=payload)
        finally:
            self._call_now = None
            await call.close()
