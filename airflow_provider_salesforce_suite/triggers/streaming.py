"""Streaming API triggers.

Two sections, two owners: ``SalesforceStreamingTrigger`` (deferrable tasks and the sensor) and
``SalesforceEventTrigger`` (event-driven scheduling through asset watchers). Keep edits inside
your section.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterable, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

# ======================================================================================
# SalesforceStreamingTrigger section (owner: streaming hook engineer)
# ======================================================================================
import asyncio  # noqa: E402 - this section's own imports, kept inside the section
import time  # noqa: E402
from contextlib import aclosing  # noqa: E402

from airflow.triggers.base import BaseTrigger  # noqa: E402

STREAM_SUCCESS, STREAM_TIMEOUT, STREAM_ERROR = "success", "timeout", "error"
_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, list):
        return all(_json_safe(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def validate_event_filter(spec: Any) -> dict[str, Any] | None:
    """Check a declarative event filter: ``{"dotted.path": value, ...}`` over the event's ``payload``
    (Salesforce's ``data`` object), every pair must be equal (AND). Paths step into objects by key
    and into lists by index: ``{"sobject.StageName": "Closed Won"}``,
    ``{"event.type": "updated"}``, ``{"payload.ChangeEventHeader.changeType": "UPDATE"}``.

    :return: the filter as a plain dict, or None for no filter.
    :raises ValueError: not a mapping, an empty or non-string path, or a non-JSON value.
    """
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(f"filter must be a mapping of dotted paths to values, got {type(spec).__name__}")
    for path, value in spec.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise ValueError(f"filter paths are dotted field paths like 'sobject.StageName', got {path!r}")
        if not _json_safe(value):
            raise ValueError(f"filter value for {path!r} must be JSON (string, number, bool, null, list, "
                             f"object), got {type(value).__name__}")
    return dict(spec)


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if isinstance(document, Mapping) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return False, None
    return True, document


def compile_event_filter(spec: Mapping[str, Any] | None) -> Any:
    """A predicate over a ``StreamingEvent`` (or its dict) for :func:`validate_event_filter`'s format.

    :param spec: the filter, or None (every event matches).
    """
    checks = validate_event_filter(spec)
    if not checks:
        return lambda event: True

    def matches(event: Any) -> bool:
        payload = event.get("payload") if isinstance(event, Mapping) else event.payload
        for path, wanted in checks.items():
            found, value = _lookup(payload, path)
            if not found or value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
                return False
        return True

    return matches


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
        if isinstance(event_count, bool) or not isinstance(event_count, int) or event_count < 1:
            raise ValueError(f"event_count must be an int >= 1, got {event_count!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        validate_gap_policy(on_replay_gap)
        self.salesforce_conn_id = salesforce_conn_id
        self.event_count = event_count
        self.filter = validate_event_filter(filter)
        self.timeout = None if timeout is None else float(timeout)
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

        matches = compile_event_filter(self.filter)
        events: list[dict[str, Any]] = []
        last_replay_id = self.replay_id
        remaining = None if self.timeout is None else self.timeout - (time.time() - self.started_at)
        hook = SalesforceStreamingHook(self.salesforce_conn_id, api_version=self.api_version)
        status, message = STREAM_SUCCESS, None
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                async with aclosing(hook.subscribe(self.channel, replay_id=self.replay_id,
                                                   on_replay_gap=self.on_replay_gap)) as stream:  # type: ignore[arg-type]
                    async for event in stream:
                        last_replay_id = event.replay_id
                        if matches(event):
                            events.append(event.to_dict())
                            if len(events) >= self.event_count:
                                break
        except TimeoutError:
            status = STREAM_TIMEOUT
            message = (f"{len(events)} of {self.event_count} event(s) on {self.channel} after "
                       f"{time.time() - self.started_at:.1f}s (timeout {self.timeout:g}s)")
        except Exception as exc:  # the task decides; the event carries the text, never the object
            status, message = STREAM_ERROR, f"{type(exc).__name__}: {exc}"
        finally:
            if hook._async_session is not None:
                await hook._async_session.close()
        self.log.info("Streaming trigger on %s: %s, %d event(s), last replay id %s", self.channel, status,
                      len(events), last_replay_id)
        yield TriggerEvent({"status": status, "events": events, "last_replay_id": last_replay_id, "message": message})


def _bad_channel(channel: Any) -> str:
    raise ValueError(f"channel must be one channel name like '/topic/MyTopic', got {channel!r}")


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
                 paced_by: Sequence[str] | None = None, pace_timeout: float = 300.0) -> None:
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
        if paced_by is not None and (isinstance(paced_by, str) or not paced_by
                                     or not all(isinstance(d, str) and d for d in paced_by)):
            raise ValueError(f"paced_by must be a non-empty list of DAG ids, got {paced_by!r}")
        self.paced_by = list(paced_by) if paced_by is not None else None
        if isinstance(pace_timeout, bool) or not isinstance(pace_timeout, (int, float)) or pace_timeout <= 0:
            raise ValueError(f"pace_timeout must be a positive number of seconds, got {pace_timeout!r}")
        self.pace_timeout = float(pace_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs (pacing fields only when ``paced_by`` is set)."""
        cls = type(self)
        kwargs = {
            "channel": self.channel, "salesforce_conn_id": self.salesforce_conn_id, "filter": self.filter,
            "replay": self.replay, "on_replay_gap": self.on_replay_gap, "api_version": self.api_version,
        }
        if self.paced_by is not None:
            kwargs.update(paced_by=self.paced_by, pace_timeout=self.pace_timeout)
        return f"{cls.__module__}.{cls.__qualname__}", kwargs

    def shared_stream_key(self) -> Hashable:
        """One CometD connection per org (login URL, instance, user), API version and channel."""
        from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

        config = SalesforceBaseHook(self.salesforce_conn_id, api_version=self.api_version).config
        user = config.username or config.consumer_key or ""
        key = ("salesforce-streaming", config.login_url, config.instance_url or "", user,
               self.api_version or config.api_version, self.channel, self.replay, self.on_replay_gap)
        # Paced watchers share a producer only with watchers paced by the same DAGs.
        return key if self.paced_by is None else (*key, "paced", *sorted(self.paced_by))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        """Ack mode: the producer commits replay ids once Airflow persisted the asset events."""
        if kwargs.get("paced_by"):
            from airflow_provider_salesforce_suite.triggers._pacing import PacedReplayProducer

            return PacedReplayProducer(kwargs)
        from airflow_provider_salesforce_suite.triggers._event_stream import ReplayCommittingProducer

        return ReplayCommittingProducer(kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Register this watcher's asset state with the group, then one TriggerEvent per matching
        event (per batch with matching events, when paced)."""
        from airflow_provider_salesforce_suite.triggers._event_stream import StreamJoin

        async for item in shared_stream:
            # The join round reads this watcher's stored replay id; a watcher that joined later
            # registers on its first event so commits reach its asset too.
            await item.producer.register(self.asset_state_store, read=isinstance(item, StreamJoin))
            if item.event is None:
                continue
            events = getattr(item.event, "events", None)
            if events is None:
                if self._event_filter(item.event):
                    yield TriggerEvent(item.event.to_dict())
                continue
            matching = [event for event in events if self._event_filter(event)]
            if matching:
                item.event.fired = True  # before the yield: the producer then waits for the run
                yield TriggerEvent(item.event.payload(matching))

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


def salesforce_events(asset_events: Iterable[Any]) -> list[dict[str, Any]]:
    """The Salesforce events behind a run's ``triggering_asset_events[asset]``, in order.

    An unpaced :class:`SalesforceEventTrigger` puts one event in each asset event's
    ``extra["payload"]``; a paced one (``paced_by``) puts a batch, ``{"events": [...]}``. Either
    way this returns ``{"channel", "replay_id", "payload", "created_date"}`` dicts; key your work
    on ``replay_id`` to drop the re-deliveries at-least-once delivery allows.

    :param asset_events: asset events (objects with ``extra``, or their dicts).
    """
    found: list[dict[str, Any]] = []
    for asset_event in asset_events:
        extra = asset_event.get("extra") if isinstance(asset_event, Mapping) else asset_event.extra
        payload = (extra or {}).get("payload") or {}
        found.extend(payload["events"] if "events" in payload else [payload] if payload else [])
    return found
