"""Consumer-paced delivery for :class:`~.streaming.SalesforceEventTrigger` (``paced_by``).

Why: Airflow 3.3 queues an asset-triggered DAG run with one ``asset_dag_run_queue`` row per (asset,
DAG), inserted ``ON CONFLICT DO NOTHING``, so the row keeps the time of the *first* asset event of a
burst; the scheduler then consumes the asset events up to that time only and deletes the row. Every
later event of the burst stays in the database with no queue row until the next change arrives
(apache/airflow#56050; docs/deployment.md has the analysis, scripts/repro_asset_queue.py a
reproduction). A trigger cannot see the queue, but it can count the consuming DAG's runs through
the triggerer's supervisor (``GetDRCount``), which is enough to never emit an asset event while a
queue row may exist:

* the producer hands the watchers one :class:`EventBatch` at a time: every Salesforce event that
  arrived while the previous batch waited (capped at :data:`MAX_BATCH`) becomes ONE asset event;
* before emitting a batch it counts the runs of every ``paced_by`` DAG; after the batch's asset
  event is persisted it waits until each count grew, i.e. the scheduler created the run that
  consumed the event and deleted the queue row in the same transaction;
* so each asset event is registered with no queue row pending: its own row is newer than the
  event, the next run's window (previous run, row time] contains it, and no run is empty.

Replay ids are committed per batch exactly as for unpaced watchers (after Airflow persisted it),
so the at-least-once guarantee is unchanged; events waiting in the producer are not committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.shared_stream import AdvanceItem

from airflow_provider_salesforce_suite.triggers._event_stream import (
    JOIN_TIMEOUT,
    ReplayCommittingProducer,
    SalesforceStreamAdvanceError,
    StreamItem,
    StreamJoin,
)

log = logging.getLogger(__name__)

#: Most Salesforce events in one asset event (keeps ``asset_event.extra`` a few hundred kB).
MAX_BATCH = 500
#: Events read ahead of the batch being delivered; a full buffer stops reading CometD (Salesforce
#: keeps the rest for replay).
READ_AHEAD = 10_000
#: Seconds between two run counts while waiting for the scheduler.
COUNT_INTERVAL = 1.0


@dataclass
class EventBatch:
    """The Salesforce events that become one asset event (delivery order).

    :param events: ``StreamingEvent`` objects.
    :param fired: set by a watcher that emitted an asset event for the batch (some event matched
        its filter): only then is there a run to wait for.
    """

    events: list[Any]
    fired: bool = field(default=False)

    @property
    def replay_id(self) -> int:
        """The last event's replay id (what is committed once the batch is persisted)."""
        return self.events[-1].replay_id

    def payload(self, matching: Sequence[Any]) -> dict[str, Any]:
        """The asset event's payload: ``{"channel", "replay_id", "events": [event dicts]}``.

        :param matching: the batch's events this watcher's filter keeps.
        """
        return {"channel": self.events[-1].channel, "replay_id": self.replay_id,
                "events": [event.to_dict() for event in matching]}


class PacedReplayProducer(ReplayCommittingProducer):
    """Ack-mode producer delivering :class:`EventBatch` es, one per run of the ``paced_by`` DAGs.

    :param kwargs: serialized kwargs of a trigger of the group; ``paced_by`` (DAG ids) and
        ``pace_timeout`` (seconds to wait for the scheduler before delivering anyway) are read here.
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        super().__init__(kwargs)
        self.paced_by: tuple[str, ...] = tuple(kwargs["paced_by"])
        self.pace_timeout: float = float(kwargs.get("pace_timeout") or 300.0)
        self._resolved: int | None = None
        self._resolution = asyncio.Event()

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        """Join round, then batches: ``(StreamItem(event=EventBatch), last replay id)`` forever."""
        yield StreamJoin(self), None
        try:
            await asyncio.wait_for(self._joined.wait(), timeout=JOIN_TIMEOUT)
        except asyncio.TimeoutError:
            raise SalesforceStreamAdvanceError(
                f"watchers of {self.channel} did not report their replay ids within {JOIN_TIMEOUT:.0f} s"
            ) from None
        buffer: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD)
        reader = asyncio.create_task(self._read(buffer))
        try:
            while True:
                batch = EventBatch(await self._next_events(buffer, reader))
                before = await self._run_counts()
                yield StreamItem(self, batch), batch.replay_id
                await self._until_consumed(batch, before)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, buffer: asyncio.Queue[Any]) -> None:
        async for event in self.events():
            await buffer.put(event)
        raise SalesforceStreamAdvanceError(f"the subscription to {self.channel} ended")

    @staticmethod
    async def _next_events(buffer: asyncio.Queue[Any], reader: asyncio.Task) -> list[Any]:
        """The next event (waiting for it), then whatever else is already buffered."""
        getter = asyncio.ensure_future(buffer.get())
        try:
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if not getter.done() or getter.cancelled():
            reader.result()  # the subscription failed: raise its error
            raise SalesforceStreamAdvanceError("the event reader stopped")
        events = [getter.result()]
        while len(events) < MAX_BATCH and not buffer.empty():
            events.append(buffer.get_nowait())
        return events

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Commit as usual, then wake :meth:`open_stream` waiting for the batch's resolution."""
        await super().advance(batch)
        resolved = [item.broker_payload for item in batch if item.broker_payload is not None]
        if resolved:
            self._resolved = max(resolved[-1], self._resolved if self._resolved is not None else resolved[-1])
            self._resolution.set()

    async def _until_consumed(self, batch: EventBatch, before: dict[str, int]) -> None:
        """Wait until the batch was persisted and, if it became an asset event, a run consumed it."""
        deadline = time.monotonic() + self.pace_timeout
        while self._resolved is None or self._resolved < batch.replay_id:
            try:
                await asyncio.wait_for(self._resolution.wait(), timeout=max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break  # the group ends anyway (ack timeout); nothing to pace
            self._resolution.clear()  # the loop condition re-reads what advance() recorded
        if not batch.fired:
            return
        while True:
            counts = await self._run_counts()
            if all(counts[dag_id] > before[dag_id] for dag_id in self.paced_by):
                return
            if time.monotonic() > deadline:
                log.warning("No new run of %s within %.0f s of the asset event for replay id %s of %s; "
                            "delivering the next events anyway (they may wait for a later change)",
                            ", ".join(self.paced_by), self.pace_timeout, batch.replay_id, self.channel)
                return
            await asyncio.sleep(COUNT_INTERVAL)

    async def _run_counts(self) -> dict[str, int]:
        return {dag_id: await self.dag_run_count(dag_id) for dag_id in self.paced_by}

    async def dag_run_count(self, dag_id: str) -> int:
        """How many runs ``dag_id`` has (the triggerer's supervisor asks the API server).

        :param dag_id: a DAG scheduled on the watched asset.
        """
        from asgiref.sync import sync_to_async
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return await sync_to_async(RuntimeTaskInstance.get_dr_count)(dag_id=dag_id)
