"""Pub/Sub API hook: subscribe to change events and platform events over gRPC, publish platform events,
read topics and schemas; managed subscriptions with commits kept by Salesforce.

Events are Avro-encoded; schemas come from ``GetSchema`` (cached by schema id) and change event
bitmaps become field names. Every call carries ``accesstoken``, ``instanceurl`` and ``tenantid`` from
the connection's shared authenticator; the endpoint is the connection's ``pubsub_endpoint`` extra
(default ``api.pubsub.salesforce.com:7443``), with TLS through its ``ca_bundle``. gRPC and fastavro
are imported on first use (the ``pubsub`` extra). The machinery lives in
:mod:`~airflow_provider_salesforce_suite.hooks._pubsub`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Iterable, Mapping

from airflow_provider_salesforce_suite.core.errors import (
    SalesforcePubSubError,
    SalesforcePubSubTopicError,
)
from airflow_provider_salesforce_suite.core.extras import require_extra
from airflow_provider_salesforce_suite.hooks._pubsub.events import (
    REPLAY_PRESETS,
    PublishOutcome,
    PubSubEvent,
    PubSubKeepalive,
    decode_replay_id,
    encode_replay_id,
)
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._pubsub.avro import AvroSchema
    from airflow_provider_salesforce_suite.hooks._pubsub.channel import PubSubChannel
    from airflow_provider_salesforce_suite.hooks._pubsub.subscribe import EventStream
    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

__all__ = [
    "REPLAY_PRESETS", "ManagedSubscription", "PubSubEvent", "PubSubKeepalive", "PublishOutcome",
    "SalesforcePubSubHook", "TopicInfo", "decode_replay_id", "encode_replay_id",
]


@dataclass(frozen=True)
class TopicInfo:
    """A topic as ``GetTopic`` describes it.

    :param topic_name: the topic (``/event/Order__e``).
    :param tenant_guid: the org id.
    :param can_publish: whether the user may publish to it (platform events).
    :param can_subscribe: whether the user may subscribe to it.
    :param schema_id: the id of its current schema.
    :param rpc_id: Salesforce's id of the call.
    """

    topic_name: str
    tenant_guid: str
    can_publish: bool
    can_subscribe: bool
    schema_id: str
    rpc_id: str = ""


def _check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not topic.startswith(("/data/", "/event/")) or len(topic.split("/")) != 3 \
            or not topic.split("/")[2]:
        raise ValueError(f"a Pub/Sub topic looks like '/data/AccountChangeEvent', '/data/ChangeEvents' or "
                         f"'/event/Order_Event__e'; got {topic!r}")
    return topic


def _check_batch_size(batch_size: Any, name: str = "batch_size", *, most: int | None = None) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{name} must be a positive integer, got {batch_size!r}")
    if most is not None and batch_size > most:
        raise ValueError(f"{name} must be at most {most} (Salesforce counts more events requested at a time "
                         f"as {most}), got {batch_size}")
    return batch_size


#: Salesforce's limit on the events a subscription may have requested and not yet received.
MAX_REQUESTED = 100


class ManagedSubscription:
    """A managed subscription's stream: iterate for events, :meth:`commit` what was processed.

    ``async with hook.managed_subscribe("My_Sub") as sub: async for event in sub: ...; await sub.commit(event.replay_id)``

    :param stream: the underlying stream.
    """

    def __init__(self, stream: EventStream) -> None:
        self._stream = stream
        self._events: Any = None

    async def __aenter__(self) -> ManagedSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[PubSubEvent | PubSubKeepalive]:
        if self._events is None:
            self._events = self._stream.events()
        return self._events

    async def commit(self, replay_id: bytes, *, timeout: float | None = None) -> None:
        """Commit ``replay_id`` (Salesforce resumes after it) and wait for the answer.

        :param replay_id: the replay id of the last event safely processed.
        :param timeout: seconds to wait for Salesforce's answer (default: the connection's ``timeout``).
        :raises SalesforcePubSubCommitError: refused, or not answered in time.
        """
        await self._stream.commit(replay_id, timeout=timeout)

    @property
    def last_delivered(self) -> bytes | None:
        """The replay id of the last event handed out."""
        return self._stream.last_delivered

    async def aclose(self) -> None:
        """End the stream."""
        if self._events is not None:
            await self._events.aclose()


class SalesforcePubSubHook(SalesforceBaseHook):
    """Salesforce Pub/Sub API (gRPC): subscribe, managed subscriptions, publish, topics and schemas.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version``.
    :param pubsub_endpoint: overrides the connection's ``pubsub_endpoint`` extra (``host:port``).
    :param tenant_id: overrides the org id sent as ``tenantid`` (normally read from the token).
    """

    hook_name = "Salesforce Pub/Sub"

    def __init__(self, salesforce_conn_id: str = SalesforceBaseHook.default_conn_name, *,
                 api_version: str | None = None, pubsub_endpoint: str | None = None,
                 tenant_id: str | None = None) -> None:
        require_extra("pubsub", "The Pub/Sub API")  # before any work, not at the first gRPC call
        super().__init__(salesforce_conn_id, api_version=api_version)
        self._pubsub_endpoint = pubsub_endpoint
        self._tenant_id = tenant_id
        self._topics: dict[str, TopicInfo] = {}

    @property
    def pubsub_endpoint(self) -> str:
        """The gRPC endpoint, ``host:port``."""
        return self._pubsub_endpoint or self.config.pubsub_endpoint

    @cached_property
    def channel(self) -> PubSubChannel:
        """The gRPC channel and call metadata (nothing is opened until the first call)."""
        from airflow_provider_salesforce_suite.hooks._pubsub.channel import PubSubChannel

        async def userinfo() -> dict[str, Any]:
            response = await self.async_session().request("GET", "/services/oauth2/userinfo")
            return response.raise_for_status().json()

        return PubSubChannel(self.config, self.authenticator, self.pubsub_endpoint, userinfo, tenant_id=self._tenant_id)

    # -- topics and schemas ---------------------------------------------------------------------------
    async def get_topic(self, topic: str) -> TopicInfo:
        """Describe ``topic``.

        :param topic: ``/data/<Object>ChangeEvent``, ``/data/ChangeEvents`` or ``/event/<Name>__e``.
        :raises SalesforcePubSubTopicError: the topic does not exist.
        :raises SalesforcePubSubPermissionError: the user may not see it, or the org id is wrong.
        """
        from airflow_provider_salesforce_suite.core.pubsub import stubs

        _check_topic(topic)
        info = await self.channel.unary("GetTopic", stubs().pb2.TopicRequest(topic_name=topic),
                                        what=f"GetTopic {topic}")
        found = TopicInfo(info.topic_name or topic, info.tenant_guid, info.can_publish, info.can_subscribe,
                          info.schema_id, info.rpc_id)
        self._topics[topic] = found
        return found

    async def _schema(self, schema_id: str) -> AvroSchema:
        from airflow_provider_salesforce_suite.core.pubsub import stubs
        from airflow_provider_salesforce_suite.hooks._pubsub.avro import cached_schema, remember_schema

        known = cached_schema(schema_id)
        if known is not None:
            return known
        info = await self.channel.unary("GetSchema", stubs().pb2.SchemaRequest(schema_id=schema_id),
                                        what=f"GetSchema {schema_id}")
        return remember_schema(schema_id, info.schema_json)

    async def get_schema(self, schema_id: str) -> dict[str, Any]:
        """The Avro schema (parsed JSON) of ``schema_id``; fetched once per schema id and process.

        :param schema_id: e.g. :attr:`TopicInfo.schema_id` or :attr:`PubSubEvent.schema_id`.
        """
        if not isinstance(schema_id, str) or not schema_id:
            raise ValueError(f"schema_id must be a non-empty string, got {schema_id!r}")
        return dict((await self._schema(schema_id)).schema)

    # -- subscribe -----------------------------------------------------------------------------------
    def subscribe(self, topic: str, *, replay_preset: str = "LATEST", replay_id: bytes | None = None,
                  batch_size: int = 100, keepalives: bool = False,
                  keepalive_timeout: float | None = None) -> AsyncIterator[PubSubEvent | PubSubKeepalive]:
        """Events of ``topic`` as they arrive, for as long as the caller iterates.

        Keeps ``num_requested`` topped up (at most 2 x ``batch_size`` events held); decodes each payload
        with its schema (change event bitmaps become field names); re-authenticates once on
        ``UNAUTHENTICATED`` and reconnects with backoff on ``UNAVAILABLE`` or a silent stream, resuming
        after the last delivered replay id. Close it when done (``contextlib.aclosing``).

        :param topic: ``/data/<Object>ChangeEvent``, ``/data/ChangeEvents`` or ``/event/<Name>__e``.
        :param replay_preset: ``LATEST`` (new events), ``EARLIEST`` (every retained event) or ``CUSTOM``
            (after ``replay_id``).
        :param replay_id: with ``CUSTOM``: the replay id to resume after (bytes, or the base64 text of them).
        :param batch_size: events requested at a time, 1 to 100 (Salesforce's limit).
        :param keepalives: also yield :class:`PubSubKeepalive` for the server's keepalives.
        :param keepalive_timeout: seconds without any message before reconnecting (default 330: Salesforce
            sends a keepalive every 270 s).
        :raises SalesforcePubSubReplayIdError: ``replay_id`` is not valid or no longer retained.
        :raises SalesforcePubSubTopicError: the topic does not exist.
        :raises SalesforcePubSubPermissionError: not allowed, or the org id is wrong.
        """
        from airflow_provider_salesforce_suite.hooks._pubsub.subscribe import DEFAULT_KEEPALIVE_TIMEOUT, EventStream

        _check_topic(topic)
        _check_batch_size(batch_size, most=MAX_REQUESTED)
        if replay_preset not in REPLAY_PRESETS:
            raise ValueError(f"replay_preset must be one of {', '.join(REPLAY_PRESETS)}, not {replay_preset!r}")
        if isinstance(replay_id, str):
            replay_id = decode_replay_id(replay_id)
        if (replay_preset == "CUSTOM") != (replay_id is not None):
            raise ValueError("replay_id goes with replay_preset='CUSTOM' (and CUSTOM needs a replay_id)")
        if replay_id is not None and (not isinstance(replay_id, (bytes, bytearray)) or not replay_id):
            raise ValueError(f"replay_id must be non-empty bytes (or their base64 text), got {replay_id!r}")
        stream = EventStream(self.channel, self._schema, topic=topic, replay_preset=replay_preset,
                             replay_id=bytes(replay_id) if replay_id is not None else None, batch_size=batch_size,
                             keepalives=keepalives,
                             keepalive_timeout=keepalive_timeout or DEFAULT_KEEPALIVE_TIMEOUT)
        return stream.events()

    def managed_subscribe(self, subscription: str, *, batch_size: int = 100, topic: str = "",
                          keepalives: bool = False, keepalive_timeout: float | None = None) -> ManagedSubscription:
        """A managed subscription's events (Salesforce keeps its position: :meth:`ManagedSubscription.commit`).

        :param subscription: the ManagedEventSubscription's id (``18x...``) or developer name.
        :param batch_size: events requested at a time, 1 to 100 (Salesforce's limit).
        :param topic: the subscription's topic, to label its events with (the API does not say).
        :param keepalives: also yield :class:`PubSubKeepalive`.
        :param keepalive_timeout: seconds without any message before reconnecting.
        """
        from airflow_provider_salesforce_suite.hooks._pubsub.subscribe import DEFAULT_KEEPALIVE_TIMEOUT, EventStream

        if not isinstance(subscription, str) or not subscription.strip():
            raise ValueError(f"subscription must be a managed subscription's id or developer name, got {subscription!r}")
        _check_batch_size(batch_size, most=MAX_REQUESTED)
        stream = EventStream(self.channel, self._schema, topic=topic, batch_size=batch_size, keepalives=keepalives,
                             keepalive_timeout=keepalive_timeout or DEFAULT_KEEPALIVE_TIMEOUT,
                             subscription=subscription.strip())
        return ManagedSubscription(stream)

    # -- publish -------------------------------------------------------------------------------------
    async def _publisher(self, topic: str, batch_size: int, correlation_key_field: str | None,
                         key_prefix: str | None, report_invalid: bool) -> Any:
        from airflow_provider_salesforce_suite.hooks._pubsub.publish import Publisher

        _check_topic(topic)
        _check_batch_size(batch_size)
        info = await self.get_topic(topic)
        if not info.can_publish:
            raise SalesforcePubSubTopicError(
                f"cannot publish to {topic}: Salesforce says this user may not publish to it"
                + (" (change events are published by Salesforce itself)" if topic.startswith("/data/") else ""))
        schema = await self._schema(info.schema_id)
        token = await self.authenticator.aget_token()
        identity = await self.channel.identity(token)
        return Publisher(self.channel, topic, schema, user_id=identity.user_id, batch_size=batch_size,
                         correlation_key_field=correlation_key_field, key_prefix=key_prefix,
                         report_invalid=report_invalid)

    async def publish(self, topic: str, events: Iterable[Mapping[str, Any]], *, batch_size: int = 200,
                      correlation_key_field: str | None = None) -> list[PublishOutcome]:
        """Publish platform events with ``Publish`` (one call per batch); one outcome per event, in order.

        Every event is checked against the topic's schema before anything is sent; ``CreatedDate`` and
        ``CreatedById`` are filled when the event has none. A batch whose answer was lost is reported as
        ``OUTCOME_UNKNOWN`` and never sent again.

        :param topic: ``/event/<Name>__e``.
        :param events: field values per event.
        :param batch_size: events per call (at most 200).
        :param correlation_key_field: a field whose value is each event's id (echoed as its correlation
            key); default: a random UUID per event.
        :raises SalesforcePubSubSchemaError: an event does not fit the schema (nothing was sent).
        :raises SalesforcePubSubTopicError: the topic does not exist or cannot be published to.
        """
        publisher = await self._publisher(topic, batch_size, correlation_key_field, None, False)
        return await publisher.publish(events)

    async def publish_stream(self, topic: str, events: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
                             *, batch_size: int = 200, max_in_flight: int = 4, correlation_key_field: str | None = None,
                             key_prefix: str | None = None, report_invalid: bool = False,
                             journal: SaveJournal | None = None) -> AsyncIterator[PublishOutcome]:
        """Publish platform events over ``PublishStream`` with up to ``max_in_flight`` batches unanswered;
        yields one outcome per event, in input order, as batches are answered. The input is read lazily.

        :param topic: ``/event/<Name>__e``.
        :param events: field values per event (any iterable, or an async iterable).
        :param batch_size: events per request (at most 200).
        :param max_in_flight: requests sent and not yet answered.
        :param correlation_key_field: a field whose value is each event's id; default a random UUID
            (or ``<key_prefix>-<input index>``).
        :param key_prefix: see ``correlation_key_field``.
        :param report_invalid: give an event that does not fit the schema a ``SCHEMA_MISMATCH`` outcome
            and go on, instead of raising :class:`SalesforcePubSubSchemaError` when its batch is reached.
        :param journal: a save journal (see ``hooks/_rest/journal.py``) making a retry skip batches
            already answered and report batches sent without an answer as ``OUTCOME_UNKNOWN``.
        """
        publisher = await self._publisher(topic, batch_size, correlation_key_field, key_prefix, report_invalid)
        async with contextlib.aclosing(publisher.stream(events, max_in_flight=max_in_flight, journal=journal)) as out:
            async for outcome in out:
                yield outcome

    async def aclose(self) -> None:
        """Close the gRPC channel and the HTTP session."""
        if "channel" in self.__dict__:
            await self.channel.close()
        if self._async_session is not None:
            await self._async_session.close()

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and describe a topic nobody has: a topic error proves the endpoint answers."""
        async def probe() -> str:
            try:
                await self.get_topic("/event/Airflow_Connection_Test__e")
            except SalesforcePubSubTopicError:
                pass
            finally:
                await self.aclose()
            return f"Pub/Sub API at {self.pubsub_endpoint} answered"

        try:
            return True, asyncio.run(probe())
        except (SalesforcePubSubError, Exception) as exc:  # the UI wants a message; our errors carry no secrets
            return False, f"{type(exc).__name__}: {exc}"
