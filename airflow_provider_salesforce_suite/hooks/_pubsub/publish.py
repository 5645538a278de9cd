"""Publishing platform events: events checked against the topic's schema and encoded, sent in batches
by ``Publish`` (one call per batch) or ``PublishStream`` (several batches in flight), and one
:class:`PublishOutcome` per input event, in input order.

Nothing is sent twice blindly: a batch whose answer was lost (the call or stream broke after it was
sent) is reported as :data:`OUTCOME_UNKNOWN`, never re-sent. A batch Salesforce refused as a whole
fails with Salesforce's error. With a save journal (``hooks/_rest/journal.py``: one entry per batch,
written before it is sent and when it is answered), a retry of the task skips batches already
answered and reports batches sent without an answer as outcome-unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceOutcomeUnknownError,
    SalesforcePubSubError,
    SalesforcePubSubSchemaError,
)
from airflow_provider_salesforce_suite.hooks._pubsub.channel import is_transient, rpc_error, status_name
from airflow_provider_salesforce_suite.hooks._pubsub.events import (
    OUTCOME_UNKNOWN,
    SCHEMA_MISMATCH,
    PublishOutcome,
    decode_replay_id,
    encode_replay_id,
)
from airflow_provider_salesforce_suite.hooks._pubsub.streams import STREAM_END, Duplex, Reconnects, StreamBroken

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._pubsub.avro import AvroSchema
    from airflow_provider_salesforce_suite.hooks._pubsub.channel import PubSubChannel
    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

log = logging.getLogger(__name__)

#: Salesforce's limit of events per publish request.
MAX_BATCH_SIZE = 200
#: Platform event fields Salesforce fills on its own publish paths; filled here when the caller did not.
CREATED_DATE, CREATED_BY_ID = "CreatedDate", "CreatedById"


@dataclass
class Batch:
    """One publish request's events.

    :param start: input index of its first event.
    :param inputs: the caller's events, as given (the journal's payload).
    :param keys: correlation key per event.
    :param wire: ``(position in batch, ProducerEvent)`` of the events that fit the schema.
    :param outcomes: per position, once known.
    """

    start: int
    inputs: list[Any]
    keys: list[str]
    wire: list[tuple[int, Any]] = field(default_factory=list)
    outcomes: list[PublishOutcome | None] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(o is not None for o in self.outcomes)

    def settle(self, position: int, replay_id: bytes | None, code: str | None, message: str | None) -> None:
        self.outcomes[position] = PublishOutcome(self.start + position, self.keys[position], replay_id, code, message)

    def settle_sent(self, code: str, message: str) -> None:
        """Every sent event of the batch gets the same (failed or unknown) outcome."""
        for position, _ in self.wire:
            self.settle(position, None, code, message)


def to_record_results(batch: Batch) -> list[Any]:
    """The batch's outcomes in the REST journal's shape (``RecordResult``)."""
    from airflow_provider_salesforce_suite.hooks._rest.records import RecordResult

    results = []
    for outcome in batch.outcomes:
        assert outcome is not None
        errors = [] if outcome.ok else [{"statusCode": outcome.error_code, "message": outcome.error_message or ""}]
        replay = encode_replay_id(outcome.replay_id) if outcome.replay_id is not None else None
        results.append(RecordResult(outcome.index, replay, outcome.ok, None, errors))
    return results


class Publisher:
    """Publishes events of one topic (see the module doc).

    :param channel: the hook's channel.
    :param topic: the topic (``/event/Name__e``).
    :param schema: the topic's current schema.
    :param user_id: fills ``CreatedById`` when the event has none.
    :param batch_size: events per request (at most 200).
    :param correlation_key_field: an input field whose value is each event's id (correlation key);
        dropped from the payload when the schema has no such field.
    :param key_prefix: without ``correlation_key_field``: ids ``<key_prefix>-<input index>`` (stable
        across task retries) instead of random UUIDs.
    :param report_invalid: an event that does not fit the schema gets a :data:`SCHEMA_MISMATCH`
        outcome (and the rest is published) instead of raising before anything is sent.
    """

    def __init__(self, channel: PubSubChannel, topic: str, schema: AvroSchema, *, user_id: str | None,
                 batch_size: int = MAX_BATCH_SIZE, correlation_key_field: str | None = None,
                 key_prefix: str | None = None, report_invalid: bool = False) -> None:
        if not 0 < batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH_SIZE}, got {batch_size}")
        self.channel = channel
        self.topic = topic
        self.schema = schema
        self.user_id = user_id
        self.batch_size = batch_size
        self.correlation_key_field = correlation_key_field
        self.key_prefix = key_prefix
        self.report_invalid = report_invalid
        self._pb2: Any = None

    # -- preparing ---------------------------------------------------------------------------------
    def _key(self, index: int, event: Any) -> str:
        if self.correlation_key_field:
            value = event.get(self.correlation_key_field) if isinstance(event, Mapping) else None
            if value in (None, ""):
                raise SalesforcePubSubSchemaError(
                    f"event {index + 1} has no value for correlation_key_field {self.correlation_key_field!r}")
            return str(value)
        return f"{self.key_prefix}-{index}" if self.key_prefix else uuid.uuid4().hex

    def batch(self, start: int, inputs: list[Any]) -> Batch:
        """Check and encode ``inputs`` (the events from input index ``start`` on).

        :raises SalesforcePubSubSchemaError: an event that does not fit (unless ``report_invalid``).
        """
        from airflow_provider_salesforce_suite.core.pubsub import stubs

        pb2 = self._pb2 = self._pb2 or stubs().pb2
        keys: list[str] = []
        for position, event in enumerate(inputs):
            try:
                keys.append(self._key(start + position, event))
            except SalesforcePubSubSchemaError:
                if not self.report_invalid:
                    raise
                keys.append("")
        batch = Batch(start, list(inputs), keys, outcomes=[None] * len(inputs))
        defaults = {CREATED_DATE: int(time.time() * 1000), CREATED_BY_ID: self.user_id}
        drop = self.correlation_key_field if self.correlation_key_field not in self.schema.fields else None
        for position, event in enumerate(inputs):
            where = f"event {start + position + 1}" + (f" (key {keys[position]!r})" if keys[position] else "")
            try:
                if not keys[position]:
                    raise SalesforcePubSubSchemaError(
                        f"{where} has no value for correlation_key_field {self.correlation_key_field!r}")
                values = {k: v for k, v in event.items() if k != drop} if isinstance(event, Mapping) else event
                record = self.schema.prepare(values, where=where, defaults=defaults)
            except SalesforcePubSubSchemaError as exc:
                if not self.report_invalid:
                    raise
                batch.settle(position, None, SCHEMA_MISMATCH, str(exc))
                continue
            batch.wire.append((position, pb2.ProducerEvent(id=keys[position], schema_id=self.schema.schema_id,
                                                           payload=self.schema.encode(record))))
        return batch

    def request(self, batch: Batch) -> Any:
        return self._pb2.PublishRequest(topic_name=self.topic, events=[event for _, event in batch.wire])

    def answer(self, batch: Batch, response: Any) -> None:
        """Settle ``batch`` from its ``PublishResponse`` (results matched by correlation key, else by order)."""
        by_key = {event.id: position for position, event in batch.wire}
        for order, result in enumerate(response.results):
            position = by_key.get(result.correlation_key)
            if position is None and order < len(batch.wire):
                position = batch.wire[order][0]
            if position is None:
                continue
            if result.HasField("error") and (result.error.code or result.error.msg):
                code = self._pb2.ErrorCode.Name(result.error.code) if result.error.code else "UNKNOWN"
                batch.settle(position, None, code, result.error.msg or "no message")
            else:
                batch.settle(position, bytes(result.replay_id), None, None)
        missing = [p for p, _ in batch.wire if batch.outcomes[p] is None]
        for position in missing:
            batch.settle(position, None, OUTCOME_UNKNOWN,
                         "Salesforce's answer had no result for this event: it may or may not be published")

    # -- batches from the input ----------------------------------------------------------------------
    def chunks(self, events: Iterable[Any]) -> Iterator[tuple[int, list[Any]]]:
        """``(start, events)`` per batch of a synchronous input."""
        cut = _Cutter(self.batch_size)
        for event in events:
            yield from cut.add(event)
        yield from cut.rest()

    async def achunks(self, events: AsyncIterable[Any]) -> AsyncIterator[tuple[int, list[Any]]]:
        """``(start, events)`` per batch of an asynchronous input."""
        cut = _Cutter(self.batch_size)
        async for event in events:
            for chunk in cut.add(event):
                yield chunk
        for chunk in cut.rest():
            yield chunk

    # -- Publish (unary) ------------------------------------------------------------------------------
    async def publish(self, events: Iterable[Any]) -> list[PublishOutcome]:
        """Every event checked first (nothing is sent if one does not fit), then one ``Publish`` per batch."""
        batches = [self.batch(start, chunk) for start, chunk in self.chunks(events)]
        outcomes: list[PublishOutcome] = []
        for batch in batches:
            if batch.wire:
                await self._send_unary(batch)
            outcomes.extend(o for o in batch.outcomes if o is not None)
        return outcomes

    async def _send_unary(self, batch: Batch) -> None:
        what = f"Publish to {self.topic}"
        try:
            response = await self.channel.unary("Publish", self.request(batch), what=what, idempotent=False)
        except SalesforceOutcomeUnknownError as exc:
            batch.settle_sent(OUTCOME_UNKNOWN, f"{exc}: the event may or may not be published; it was not sent again")
            return
        except SalesforcePubSubError as exc:
            batch.settle_sent(exc.error_code or exc.grpc_code or "PUBLISH", str(exc))
            return
        self.answer(batch, response)

    # -- PublishStream ----------------------------------------------------------------------------------
    async def stream(self, events: Iterable[Any] | AsyncIterable[Any], *, max_in_flight: int = 4,
                     journal: SaveJournal | None = None) -> AsyncIterator[PublishOutcome]:
        """Outcomes in input order, with up to ``max_in_flight`` batches sent and not yet answered."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be 1 or more, got {max_in_flight}")
        if isinstance(events, AsyncIterable):
            if journal is not None:
                raise ValueError("a save journal needs a synchronous input (a list or a file reader)")
            source: Any = self.achunks(events)
        else:
            chunks = self.chunks(events)
            source = _as_async(journal.verified(chunks) if journal is not None else chunks)
        run = _StreamRun(self, source, max_in_flight, journal)
        async with contextlib.aclosing(run.outcomes()) as outcomes:
            async for outcome in outcomes:
                yield outcome


class _Cutter:
    """Cuts an input into ``(start, events)`` batches of ``size`` (one bookkeeping for sync and async inputs)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.start = 0
        self.chunk: list[Any] = []

    def add(self, event: Any) -> list[tuple[int, list[Any]]]:
        self.chunk.append(event)
        return self.rest() if len(self.chunk) == self.size else []

    def rest(self) -> list[tuple[int, list[Any]]]:
        if not self.chunk:
            return []
        done = [(self.start, self.chunk)]
        self.start, self.chunk = self.start + len(self.chunk), []
        return done


async def _as_async(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class _StreamRun:
    """One ``publish_stream``: the PublishStream calls it takes and the batches in flight."""

    def __init__(self, publisher: Publisher, source: AsyncIterator[tuple[int, list[Any]]], max_in_flight: int,
                 journal: SaveJournal | None) -> None:
        self.p = publisher
        self.channel = publisher.channel
        self.source = source
        self.max_in_flight = max_in_flight
        self.journal = journal
        self.order: deque[Batch] = deque()  # every batch not yet handed out, in input order
        self.in_flight: deque[Batch] = deque()  # sent, unanswered, in send order
        self.waiting: deque[Batch] = deque()  # to send (new, or refused as a whole with UNAUTHENTICATED)
        self.input_done = False
        #: What reading the input raised (raised again once every batch sent before it is settled).
        self.input_error: Exception | None = None
        self.what = f"PublishStream to {publisher.topic}"

    async def _next_batch(self) -> Batch | None:
        """The next batch from the input, settled from the journal when an earlier try got that far."""
        try:
            item = await anext(self.source, None)
        except Exception as exc:  # a bad input row: publish nothing after it, settle what is in flight
            self.input_error, self.input_done = exc, True
            return None
        if item is None:
            self.input_done = True
            return None
        start, inputs = item
        journal = self.journal
        if journal is not None:
            kept = journal.settled(start)
            if kept is not None:
                batch = Batch(start, inputs, [self._stored_key(start + i, e) for i, e in enumerate(inputs)],
                              outcomes=[None] * len(inputs))
                for position, result in enumerate(kept):
                    error = result.errors[0] if result.errors else {}
                    batch.settle(position, decode_replay_id(result.id) if result.id else None,
                                 None if result.success else str(error.get("statusCode")),
                                 None if result.success else str(error.get("message")))
                return batch
            if journal.was_sent(start):
                try:
                    batch = self.p.batch(start, inputs)  # which events were sent (the others did not fit)
                except SalesforcePubSubSchemaError:
                    batch = Batch(start, inputs, [self._stored_key(start + i, e) for i, e in enumerate(inputs)],
                                  wire=[(i, None) for i in range(len(inputs))], outcomes=[None] * len(inputs))
                batch.settle_sent(OUTCOME_UNKNOWN, "an earlier try of this task sent this event and never got the "
                                                   "answer: it may or may not be published, so it was not sent again")
                return batch
        try:
            batch = self.p.batch(start, inputs)
        except SalesforcePubSubSchemaError as exc:  # report_invalid=False: stop before sending this batch
            self.input_error, self.input_done = exc, True
            return None
        if not batch.wire:  # nothing fit the schema: nothing to send
            if journal is not None:
                journal.done(start, inputs, to_record_results(batch))
        return batch

    def _stored_key(self, index: int, event: Any) -> str:
        try:
            return self.p._key(index, event)
        except SalesforcePubSubSchemaError:
            return ""

    async def outcomes(self) -> AsyncIterator[PublishOutcome]:
        reconnects = Reconnects(self.channel, self.what, await self.channel.authenticator.aget_token())
        while True:
            try:
                async with contextlib.aclosing(self._call(reconnects.token)) as results:
                    async for outcome in results:
                        reconnects.worked()
                        yield outcome
                if self.input_error is not None:
                    raise self.input_error
                return
            except StreamBroken as broken:
                await reconnects.after(broken, "opening a new stream for the events not yet sent")

    def _ready(self) -> Iterator[PublishOutcome]:
        while self.order and self.order[0].done:
            batch = self.order.popleft()
            for outcome in batch.outcomes:
                assert outcome is not None
                yield outcome

    async def _call(self, token: Any) -> AsyncIterator[PublishOutcome]:
        call = Duplex(await self.channel.stub(), "PublishStream", await self.channel.metadata(token))
        try:
            while True:
                # Send until max_in_flight batches are unanswered (or the input ends).
                while len(self.in_flight) < self.max_in_flight and (self.waiting or not self.input_done):
                    batch = self.waiting.popleft() if self.waiting else await self._next_batch()
                    if batch is None:
                        break
                    if not any(queued is batch for queued in self.order):
                        self.order.append(batch)
                    if batch.done:
                        continue
                    if self.journal is not None:
                        self.journal.pending(batch.start, batch.inputs)  # from here on its outcome may be unknown
                    self.in_flight.append(batch)
                    call.send(self.p.request(batch))
                for outcome in self._ready():
                    yield outcome
                if not self.in_flight:
                    if self.input_done and not self.waiting and not self.order:
                        return
                    continue
                try:
                    response = await call.next(self.channel.config.timeout)
                except asyncio.TimeoutError:
                    self._lost(f"no answer within {self.channel.config.timeout:g}s")
                    raise StreamBroken("no answer within the connection's timeout") from None
                if response is STREAM_END:
                    self._lost("the server ended the stream before answering")
                    raise StreamBroken("the server ended the stream")
                if isinstance(response, BaseException):
                    code = status_name(response)
                    if code == "UNAUTHENTICATED":
                        # Refused before anything was carried out: the unanswered batches go again.
                        self.waiting.extendleft(reversed(self.in_flight))
                        self.in_flight.clear()
                        raise StreamBroken("UNAUTHENTICATED", reauthenticate=response)
                    self._lost(f"the stream failed ({code or type(response).__name__})")
                    if is_transient(response):
                        raise StreamBroken(f"{code}: {response.details()}")
                    if code is not None:
                        raise rpc_error(response, self.what)
                    raise response
                self._answered(response)
        finally:
            await call.close()

    def _answered(self, response: Any) -> None:
        keys = {result.correlation_key for result in response.results}
        batch = next((b for b in self.in_flight if keys & {event.id for _, event in b.wire}), None)
        if batch is None:
            batch = self.in_flight[0]  # no correlation keys in the answer: Salesforce answers in order
        self.in_flight.remove(batch)
        self.p.answer(batch, response)
        if self.journal is not None:
            self.journal.done(batch.start, batch.inputs, to_record_results(batch))

    def _lost(self, why: str) -> None:
        """Every unanswered batch: sent, and its answer lost. Never sent again (the journal keeps them pending)."""
        for batch in self.in_flight:
            batch.settle_sent(OUTCOME_UNKNOWN, f"{self.what}: {why} after this event was sent: it may or may not be "
                                               "published, so it was not sent again")
        self.in_flight.clear()
