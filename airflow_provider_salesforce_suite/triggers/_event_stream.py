"""The shared CometD stream behind :class:`~.streaming.SalesforceEventTrigger` (Airflow ack mode).

One :class:`ReplayCommittingProducer` exists per shared-stream group, that is per org and channel
in one triggerer. It owns the one CometD subscription and is the only place replay ids are
committed: Airflow calls :meth:`ReplayCommittingProducer.advance` only for events every watcher
of the group moved past *and* whose trigger events the triggerer persisted, so a replay id in
the asset state store never runs ahead of the asset events derived from it.

The producer learns which assets to commit to from the watchers themselves: every raw event it
broadcasts carries the producer (:class:`StreamItem.producer`), and a watcher registers its asset
state store on the first raw event it sees. The first raw event of a poll is a
:class:`StreamJoin` carrying no Salesforce event: the watchers online then answer it with their
stored replay ids, and the CometD subscription starts after the oldest of them. No module-level
state is kept: the producer is the group's object and dies with it, so any number of triggerers
can run these triggers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

if TYPE_CHECKING:
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

log = logging.getLogger(__name__)

#: Replay id meaning "only events published from now on" (Salesforce's -1).
REPLAY_NEW = -1
#: Replay id meaning "every event still retained" (Salesforce's -2).
REPLAY_ALL = -2
#: ``replay`` policy names for the first subscription of an asset that has no stored replay id.
REPLAY_POLICIES: Mapping[str, int] = {"new": REPLAY_NEW, "all": REPLAY_ALL}
#: Seconds the producer waits for the watchers online at start to report their stored replay ids.
JOIN_TIMEOUT = 60.0


class SalesforceStreamAdvanceError(RuntimeError):
    """A streamed event was not accepted by every watcher; the group restarts from the last commit."""


def replay_state_key(channel: str) -> str:
    """Key of a channel's last committed replay id in an asset's state store.

    :param channel: the streaming channel (``/topic/X``, ``/data/...``, ``/event/...``, ``/u/...``).
    """
    return f"salesforce.replay_id:{channel}"


def _accessors(store: AssetStateStoreAccessors | None) -> list[Any]:
    """The per-asset accessors behind a trigger's ``asset_state_store`` (one per watched asset).

    The ONE place that reads Airflow internals (docs/deployment.md, "Asset state across
    triggerers"): Airflow 3.3 hands an event trigger ``AssetStateStoreAccessors`` built from the
    assets that watch it, and has no public way to list them (only ``store[asset]`` for a known
    asset, and ``store.aget``/``aset`` when there is exactly one). Its two dicts ``_by_name`` and
    ``_by_uri`` hold them; tests/triggers/test_airflow_internals.py checks that shape on the installed
    Airflow. If a later Airflow drops them, the container's public single-asset methods serve
    (the usual one-asset watcher); a trigger watched by several assets then fails loudly on its
    first read (Airflow's ValueError) rather than committing to none of them.
    """
    if store is None:
        return []
    by_name, by_uri = getattr(store, "_by_name", None), getattr(store, "_by_uri", None)
    if isinstance(by_name, dict) and isinstance(by_uri, dict):
        return [*by_name.values(), *by_uri.values()]
    return [store]


@dataclass(frozen=True)
class StreamItem:
    """A raw event of the shared stream: a Salesforce event, or ``None`` for the join round.

    :param producer: the group's producer, where watchers register their state stores.
    :param event: the delivered ``StreamingEvent`` (``None`` for :class:`StreamJoin`).
    """

    producer: ReplayCommittingProducer
    event: Any = None


class StreamJoin(StreamItem):
    """First raw event of a poll: watchers answer with their stored replay ids."""


class ReplayCommittingProducer(SharedStreamProducer):
    """Ack-mode producer: one CometD subscription, replay ids committed after Airflow persisted.

    :param kwargs: the serialized kwargs of one trigger of the group (only fields that are part
        of the shared-stream key are read: connection id, channel, API version, replay policy).
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.conn_id: str = kwargs["salesforce_conn_id"]
        self.channel: str = kwargs["channel"]
        self.api_version: str | None = kwargs.get("api_version")
        self.replay: str = kwargs.get("replay", "new")
        self.on_replay_gap: str = kwargs.get("on_replay_gap", "earliest")
        self.state_key = replay_state_key(self.channel)
        # accessor -> stored replay id (None: nothing stored yet); accessors hash by asset.
        self._stores: dict[Any, int | None] = {}
        self._joined = asyncio.Event()
        self._committed: int | None = None
        self.start_replay_id: int | None = None

    async def register(self, store: AssetStateStoreAccessors | None, *, read: bool) -> None:
        """Make the producer commit to a watcher's assets too.

        :param store: the watcher's ``asset_state_store`` (``None`` outside an asset watcher).
        :param read: read the stored replay ids (the join round) rather than only registering.
        """
        for accessor in _accessors(store):
            if accessor in self._stores:
                continue
            stored = await accessor.aget(self.state_key) if read else None
            self._stores[accessor] = stored if isinstance(stored, int) else None

    def _start_from(self) -> int:
        stored = [value for value in self._stores.values() if value is not None]
        if stored:
            # The oldest position wins: one connection serves every asset, and replaying a
            # few events twice is allowed (at-least-once) where skipping one is not.
            return min(stored)
        return REPLAY_POLICIES[self.replay]

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        """Join round, then the CometD subscription; yields ``(StreamItem, replay_id)`` forever."""
        yield StreamJoin(self), None
        try:
            await asyncio.wait_for(self._joined.wait(), timeout=JOIN_TIMEOUT)
        except asyncio.TimeoutError:
            raise SalesforceStreamAdvanceError(
                f"watchers of {self.channel} did not report their replay ids within {JOIN_TIMEOUT:.0f} s"
            ) from None
        async for event in self.events():
            yield StreamItem(self, event), event.replay_id
        raise SalesforceStreamAdvanceError(f"the subscription to {self.channel} ended")

    async def events(self) -> AsyncIterator[Any]:
        """Subscribe after the oldest stored replay id of the registered assets (or the policy)."""
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        self.start_replay_id = self._start_from()
        log.info("Subscribing to %s from replay id %s for %d asset(s)", self.channel, self.start_replay_id,
                 len(self._stores))
        hook = SalesforceStreamingHook(salesforce_conn_id=self.conn_id, api_version=self.api_version)
        try:
            async with aclosing(hook.subscribe(self.channel, replay_id=self.start_replay_id,
                                               on_replay_gap=self.on_replay_gap)) as stream:  # type: ignore[arg-type]
                async for event in stream:
                    yield event
        finally:
            if hook._async_session is not None:  # the hook's aiohttp session outlives the subscription
                await hook._async_session.close()

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Commit the replay id of the last event of the batch's accepted prefix.

        An event a watcher failed on (ack timeout, overflow) or that nobody was online for stops
        the commit there and ends the group, so a new poll replays from the last commit.

        :param batch: resolved events of the one lane, in delivery order.
        """
        last: int | None = None
        refused: int | None = None
        for item in batch:
            if item.broker_payload is None:  # the join round
                self._joined.set()
                continue
            outcome = item.outcome
            if outcome.failed or not (outcome.acked or outcome.rejected):
                refused = item.broker_payload
                break
            last = item.broker_payload
        if last is not None:
            await self.commit(last)
        if refused is not None:
            raise SalesforceStreamAdvanceError(
                f"event {refused} of {self.channel} was not persisted for every watcher; replaying from "
                f"{self._committed if self._committed is not None else self.start_replay_id}"
            )

    async def commit(self, replay_id: int) -> None:
        """Store ``replay_id`` in every registered asset's state (never moving backwards).

        :param replay_id: the last replay id whose asset events Airflow persisted.
        """
        if self._committed is not None and replay_id <= self._committed:
            return
        for accessor in list(self._stores):
            try:
                await accessor.aset(self.state_key, replay_id)
            except Exception:
                # A watcher whose asset is gone must not stop the others from advancing; a live
                # asset missing one write replays a few events after a restart (duplicates only).
                log.warning("Could not store replay id %s of %s in %r", replay_id, self.channel, accessor,
                            exc_info=True)
        self._committed = replay_id
