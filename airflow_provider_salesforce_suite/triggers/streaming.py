"""Streaming API triggers.

Two sections, two owners: ``SalesforceStreamingTrigger`` (deferrable tasks and the sensor) and
``SalesforceEventTrigger`` (event-driven scheduling through asset watchers). Keep edits inside
your section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

# ======================================================================================
# SalesforceStreamingTrigger section (owner: streaming hook engineer)
# ======================================================================================
import time  # noqa: E402 - this section's own imports, kept inside the section

from airflow.triggers.base import BaseTrigger  # noqa: E402

# The filter format and the one-shot wait are shared with the Pub/Sub triggers; these names stay
# importable from here.
from airflow_provider_salesforce_suite.triggers._filters import (  # noqa: E402
    compile_event_filter,
    validate_event_filter,
)
from airflow_provider_salesforce_suite.triggers._wait import (  # noqa: E402, F401 - STREAM_* re-exported
    STATUS_ERROR as STREAM_ERROR,
    STATUS_SUCCESS as STREAM_SUCCESS,
    STATUS_TIMEOUT as STREAM_TIMEOUT,
    validate_wait,
    wait_for_events,
)


class SalesforceStreamingTrigger(BaseTrigger):
    """Wait on the triggerer for ``event_count`` events of a Streaming API channel (those matching
    ``filter``, if given), or until ``timeout``; fire ONE :class:`TriggerEvent`::

        {"status": "success" | "timeout" | "error",
         "events": [{"channel", "replay_id", "payload", "created_date"}, ...],   # the matching events
         "last_replay_id": int,    # last event seen (matching or not); the start id if none
         "message": str | None}    # why, for timeout and error

    A restarted triggerer subscribes again from ``replay_id`` (so a stored id or -2 loses nothing;
    -1 only sees events from the restart on) and keeps the original deadline (``started_at``).

    :param channel: ``/topic/<PushTopic>``, ``/data/<ChangeEvent>``, ``/event/<Name>__e`` or ``/u/<Name>``.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param replay_id: -1 (new events), -2 (every retained event) or a stored replay id to resume after.
    :param event_count: how many (matching) events to wait for.
    :param filter: declarative payload filter (see :func:`validate_event_filter`), e.g.
        ``{"sobject.StageName": "Closed Won"}``.
    :param timeout: seconds to wait in all (None: no limit).
    :param on_replay_gap: ``"fail"`` (error event naming id and channel) or ``"earliest"`` (replay -2).
    :param started_at: epoch seconds the wait began (default now; kept across re-serialisation).
    :param api_version: overrides the connection's API version.
    """

    def __init__(self, *, channel: str, salesforce_conn_id: str = "salesforce_suite_default", replay_id: int = -1,
                 event_count: int = 1, filter: Mapping[str, Any] | None = None,  # noqa: A002 - public name
                 timeout: float | None = None, on_replay_gap: str = "fail", started_at: float | None = None,
                 api_version: str | None = None) -> None:
        super().__init__()
        from airflow_provider_salesforce_suite.hooks._streaming.cometd import (
            normalize_channels,
            validate_gap_policy,
            validate_replay_id,
        )

        self.channel = normalize_channels(channel)[0] if isinstance(channel, str) else _bad_channel(channel)
        self.replay_id = validate_replay_id(replay_id)
        self.event_count, self.timeout = validate_wait(event_count, timeout)
        validate_gap_policy(on_replay_gap)
        self.salesforce_conn_id = salesforce_conn_id
        self.filter = validate_event_filter(filter)
        self.on_replay_gap = on_replay_gap
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.api_version = api_version

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and small JSON-safe kwargs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "channel": self.channel, "salesforce_conn_id": self.salesforce_conn_id, "replay_id": self.replay_id,
            "event_count": self.event_count, "filter": self.filter, "timeout": self.timeout,
            "on_replay_gap": self.on_replay_gap, "started_at": self.started_at, "api_version": self.api_version,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Subscribe, collect, and yield exactly one event."""
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        hook = SalesforceStreamingHook(self.salesforce_conn_id, api_version=self.api_version)

        async def close() -> None:
            if hook._async_session is not None:
                await hook._async_session.close()

        payload = await wait_for_events(
            lambda: hook.subscribe(self.channel, replay_id=self.replay_id,
                                   on_replay_gap=self.on_replay_gap),  # type: ignore[arg-type]
            source=self.channel, event_count=self.event_count, filter=self.filter, timeout=self.timeout,
            started_at=self.started_at, last_replay_id=self.replay_id, replay_id_of=lambda event: event.replay_id,
            close=close)
        self.log.info("Streaming trigger on %s: %s, %d event(s), last replay id %s", self.channel, payload["status"],
                      len(payload["events"]), payload["last_replay_id"])
        yield TriggerEvent(payload)


def _bad_channel(channel: Any) -> str:
    raise ValueError(f"channel must be one channel name like '/topic/MyTopic', got {channel!r}")


# ======================================================================================
# SalesforceEventTrigger section (owner: event-driven scheduling engineer)
# ======================================================================================
# Pacing (paced_by) is shared with the Pub/Sub event trigger; salesforce_events stays importable here.
from airflow_provider_salesforce_suite.triggers._pacing import (  # noqa: E402, F401 - salesforce_events re-exported
    PACE_TIMEOUT,
    pacing_key,
    pacing_kwargs,
    salesforce_events,
    validate_pacing,
)


class SalesforceEventTrigger(BaseEventTrigger):
    """Turn every event of a Salesforce streaming channel into an asset event.

    Use it in an asset watcher::

        Asset("salesforce://my-org/topic/NewOpportunities", watchers=[AssetWatcher(
            name="new_opportunities", trigger=SalesforceEventTrigger(channel="/topic/NewOpportunities"))])

    Each event fires a :class:`TriggerEvent` whose payload, ``{"channel", "replay_id", "payload",
    "created_date"}``, becomes the asset event's ``extra["payload"]``. Delivery is at-least-once:
    a replay id is stored in the asset's state store only after Airflow persisted the asset
    events up to it, and a restarted triggerer resumes after it, so an event can reach a DAG twice
    (same ``replay_id``) but is not lost while Salesforce retains it.

    Watchers on the same org (login URL and user) and channel in one triggerer share one CometD
    connection (Airflow's shared streams, ack mode).

    :param channel: ``/topic/<PushTopic>``, ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``,
        ``/event/<Name>__e`` or ``/u/<StreamingChannel>``.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param filter: only events matching this declarative filter fire (same format as
        ``SalesforceStreamingTrigger``'s ``filter``); others are skipped, their replay id still
        advances.
    :param replay: where an asset with no stored replay id starts: ``"new"`` (events published
        from now on, -1) or ``"all"`` (every event Salesforce still retains, -2).
    :param on_replay_gap: a stored replay id Salesforce no longer retains: ``"earliest"`` (default)
        replays every retained event and logs the gap, ``"fail"`` fails the trigger (Airflow
        restarts it, and it fails again until the stored id is cleared).
    :param api_version: overrides the connection's API version.
    :param paced_by: ids of the DAGs scheduled on this asset. Set it and every event reaches a run
        promptly despite Airflow 3.3's asset queue keeping the first event time of a burst
        (apache/airflow#56050, see docs/deployment.md): the events that arrive while a run is
        being queued become ONE asset event whose payload is ``{"channel", "replay_id",
        "events": [...]}`` (read both shapes with :func:`salesforce_events`), emitted once the
        previous one was consumed by a run of each DAG. Without it, each event is its own asset
        event and the tail of a burst can wait for the next change.
    :param pace_timeout: with ``paced_by``, seconds to wait for that run before emitting anyway
        (a paused DAG, ``max_active_runs`` reached for long).
    """

    def __init__(self, *, channel: str, salesforce_conn_id: str = "salesforce_suite_default",
                 filter: Mapping[str, Any] | None = None, replay: str = "new",  # noqa: A002 - public name
                 on_replay_gap: str = "earliest", api_version: str | None = None,
                 paced_by: Sequence[str] | None = None, pace_timeout: float = PACE_TIMEOUT) -> None:
        super().__init__()
        from airflow_provider_salesforce_suite.hooks._streaming.cometd import normalize_channels
        from airflow_provider_salesforce_suite.triggers._event_stream import REPLAY_POLICIES

        self.channel = normalize_channels(channel)[0] if isinstance(channel, str) else _bad_channel(channel)
        if replay not in REPLAY_POLICIES:
            raise ValueError(f"replay must be one of {sorted(REPLAY_POLICIES)}, not {replay!r}")
        if on_replay_gap not in ("fail", "earliest"):
            raise ValueError(f"on_replay_gap must be 'fail' or 'earliest', not {on_replay_gap!r}")
        self.salesforce_conn_id = salesforce_conn_id
        self.filter = validate_event_filter(filter)
        self._event_filter = compile_event_filter(self.filter)
        self.replay = replay
        self.on_replay_gap = on_replay_gap
        self.api_version = api_version
        self.paced_by, self.pace_timeout = validate_pacing(paced_by, pace_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs (pacing fields only when ``paced_by`` is set)."""
        cls = type(self)
        kwargs = {
            "channel": self.channel, "salesforce_conn_id": self.salesforce_conn_id, "filter": self.filter,
            "replay": self.replay, "on_replay_gap": self.on_replay_gap, "api_version": self.api_version,
        }
        kwargs.update(pacing_kwargs(self.paced_by, self.pace_timeout))
        return f"{cls.__module__}.{cls.__qualname__}", kwargs

    def shared_stream_key(self) -> Hashable:
        """One CometD connection per org (login URL, instance, user), API version and channel."""
        from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

        config = SalesforceBaseHook(self.salesforce_conn_id, api_version=self.api_version).config
        user = config.username or config.consumer_key or ""
        key = ("salesforce-streaming", config.login_url, config.instance_url or "", user,
               self.api_version or config.api_version, self.channel, self.replay, self.on_replay_gap)
        return (*key, *pacing_key(self.paced_by))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        """Ack mode: the producer commits replay ids once Airflow persisted the asset events."""
        from airflow_provider_salesforce_suite.triggers._event_stream import ReplayCommittingProducer

        return ReplayCommittingProducer(kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Register this watcher's asset state with the group, then one TriggerEvent per matching event."""
        from airflow_provider_salesforce_suite.triggers._event_stream import watch_shared_stream

        async for event in watch_shared_stream(shared_stream, self.asset_state_store, self._event_filter):
            yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone run (no shared stream): own connection, replay id stored after each event.

        The triggerer uses :meth:`filter_shared_stream`; this path serves callers that run the
        trigger directly. The store write follows the yield, so it is not persistence-gated.
        """
        from airflow_provider_salesforce_suite.triggers._event_stream import ReplayCommittingProducer

        stream = ReplayCommittingProducer(self.serialize()[1])
        await stream.register(self.asset_state_store, read=True)
        async for event in stream.events():
            if self._event_filter(event):
                yield TriggerEvent(event.to_dict())
            await stream.commit(event.replay_id)

