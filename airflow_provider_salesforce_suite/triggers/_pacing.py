"""Consumer-paced delivery for the asset-watcher triggers (``paced_by``), CometD and Pub/Sub alike.

Why: Airflow 3.3 queues an asset-triggered DAG run with one ``asset_dag_run_queue`` row per (asset,
DAG), inserted ``ON CONFLICT DO NOTHING``, so the row keeps the time of the *first* asset event of a
burst; the scheduler then consumes the asset events up to that time only and deletes the row. Every
later event of the burst stays in the database with no queue row until the next change arrives
(apache/airflow#56050; docs/deployment.md has the analysis, scripts/repro_asset_queue.py a
reproduction). A trigger cannot see the queue, but it can count the consuming DAG's runs through
the triggerer's supervisor (``GetDRCount``), which is enough to never emit an asset event while a
queue row may exist:

* the group's producer (:class:`~._event_stream.SharedReplayProducer`) hands the watchers one
  :class:`~._event_stream.EventBatch` at a time: every Salesforce event that arrived while the
  previous batch waited (capped at :data:`MAX_BATCH`) becomes ONE asset event;
* before emitting a batch it counts the runs of every ``paced_by`` DAG; after the batch's asset
  event is persisted it waits until each count grew, i.e. the scheduler created the run that
  consumed the event and deleted the queue row in the same transaction;
* so each asset event is registered with no queue row pending: its own row is newer than the
  event, the next run's window (previous run, row time] contains it, and no run is empty.

Replay ids are committed per batch exactly as for unpaced watchers (after Airflow persisted it),
so the at-least-once guarantee is unchanged; events waiting in the producer are not committed.
Position-only items (Pub/Sub keepalives) join the batch they arrive in and move its replay id; a
batch of positions only is passed on as a position, with no asset event and no run to wait for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.triggers._event_stream import SharedReplayProducer

log = logging.getLogger(__name__)

#: Most delivered items (events and keepalives) in one asset event (keeps ``asset_event.extra``
#: a few hundred kB).
MAX_BATCH = 500
#: Items read ahead of the batch being delivered; a full buffer stops reading the subscription
#: (Salesforce keeps the rest for replay).
READ_AHEAD = 10_000
#: Seconds between two run counts while waiting for the scheduler.
COUNT_INTERVAL = 1.0
#: ``pace_timeout``'s default: seconds to wait for the consuming run before delivering anyway.
PACE_TIMEOUT = 300.0


def validate_pacing(paced_by: Sequence[str] | None, pace_timeout: float) -> tuple[list[str] | None, float]:
    """Check a trigger's ``paced_by`` and ``pace_timeout``; ``(DAG ids or None, seconds)``.

    :raises ValueError: ``paced_by`` is not a non-empty list of DAG ids, or ``pace_timeout`` is not
        a positive number.
    """
    if paced_by is not None and (isinstance(paced_by, str) or not paced_by
                                 or not all(isinstance(d, str) and d for d in paced_by)):
        raise ValueError(f"paced_by must be a non-empty list of DAG ids, got {paced_by!r}")
    if isinstance(pace_timeout, bool) or not isinstance(pace_timeout, (int, float)) or pace_timeout <= 0:
        raise ValueError(f"pace_timeout must be a positive number of seconds, got {pace_timeout!r}")
    return (list(paced_by) if paced_by is not None else None), float(pace_timeout)


def pacing_kwargs(paced_by: list[str] | None, pace_timeout: float) -> dict[str, Any]:
    """The serialized pacing fields: none for an unpaced trigger (its kwargs stay as before)."""
    return {} if paced_by is None else {"paced_by": paced_by, "pace_timeout": pace_timeout}


def pacing_key(paced_by: list[str] | None) -> tuple[str, ...]:
    """The shared-stream key's suffix: paced watchers share a producer only with watchers paced by
    the same DAGs."""
    return () if paced_by is None else ("paced", *sorted(paced_by))


def pacing_from(kwargs: Mapping[str, Any]) -> Pacing | None:
    """The group's :class:`Pacing` from a trigger's serialized kwargs (``None``: unpaced)."""
    if not kwargs.get("paced_by"):
        return None
    return Pacing(kwargs["paced_by"], kwargs.get("pace_timeout") or PACE_TIMEOUT)


class Pacing:
    """One asset event per run of the ``paced_by`` DAGs, for one producer.

    :param paced_by: ids of the DAGs scheduled on the watched asset.
    :param pace_timeout: seconds to wait for the scheduler before delivering anyway.
    """

    def __init__(self, paced_by: Iterable[str], pace_timeout: float) -> None:
        self.paced_by: tuple[str, ...] = tuple(paced_by)
        self.pace_timeout = float(pace_timeout)
        self._resolution = asyncio.Event()

    async def stream(self, producer: SharedReplayProducer) -> AsyncIterator[tuple[Any, Any]]:
        """The producer's subscription as ``(StreamItem, replay id)`` batches, one in flight at a time."""
        from airflow_provider_salesforce_suite.triggers._event_stream import EventBatch, StreamItem

        buffer: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD)
        reader = asyncio.create_task(self._read(producer, buffer))
        try:
            while True:
                events, replay_id = [], None
                for delivered in await self._next_items(buffer, reader):
                    event, replay_id = producer.split(delivered)
                    if event is not None:
                        events.append(event)
                batch = EventBatch(events, producer.batch_header(replay_id)) if events else None
                before = await self._run_counts() if batch is not None else {}
                self._resolution.clear()  # set by resolved() once Airflow persisted this item
                yield StreamItem(producer, batch), replay_id
                await self._until_consumed(producer, batch, replay_id, before)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    @staticmethod
    async def _read(producer: SharedReplayProducer, buffer: asyncio.Queue[Any]) -> None:
        from airflow_provider_salesforce_suite.triggers._event_stream import SalesforceStreamAdvanceError

        async for delivered in producer.events():
            await buffer.put(delivered)
        raise SalesforceStreamAdvanceError(f"the subscription to {producer.source} ended")

    @staticmethod
    async def _next_items(buffer: asyncio.Queue[Any], reader: asyncio.Task) -> list[Any]:
        """The next delivered item (waiting for it), then whatever else is already buffered."""
        from airflow_provider_salesforce_suite.triggers._event_stream import SalesforceStreamAdvanceError

        getter = asyncio.ensure_future(buffer.get())
        try:
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if not getter.done() or getter.cancelled():
            reader.result()  # the subscription failed: raise its error
            raise SalesforceStreamAdvanceError("the event reader stopped")
        items = [getter.result()]
        while len(items) < MAX_BATCH and not buffer.empty():
            items.append(buffer.get_nowait())
        return items

    def resolved(self) -> None:
        """The producer committed the item in flight (Airflow persisted its asset events)."""
        self._resolution.set()

    async def _until_consumed(self, producer: SharedReplayProducer, batch: Any, replay_id: Any,
                              before: dict[str, int]) -> None:
        """Wait until the item was persisted and, if it became an asset event, a run consumed it."""
        deadline = time.monotonic() + self.pace_timeout
        try:
            await asyncio.wait_for(self._resolution.wait(), timeout=self.pace_timeout)
        except asyncio.TimeoutError:
            return  # the group ends anyway (ack timeout); nothing to pace
        if batch is None or not batch.fired:
            return
        while True:
            counts = await self._run_counts()
            if all(counts[dag_id] > before[dag_id] for dag_id in self.paced_by):
                return
            if time.monotonic() > deadline:
                log.warning("No new run of %s within %.0f s of the asset event for replay id %s of %s; "
                            "delivering the next events anyway (they may wait for a later change)",
                            ", ".join(self.paced_by), self.pace_timeout, producer.describe(replay_id),
                            producer.source)
                return
            await asyncio.sleep(COUNT_INTERVAL)

    async def _run_counts(self) -> dict[str, int]:
        return {dag_id: await self.dag_run_count(dag_id) for dag_id in self.paced_by}

    async def dag_run_count(self, dag_id: str) -> int:
        """How many runs ``dag_id`` has (the triggerer's supervisor asks the API server).

        :param dag_id: a DAG scheduled on the watched asset.
        """
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        return await sync_to_async(RuntimeTaskInstance.get_dr_count)(dag_id=dag_id)


def salesforce_events(asset_events: Iterable[Any]) -> list[dict[str, Any]]:
    """The Salesforce events behind a run's ``triggering_asset_events[asset]``, in order.

    An unpaced watcher (``SalesforceEventTrigger`` or ``SalesforcePubSubEventTrigger``) puts one
    event in each asset event's ``extra["payload"]``; a paced one (``paced_by``) puts a batch,
    ``{"events": [...]}``. Either way this returns the events' dicts (CometD: ``{"channel",
    "replay_id", "payload", "created_date"}``; Pub/Sub: ``{"topic", "replay_id", "event_id",
    "schema_id", "payload"}``); key your work on ``replay_id`` to drop the re-deliveries
    at-least-once delivery allows.

    :param asset_events: asset events (objects with ``extra``, or their dicts).
    """
    found: list[dict[str, Any]] = []
    for asset_event in asset_events:
        extra = asset_event.get("extra") if isinstance(asset_event, Mapping) else asset_event.extra
        payload = (extra or {}).get("payload") or {}
        found.extend(payload["events"] if "events" in payload else [payload] if payload else [])
    return found
