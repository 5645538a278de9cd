"""The ``eventbus.v1.PubSub`` RPCs on grpc.aio: GetTopic, GetSchema, Subscribe, Publish,
PublishStream and ManagedSubscribe. Imported only when the gRPC server starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from ...core.pubsub import stubs
from . import publishing
from .auth import authenticate
from .delivery import Batch, PublishHandle, Stream, start_cursor
from .wire import (
    FETCH_TOPIC_MISMATCH,
    INTERNAL_ERROR,
    MANAGED_COMMIT_RESTRICTED,
    MANAGED_EVENTS_INVALID,
    PUBLISH_TOPIC_EMPTY,
    PUBLISH_TOPIC_MISMATCH,
    REQUESTED_EVENTS_INVALID,
    PubSubFault,
    new_rpc_id,
    replay_bytes,
    replay_int,
)

if TYPE_CHECKING:
    from ..sessions import Session
    from .managed import ManagedSubscription
    from .service import PubSubService

log = logging.getLogger(__name__)
pb2, pb2_grpc = stubs()


async def _abort(context: grpc.aio.ServicerContext, fault: PubSubFault, rpc_id: str) -> None:
    """End the RPC as Salesforce does: status, message with ``rpcId:``, ``error-code`` trailer."""
    await context.abort(getattr(grpc.StatusCode, fault.status), f"{fault.message} rpcId: {rpc_id}",
                        trailing_metadata=(("error-code", fault.error_code), ("rpc-id", rpc_id)))


async def _fail(context: grpc.aio.ServicerContext, exc: Exception, rpc_id: str) -> None:
    """End the RPC for ``exc``: a :class:`PubSubFault` as it says, anything else as ``INTERNAL``
    (logged here; the client sees no internals)."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if not isinstance(exc, PubSubFault):
        log.exception("Pub/Sub RPC %s failed", rpc_id)
        exc = PubSubFault("INTERNAL", INTERNAL_ERROR, "An internal error occurred in the emulator's Pub/Sub API.")
    await _abort(context, exc, rpc_id)


class PubSubServicer(pb2_grpc.PubSubServicer):
    """The RPCs over a :class:`~.service.PubSubService`.

    :param service: the Pub/Sub state (on the same event loop as this server).
    """

    def __init__(self, service: PubSubService) -> None:
        self.service = service

    # -- shared -------------------------------------------------------------------------------------

    async def _enter(self, context: grpc.aio.ServicerContext, rpc: str) -> Session:
        self.service.counters["rpcs"] += 1
        await self._delay()
        fault = self.service.fault_for(rpc)
        if fault is not None:
            raise fault
        return authenticate(self.service.state, context.invocation_metadata() or ())

    def _after(self, rpc: str) -> None:
        fault = self.service.fault_for(rpc, after=True)
        if fault is not None:
            raise fault

    async def _delay(self) -> None:
        if self.service.config.delay_ms:
            await asyncio.sleep(self.service.config.delay_ms / 1000)

    def _consumer_events(self, batch: Batch) -> list[Any]:
        out = []
        for event in batch.events:
            event_id, schema_id, payload = self.service.catalog.wire_event(event)
            out.append(pb2.ConsumerEvent(event=pb2.ProducerEvent(id=event_id, schema_id=schema_id, payload=payload),
                                         replay_id=replay_bytes(event.replay_id)))
        self.service.counters["events_delivered"] += len(out)
        return out

    # -- unary ----------------------------------------------------------------------------------------

    async def GetTopic(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802 - gRPC's name
        """A topic's description (``can_publish`` only for platform events)."""
        rpc_id = new_rpc_id()
        try:
            await self._enter(context, "GetTopic")
            topic = self.service.catalog.topic(request.topic_name)
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        return pb2.TopicInfo(topic_name=topic.name, tenant_guid=self.service.state.org_id,
                             can_publish=topic.can_publish, can_subscribe=True, schema_id=topic.schema_id,
                             rpc_id=rpc_id)

    async def GetSchema(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        """The Avro schema (JSON) with a schema id."""
        rpc_id = new_rpc_id()
        try:
            await self._enter(context, "GetSchema")
            schema = self.service.catalog.schema(request.schema_id)
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        return pb2.SchemaInfo(schema_json=schema.json, schema_id=schema.schema_id, rpc_id=rpc_id)

    async def Publish(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        """Publish one batch of platform events; one result per event, in order."""
        rpc_id = new_rpc_id()
        try:
            session = await self._enter(context, "Publish")
            topic = publishing.publishable(self.service, request.topic_name)
            outcomes = publishing.publish(self.service, session, topic, list(request.events))
            self._after("Publish")
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        return self._publish_response(topic.schema_id, outcomes, rpc_id)

    @staticmethod
    def _publish_response(schema_id: str, outcomes: list[publishing.Outcome], rpc_id: str) -> Any:
        results = []
        for outcome in outcomes:
            if outcome.error is None:
                results.append(pb2.PublishResult(replay_id=replay_bytes(outcome.replay_id or 0),
                                                 correlation_key=outcome.correlation_key))
            else:
                results.append(pb2.PublishResult(error=pb2.Error(code=pb2.PUBLISH, msg=outcome.error),
                                                 correlation_key=outcome.correlation_key))
        return pb2.PublishResponse(results=results, schema_id=schema_id, rpc_id=rpc_id)

    # -- streams --------------------------------------------------------------------------------------

    async def PublishStream(self, request_iterator: AsyncIterator[Any],  # noqa: N802
                            context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """One PublishResponse per PublishRequest, in order; every request names the same topic."""
        rpc_id = new_rpc_id()
        topic_name: str | None = None
        handle = PublishHandle(self.service)
        try:
            session = await self._enter(context, "PublishStream")
            while (request := await handle.next_request(request_iterator)) is not None:
                # the first request names the topic; later ones may omit it, never change it
                if topic_name is None and not request.topic_name:
                    raise PubSubFault("INVALID_ARGUMENT", PUBLISH_TOPIC_EMPTY, "The topic name is blank.")
                if topic_name is not None and request.topic_name not in ("", topic_name):
                    raise PubSubFault("INVALID_ARGUMENT", PUBLISH_TOPIC_MISMATCH,
                                      f"The topic {request.topic_name} differs from this stream's topic {topic_name}.")
                topic_name = topic_name or request.topic_name
                topic = publishing.publishable(self.service, topic_name)
                if self.service.state.session(session.token) is None:
                    # an expired session ends the stream
                    session = authenticate(self.service.state, context.invocation_metadata() or ())
                outcomes = publishing.publish(self.service, session, topic, list(request.events))
                self._after("PublishStream")
                await self._delay()
                yield self._publish_response(topic.schema_id, outcomes, rpc_id)
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        finally:
            handle.close()

    async def Subscribe(self, request_iterator: AsyncIterator[Any],  # noqa: N802
                        context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Events of one topic as the client asks for them (``num_requested``), keepalives between."""
        rpc_id = new_rpc_id()
        stream: Stream | None = None
        try:
            session = await self._enter(context, "Subscribe")
            first = await _first(request_iterator)
            topic = self.service.catalog.topic(first.topic_name)
            _check_requested(first.num_requested, REQUESTED_EVENTS_INVALID)
            preset = pb2.ReplayPreset.Name(first.replay_preset)
            stream = Stream(self.service, topic.name, session.token,
                            start_cursor(self.service, topic.name, preset, first.replay_id))
            stream.request(first.num_requested)
            stream.read_with(_read_fetches(request_iterator, stream, topic.name))
            async for batch in stream.batches():
                await self._delay()
                yield pb2.FetchResponse(events=self._consumer_events(batch), latest_replay_id=replay_bytes(batch.cursor),
                                        rpc_id=rpc_id, pending_num_requested=batch.pending)
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        finally:
            if stream is not None:
                stream.close()

    async def ManagedSubscribe(self, request_iterator: AsyncIterator[Any],  # noqa: N802
                               context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """A managed subscription's events from its last commit; commits answered on the stream."""
        rpc_id = new_rpc_id()
        stream: Stream | None = None
        try:
            session = await self._enter(context, "ManagedSubscribe")
            first = await _first(request_iterator)
            if first.HasField("commit_replay_id_request"):
                raise PubSubFault("INVALID_ARGUMENT", MANAGED_COMMIT_RESTRICTED,
                                  "The first ManagedFetchRequest cannot carry a commit request.")
            _check_requested(first.num_requested, MANAGED_EVENTS_INVALID, allow_zero=True)
            sub = self.service.managed.find(first.subscription_id, first.developer_name)
            topic = self.service.catalog.topic(sub.topic)
            start = ("CUSTOM", replay_bytes(sub.committed)) if sub.committed is not None else (sub.default_replay, b"")
            stream = Stream(self.service, topic.name, session.token, start_cursor(self.service, topic.name, *start))
            sub.active = True
            stream.on_close.append(lambda: setattr(sub, "active", False))
            stream.request(first.num_requested)
            stream.read_with(_read_managed(request_iterator, stream, sub))
            async for batch in stream.batches():
                await self._delay()
                for index, commit in enumerate(batch.extras or [None]):  # one response per commit answer
                    yield pb2.ManagedFetchResponse(
                        events=self._consumer_events(batch) if index == 0 else [],
                        latest_replay_id=replay_bytes(batch.cursor), rpc_id=rpc_id,
                        pending_num_requested=batch.pending, commit_response=commit)
        except Exception as exc:  # every failure ends the RPC with a status
            await _fail(context, exc, rpc_id)
        finally:
            if stream is not None:
                stream.close()


async def _first(request_iterator: AsyncIterator[Any]) -> Any:
    try:
        return await request_iterator.__anext__()
    except StopAsyncIteration:
        raise PubSubFault("INVALID_ARGUMENT", REQUESTED_EVENTS_INVALID,
                          "The stream ended before its first request.") from None


def _check_requested(count: int, error_code: str, *, allow_zero: bool = False) -> None:
    if count < 0 or (count == 0 and not allow_zero):
        raise PubSubFault("INVALID_ARGUMENT", error_code,
                          f"The number of requested events must be greater than {'or equal to ' if allow_zero else ''}"
                          f"zero, got {count}.")


async def _read_fetches(request_iterator: AsyncIterator[Any], stream: Stream, topic: str) -> None:
    """The client's later FetchRequests: more events asked for, never another topic."""
    try:
        async for request in request_iterator:
            if request.topic_name and request.topic_name != topic:
                raise PubSubFault("INVALID_ARGUMENT", FETCH_TOPIC_MISMATCH,
                                  f"The topic {request.topic_name} differs from this subscription's topic {topic}; "
                                  "a stream reads one topic.")
            _check_requested(request.num_requested, REQUESTED_EVENTS_INVALID)
            stream.request(request.num_requested)
    except PubSubFault as fault:
        stream.fail(fault)
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception:  # the client went away mid-read: the stream's own end handles it
        log.debug("Subscribe request stream ended", exc_info=True)


async def _read_managed(request_iterator: AsyncIterator[Any], stream: Stream, sub: ManagedSubscription) -> None:
    """The client's later ManagedFetchRequests: more events, and commits answered on the stream."""
    try:
        async for request in request_iterator:
            _check_requested(request.num_requested, MANAGED_EVENTS_INVALID, allow_zero=True)
            if request.num_requested:
                stream.request(request.num_requested)
            if request.HasField("commit_replay_id_request"):
                stream.send_extra(_commit(stream, sub, request.commit_replay_id_request))
    except PubSubFault as fault:
        stream.fail(fault)
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception:
        log.debug("ManagedSubscribe request stream ended", exc_info=True)


def _commit(stream: Stream, sub: ManagedSubscription, request: Any) -> Any:
    """Check and record one commit; the answer carries an error instead of ending the stream."""
    error = None
    value: int | None = None
    try:
        value = replay_int(request.replay_id)
    except ValueError:
        error = f"The replay ID {request.replay_id.hex() or '(empty)'} is not valid."
    if error is None and value is not None:
        log_ = stream.service.hub.log(stream.topic)
        if value > stream.delivered_up_to:
            error = f"The replay ID {value} was not delivered on this stream yet; commit only delivered events."
        elif value < log_.oldest_id - 1:
            error = f"The replay ID {value} is outside the retention window."
        elif sub.committed is not None and value < sub.committed:
            error = f"The replay ID {value} is older than the committed replay ID {sub.committed}."
    commit = sub.record(request.commit_request_id, value, error)
    response = pb2.CommitReplayResponse(commit_request_id=request.commit_request_id, replay_id=request.replay_id,
                                        process_time=commit.process_time)
    if error is not None:
        response.error.CopyFrom(pb2.Error(code=pb2.COMMIT, msg=error))
    return response

