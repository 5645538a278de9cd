"""Streaming API triggers.

Two sections, two owners: ``SalesforceStreamingTrigger`` (deferrable tasks and the sensor) and
``SalesforceEventTrigger`` (event-driven scheduling through asset watchers). Keep edits inside
your section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Mapping
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

# ======================================================================================
# SalesforceStreamingTrigger section (owner: streaming hook engineer)
# ======================================================================================


# ======================================================================================
# SalesforceEventTrigger section (owner: event-driven scheduling engineer)
# ======================================================================================


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
    """

    def __init__(self, *, channel: str, salesforce_conn_id: str = "salesforce_suite_default",
                 filter: Mapping[str, Any] | None = None, replay: str = "new",  # noqa: A002 - public name
                 on_replay_gap: str = "earliest", api_version: str | None = None) -> None:
        super().__init__()
        from airflow_provider_salesforce_suite.triggers._event_stream import REPLAY_POLICIES

        if not isinstance(channel, str) or not channel.startswith(("/topic/", "/data/", "/event/", "/u/")):
            raise ValueError(
                f"channel must be /topic/<name>, /data/<event>, /event/<name>__e or /u/<name>, not {channel!r}"
            )
        if replay not in REPLAY_POLICIES:
            raise ValueError(f"replay must be one of {sorted(REPLAY_POLICIES)}, not {replay!r}")
        if on_replay_gap not in ("fail", "earliest"):
            raise ValueError(f"on_replay_gap must be 'fail' or 'earliest', not {on_replay_gap!r}")
        self.channel = channel
        self.salesforce_conn_id = salesforce_conn_id
        self.filter = dict(filter) if filter else None
        self._event_filter = _compile_event_filter(self.filter)
        self.replay = replay
        self.on_replay_gap = on_replay_gap
        self.api_version = api_version

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "channel": self.channel, "salesforce_conn_id": self.salesforce_conn_id, "filter": self.filter,
            "replay": self.replay, "on_replay_gap": self.on_replay_gap, "api_version": self.api_version,
        }

    def shared_stream_key(self) -> Hashable:
        """One CometD connection per org (login URL, instance, user), API version and channel."""
        from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

        config = SalesforceBaseHook(self.salesforce_conn_id, api_version=self.api_version).config
        user = config.username or config.consumer_key or ""
        return ("salesforce-streaming", config.login_url, config.instance_url or "", user,
                self.api_version or config.api_version, self.channel, self.replay, self.on_replay_gap)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        """Ack mode: the producer commits replay ids once Airflow persisted the asset events."""
        from airflow_provider_salesforce_suite.triggers._event_stream import ReplayCommittingProducer

        return ReplayCommittingProducer(kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Register this watcher's asset state with the group, then one TriggerEvent per matching event."""
        from airflow_provider_salesforce_suite.triggers._event_stream import StreamJoin

        async for item in shared_stream:
            # The join round reads this watcher's stored replay id; a watcher that joined later
            # registers on its first event so commits reach its asset too.
            await item.producer.register(self.asset_state_store, read=isinstance(item, StreamJoin))
            if item.event is not None and self._event_filter(item.event):
                yield TriggerEvent(item.event.to_dict())

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

def _compile_event_filter(spec: Mapping[str, Any] | None) -> Any:
    """A predicate over ``StreamingEvent`` from the declarative filter (shared with the task trigger)."""
    if not spec:
        return lambda event: True
    raise NotImplementedError("filter support lands with the streaming trigger's filter helper")
