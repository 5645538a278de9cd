"""Pub/Sub API triggers.

* :class:`SalesforcePubSubTrigger`: a deferrable wait for matching events of a topic (the
  sensor's trigger); fires one :class:`TriggerEvent`.
* :class:`SalesforcePubSubEventTrigger`: event-driven scheduling through asset watchers, one
  trigger event per matching event, the replay id committed only after Airflow persisted it.

Replay ids are opaque bytes on the wire; in every payload, in the asset state store and in XCom
they are the standard base64 text of those bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_salesforce_suite.triggers._filters import compile_event_filter, validate_event_filter
from airflow_provider_salesforce_suite.triggers._pacing import (  # noqa: F401 - salesforce_events re-exported
    PACE_TIMEOUT,
    pacing_key,
    pacing_kwargs,
    salesforce_events,
    validate_pacing,
)
from airflow_provider_salesforce_suite.triggers._wait import validate_wait, wait_for_events

#: Topic prefixes the Pub/Sub API serves (change events, platform events, custom channels).
TOPIC_PREFIXES = ("/data/", "/event/")
GAP_POLICIES = ("fail", "earliest")


def validate_topic(topic: Any) -> str:
    """Check a Pub/Sub topic name: ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``,
    ``/event/<Name>__e`` or a custom channel under ``/data/`` or ``/event/``.

    :raises ValueError: not a string, or not under ``/data/`` or ``/event/`` (``/topic/`` PushTopics
        and ``/u/`` generic streaming channels exist only on CometD).
    """
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIXES) or topic.rstrip("/") in ("/data", "/event"):
        raise ValueError(f"topic must be one Pub/Sub topic like '/data/AccountChangeEvent' or '/event/Order__e', "
                         f"got {topic!r} (PushTopics '/topic/...' and '/u/...' channels are CometD-only: "
                         "use the Streaming API's triggers)")
    return topic


def _validate_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100:
        raise ValueError(f"batch_size must be an int from 1 to 100 (Salesforce's num_requested limit), got {batch_size!r}")
    return batch_size


def validate_gap_policy(on_replay_gap: Any) -> str:
    """Check ``on_replay_gap``: ``"fail"`` or ``"earliest"``."""
    if on_replay_gap not in GAP_POLICIES:
        raise ValueError(f"on_replay_gap must be 'fail' or 'earliest', not {on_replay_gap!r}")
    return on_replay_gap


def resolve_start(replay_preset: str | None, replay_id: str | None) -> tuple[str, str | None]:
    """Check where a subscription starts: ``(preset, base64 replay id or None)``.

    :param replay_preset: ``LATEST``, ``EARLIEST``, ``CUSTOM`` or None (``CUSTOM`` with a
        ``replay_id``, ``LATEST`` without).
    :param replay_id: base64 replay id to resume after (``CUSTOM`` only).
    :raises ValueError: an unknown preset, ``CUSTOM`` without a replay id, a replay id with another
        preset, or a replay id that is not base64.
    """
    from airflow_provider_salesforce_suite.hooks._pubsub.events import REPLAY_PRESETS, decode_replay_id

    preset = replay_preset if replay_preset is not None else ("CUSTOM" if replay_id is not None else "LATEST")
    if preset not in REPLAY_PRESETS:
        raise ValueError(f"replay_preset must be one of {', '.join(REPLAY_PRESETS)}, not {replay_preset!r}")
    if preset == "CUSTOM":
        if replay_id is None:
            raise ValueError("replay_preset 'CUSTOM' needs a replay_id (the base64 replay id to resume after)")
        if not isinstance(replay_id, str):
            raise ValueError(f"replay_id must be the base64 text of a replay id, got {type(replay_id).__name__}")
        decode_replay_id(replay_id)  # ValueError naming the bad value
    elif replay_id is not None:
        raise ValueError(f"replay_id is only used with replay_preset 'CUSTOM', not {preset!r}")
    return preset, replay_id


class SalesforcePubSubTrigger(BaseTrigger):
    """Wait on the triggerer for ``event_count`` events of a Pub/Sub topic (those matching
    ``filter``, if given), or until ``timeout``; fire ONE :class:`TriggerEvent`::

        {"status": "success" | "timeout" | "error",
         "events": [{"topic", "replay_id", "event_id", "schema_id", "payload"}, ...],  # the matching events
         "last_replay_id": str | None,   # base64 id of the last event seen (matching or not); the start id if none
         "message": str | None}          # why, for timeout and error

    A restarted triggerer subscribes again from the same start (so ``EARLIEST`` or a stored replay
    id loses nothing; ``LATEST`` only sees events from the restart on) and keeps the original
    deadline (``started_at``).

    :param topic: ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``, ``/event/<Name>__e`` or a
        custom channel.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param replay_preset: ``LATEST`` (new events), ``EARLIEST`` (every retained event) or
        ``CUSTOM`` (after ``replay_id``); default ``CUSTOM`` with a ``replay_id``, else ``LATEST``.
    :param replay_id: base64 replay id to resume after (e.g. a previous run's ``last_replay_id``).
    :param event_count: how many (matching) events to wait for.
    :param filter: declarative filter over the decoded payload, e.g.
        ``{"ChangeEventHeader.changeType": "UPDATE"}`` (see :func:`~._filters.validate_event_filter`).
    :param timeout: seconds to wait in all (None: no limit).
    :param on_replay_gap: a ``replay_id`` Salesforce no longer retains: ``"fail"`` (error event
        with Salesforce's error code) or ``"earliest"`` (replay every retained event).
    :param batch_size: events requested at a time (``num_requested``, 1 to 100).
    :param started_at: epoch seconds the wait began (default now; kept across re-serialisation).
    :param api_version: overrides the connection's API version (authentication).
    :param pubsub_endpoint: overrides the connection's ``pubsub_endpoint`` extra (``host:port``).
    """

    def __init__(self, *, topic: str, salesforce_conn_id: str = "salesforce_suite_default",
                 replay_preset: str | None = None, replay_id: str | None = None, event_count: int = 1,
                 filter: Mapping[str, Any] | None = None,  # noqa: A002 - public name
                 timeout: float | None = None, on_replay_gap: str = "fail", batch_size: int = 100,
                 started_at: float | None = None, api_version: str | None = None,
                 pubsub_endpoint: str | None = None) -> None:
        super().__init__()
        self.topic = validate_topic(topic)
        self.replay_preset, self.replay_id = resolve_start(replay_preset, replay_id)
        self.event_count, self.timeout = validate_wait(event_count, timeout)
        self.salesforce_conn_id = salesforce_conn_id
        self.filter = validate_event_filter(filter)
        self.on_replay_gap = validate_gap_policy(on_replay_gap)
        self.batch_size = _validate_batch_size(batch_size)
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.api_version = api_version
        self.pubsub_endpoint = pubsub_endpoint

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and small JSON-safe kwargs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "topic": self.topic, "salesforce_conn_id": self.salesforce_conn_id, "replay_preset": self.replay_preset,
            "replay_id": self.replay_id, "event_count": self.event_count, "filter": self.filter,
            "timeout": self.timeout, "on_replay_gap": self.on_replay_gap, "batch_size": self.batch_size,
            "started_at": self.started_at, "api_version": self.api_version, "pubsub_endpoint": self.pubsub_endpoint,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Subscribe, collect, and yield exactly one event."""
        from airflow_provider_salesforce_suite.hooks._pubsub.events import decode_replay_id, encode_replay_id
        from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook
        from airflow_provider_salesforce_suite.triggers._pubsub_stream import subscribe_from

        hook = SalesforcePubSubHook(self.salesforce_conn_id, api_version=self.api_version,
                                    pubsub_endpoint=self.pubsub_endpoint)
        start = decode_replay_id(self.replay_id) if self.replay_id is not None else None
        payload = await wait_for_events(
            lambda: subscribe_from(hook, self.topic, replay_preset=self.replay_preset, replay_id=start,
                                   batch_size=self.batch_size, on_replay_gap=self.on_replay_gap),
            source=self.topic, event_count=self.event_count, filter=self.filter, timeout=self.timeout,
            started_at=self.started_at, last_replay_id=self.replay_id,
            replay_id_of=lambda event: encode_replay_id(event.replay_id), close=hook.aclose,
            dedupe=True)  # a replay after a gap must not count an event twice
        self.log.info("Pub/Sub trigger on %s: %s, %d event(s), last replay id %s", self.topic, payload["status"],
                      len(payload["events"]), payload["last_replay_id"])
        yield TriggerEvent(payload)


class SalesforcePubSubEventTrigger(BaseEventTrigger):
    """Turn every event of a Pub/Sub topic (or managed subscription) into an asset event.

    Use it in an asset watcher::

        Asset("salesforce://my-org/data/AccountChangeEvent", watchers=[AssetWatcher(
            name="account_changes", trigger=SalesforcePubSubEventTrigger(topic="/data/AccountChangeEvent"))])

    Each event fires a :class:`TriggerEvent` whose payload, ``{"topic", "replay_id" (base64),
    "event_id", "schema_id", "payload" (the decoded event)}``, becomes the asset event's
    ``extra["payload"]``. Delivery is at-least-once: the replay id is stored in the asset's state
    store (key ``salesforce.pubsub.replay_id:<topic>``) only after Airflow persisted the asset
    events up to it, and a restarted triggerer resumes after it, so an event can reach a DAG twice
    (same ``replay_id``) but is not lost while Salesforce retains it (72 hours).

    Watchers on the same org (login URL and user), Pub/Sub endpoint and topic in one triggerer
    share one gRPC stream (Airflow's shared streams, ack mode).

    With ``managed_subscription``, Salesforce keeps the position instead: the trigger uses
    ``ManagedSubscribe`` and commits a replay id to the subscription (``CommitReplayRequest``)
    only after Airflow persisted the events up to it.

    :param topic: ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``, ``/event/<Name>__e`` or a
        custom channel. With ``managed_subscription`` it is optional and only labels the events
        (the subscription itself names its topic at Salesforce).
    :param managed_subscription: a managed event subscription's developer name or id (``18x...``):
        subscribe with ``ManagedSubscribe`` instead of ``Subscribe``.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param filter: only events matching this declarative filter over the decoded payload fire,
        e.g. ``{"ChangeEventHeader.changeType": "UPDATE"}``; others are skipped, their replay id
        still advances.
    :param replay_preset: where an asset with no stored replay id starts: ``"LATEST"`` (events
        published from now on) or ``"EARLIEST"`` (every event Salesforce still retains).
    :param on_replay_gap: a stored replay id Salesforce no longer retains: ``"earliest"`` (default)
        replays every retained event and logs the gap, ``"fail"`` fails the trigger.
    :param batch_size: events requested at a time (``num_requested``, 1 to 100).
    :param api_version: overrides the connection's API version (authentication).
    :param pubsub_endpoint: overrides the connection's ``pubsub_endpoint`` extra (``host:port``).
    :param paced_by: ids of the DAGs scheduled on this asset. Set it and every event reaches a run
        promptly despite Airflow 3.3's asset queue keeping the first event time of a burst
        (apache/airflow#56050, see docs/deployment.md): the events that arrive while a run is
        being queued become ONE asset event whose payload is ``{"topic", "replay_id" (base64),
        "events": [...]}`` (read both shapes with :func:`salesforce_events`), emitted once the
        previous one was consumed by a run of each DAG. Without it, each event is its own asset
        event and the tail of a burst can wait for the next change.
    :param pace_timeout: with ``paced_by``, seconds to wait for that run before emitting anyway
        (a paused DAG, ``max_active_runs`` reached for long).
    """

    def __init__(self, *, topic: str | None = None, managed_subscription: str | None = None,
                 salesforce_conn_id: str = "salesforce_suite_default",
                 filter: Mapping[str, Any] | None = None,  # noqa: A002 - public name
                 replay_preset: str = "LATEST", on_replay_gap: str = "earliest", batch_size: int = 100,
                 api_version: str | None = None, pubsub_endpoint: str | None = None,
                 paced_by: Sequence[str] | None = None, pace_timeout: float = PACE_TIMEOUT) -> None:
        super().__init__()
        from airflow_provider_salesforce_suite.triggers._pubsub_stream import START_PRESETS

        if topic is None and managed_subscription is None:
            raise ValueError("give a topic (Subscribe) or a managed_subscription (ManagedSubscribe)")
        if managed_subscription is not None and (not isinstance(managed_subscription, str)
                                                 or not managed_subscription.strip()):
            raise ValueError(f"managed_subscription must be a subscription's developer name or id, "
                             f"got {managed_subscription!r}")
        if replay_preset not in START_PRESETS:
            raise ValueError(f"replay_preset must be one of {', '.join(START_PRESETS)} (where an asset with no "
                             f"stored replay id starts), not {replay_preset!r}")
        self.topic = validate_topic(topic) if topic is not None else None
        self.managed_subscription = managed_subscription
        self.salesforce_conn_id = salesforce_conn_id
        self.filter = validate_event_filter(filter)
        self._event_filter = compile_event_filter(self.filter)
        self.replay_preset = replay_preset
        self.on_replay_gap = validate_gap_policy(on_replay_gap)
        self.batch_size = _validate_batch_size(batch_size)
        self.api_version = api_version
        self.pubsub_endpoint = pubsub_endpoint
        self.paced_by, self.pace_timeout = validate_pacing(paced_by, pace_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs (pacing fields only when ``paced_by`` is set)."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "topic": self.topic, "managed_subscription": self.managed_subscription,
            "salesforce_conn_id": self.salesforce_conn_id, "filter": self.filter,
            "replay_preset": self.replay_preset, "on_replay_gap": self.on_replay_gap, "batch_size": self.batch_size,
            "api_version": self.api_version, "pubsub_endpoint": self.pubsub_endpoint,
            **pacing_kwargs(self.paced_by, self.pace_timeout),
        }

    def shared_stream_key(self) -> Hashable:
        """One gRPC stream per org (login URL, instance, user), endpoint and topic or managed subscription."""
        from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

        config = SalesforceBaseHook(self.salesforce_conn_id, api_version=self.api_version).config
        user = config.username or config.consumer_key or ""
        endpoint = self.pubsub_endpoint or config.pubsub_endpoint
        source = ("managed", self.managed_subscription) if self.managed_subscription else ("topic", self.topic)
        return ("salesforce-pubsub", config.login_url, config.instance_url or "", user, endpoint, *source,
                self.replay_preset, self.on_replay_gap, self.batch_size, *pacing_key(self.paced_by))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        """Ack mode: the producer commits replay ids once Airflow persisted the asset events."""
        from airflow_provider_salesforce_suite.triggers._pubsub_stream import (
            ManagedSubscriptionProducer,
            PubSubReplayProducer,
        )

        if kwargs.get("managed_subscription"):
            return ManagedSubscriptionProducer(kwargs)
        return PubSubReplayProducer(kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Register this watcher's asset state with the group, then one TriggerEvent per matching event."""
        from airflow_provider_salesforce_suite.triggers._event_stream import watch_shared_stream

        async for event in watch_shared_stream(shared_stream, self.asset_state_store, self._event_filter):
            yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone run (no shared stream): own stream, replay id committed after each event.

        The triggerer uses :meth:`filter_shared_stream`; this path serves callers that run the
        trigger directly. The commit follows the yield, so it is not persistence-gated.
        """
        stream = self.create_shared_stream_producer(self.serialize()[1])
        await stream.register(self.asset_state_store, read=True)
        async with aclosing(stream.events()) as events:
            async for delivered in events:
                event, replay_id = stream.split(delivered)
                if event is not None and self._event_filter(event):
                    yield TriggerEvent(event.to_dict())
                await stream.commit(replay_id)
