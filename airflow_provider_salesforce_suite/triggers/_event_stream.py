"""The shared event stream behind the asset-watcher triggers (Airflow ack mode).

One producer exists per shared-stream group, that is per org and channel (CometD) or topic /
managed subscription (Pub/Sub) in one triggerer. It owns the one subscription and is the only
place replay ids are committed: Airflow calls :meth:`SharedReplayProducer.advance` only for
events every watcher of the group moved past *and* whose trigger events the triggerer persisted,
so a replay id in the asset state store (or a managed subscription's commit on Salesforce) never
runs ahead of the asset events derived from it.

The producer learns which assets to commit to from the watchers themselves: every raw event it
broadcasts carries the producer (:class:`StreamItem.producer`), and a watcher registers its asset
state store on the first raw event it sees. The first raw event of a poll is a
:class:`StreamJoin` carrying no Salesforce event: the watchers online then answer it with their
stored replay ids, and the subscription starts after the oldest of them. No module-level state is
kept: the producer is the group's object and dies with it, so any number of triggerers can run
these triggers.

:class:`SharedReplayProducer` is that mechanism; the APIs differ only in what a replay id is and
how the subscription is opened: :class:`ReplayCommittingProducer` (CometD: an ``int`` stored as
is) here, ``PubSubReplayProducer`` in ``_pubsub_stream`` (``bytes`` stored as base64 text).
Either can be paced (``paced_by``): :class:`~._pacing.Pacing` then turns the subscription into
one :class:`EventBatch` per run of the consuming DAGs (Airflow 3.3's asset-queue bug).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from airflow_provider_salesforce_suite.triggers._pacing import pacing_from

if TYPE_CHECKING:
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    from airflow_provider_salesforce_suite.triggers._pacing import Pacing

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
    :param event: the delivered event (``StreamingEvent`` or ``PubSubEvent``); ``None`` for
        :class:`StreamJoin` and for a position-only item (a Pub/Sub keepalive).
    """

    producer: SharedReplayProducer
    event: Any = None


class StreamJoin(StreamItem):
    """First raw event of a poll: watchers answer with their stored replay ids."""


@dataclass
class EventBatch:
    """The Salesforce events that become ONE asset event of a paced watcher (delivery order).

    :param events: the delivered events (``StreamingEvent`` or ``PubSubEvent``).
    :param header: the asset event payload's fields besides ``events``: the source (``channel`` or
        ``topic``) and the batch's last ``replay_id`` as the API's payloads spell it.
    :param fired: set by a watcher that emitted an asset event for the batch (some event matched
        its filter): only then is there a run to wait for.
    """

    events: list[Any]
    header: dict[str, Any]
    fired: bool = False

    def payload(self, matching: Sequence[Any]) -> dict[str, Any]:
        """The asset event's payload: the header and ``"events"`` (event dicts).

        :param matching: the batch's events this watcher's filter keeps.
        """
        return {**self.header, "events": [event.to_dict() for event in matching]}


# A StreamItem whose event is None and that is not a StreamJoin carries only a position (a
# Pub/Sub keepalive's latest replay id): watchers skip it, and once every watcher moved past it
# (after the events before it were persisted) the producer commits it, which keeps the stored id
# within Salesforce's retention on a quiet topic.


async def watch_shared_stream(shared_stream: AsyncIterator[StreamItem], store: AssetStateStoreAccessors | None,
                              matches: Callable[[Any], bool]) -> AsyncIterator[TriggerEvent]:
    """A watcher's side of the group: register its asset state with the producer, then one
    :class:`TriggerEvent` (the event's ``to_dict()``) per matching event.

    Each trigger event is yielded before the next raw event is pulled, which is how Airflow binds
    it to the raw event it came from (ack mode).

    :param shared_stream: what Airflow's shared-stream manager hands ``filter_shared_stream``.
    :param store: the watcher's ``asset_state_store``.
    :param matches: the watcher's compiled filter.
    """
    registered_with: SharedReplayProducer | None = None
    async for item in shared_stream:
        # The join round reads this watcher's stored replay id; a watcher that joined later
        # registers on its first event so commits reach its asset too (once per producer: a
        # restarted group brings a new one).
        if item.producer is not registered_with or isinstance(item, StreamJoin):
            await item.producer.register(store, read=isinstance(item, StreamJoin))
            registered_with = item.producer
        if isinstance(item.event, EventBatch):  # paced: the batch's matching events, one trigger event
            matching = [event for event in item.event.events if matches(event)]
            if matching:
                item.event.fired = True  # before the yield: the producer then waits for the run
                yield TriggerEvent(item.event.payload(matching))
        elif item.event is not None and matches(item.event):
            yield TriggerEvent(item.event.to_dict())


class SharedReplayProducer(SharedStreamProducer):
    """Ack-mode producer: one subscription, replay ids committed after Airflow persisted the events.

    Subclasses say what a replay id is (:meth:`load_replay_id`, :meth:`dump_replay_id`,
    :meth:`compare_replay_ids`), where a subscription starts (:meth:`resume_after`,
    :meth:`policy_start`, :meth:`unordered_start`) and open it (:meth:`events`).

    :param source: the channel or topic (or managed subscription) the group streams, for messages.
    :param state_key: the key of the last committed replay id in each asset's state store.
    :param pacing: deliver :class:`EventBatch` es paced by the consuming DAGs' runs (``paced_by``).
    """

    def __init__(self, source: str, state_key: str, pacing: Pacing | None = None) -> None:
        self.source = source
        self.state_key = state_key
        self.pacing = pacing
        # accessor -> stored replay id (None: nothing stored yet); accessors hash by asset.
        self._stores: dict[Any, Any] = {}
        self._joined = asyncio.Event()
        self._committed: Any = None
        self.start_replay_id: Any = None

    # --- what a replay id is (per API) -------------------------------------------------------

    def load_replay_id(self, stored: Any) -> Any:
        """The replay id a state store holds (``None`` for nothing usable).

        :param stored: the JSON value read from the asset state store.
        """
        raise NotImplementedError

    def dump_replay_id(self, replay_id: Any) -> Any:
        """The JSON value stored for ``replay_id``.

        :param replay_id: a delivered event's replay id.
        """
        raise NotImplementedError

    def compare_replay_ids(self, left: Any, right: Any) -> int | None:
        """-1, 0 or 1 as ``left`` is older than, the same as or newer than ``right``; ``None`` when
        the two cannot be ordered."""
        raise NotImplementedError

    def describe(self, replay_id: Any) -> str:
        """``replay_id`` as text for logs and errors."""
        return str(replay_id)

    # --- where a subscription starts (per API) ---------------------------------------------

    def resume_after(self, replay_id: Any) -> Any:
        """The start position that delivers the events after ``replay_id``."""
        return replay_id

    def policy_start(self) -> Any:
        """The start position for assets with nothing stored (the trigger's replay policy)."""
        raise NotImplementedError

    def unordered_start(self) -> Any:
        """The start position when the stored ids cannot be ordered (replay everything retained)."""
        raise NotImplementedError

    def events(self) -> AsyncIterator[Any]:
        """Subscribe from :meth:`start_position` and yield what is delivered (see :meth:`split`)."""
        raise NotImplementedError

    def split(self, delivered: Any) -> tuple[Any, Any]:
        """``(event or None, replay id)`` of something :meth:`events` yielded: an event, or a
        position-only message (a keepalive) whose replay id is committed like an event's."""
        return delivered, delivered.replay_id

    def batch_header(self, replay_id: Any) -> dict[str, Any]:
        """A paced asset event's fields besides ``events`` (:class:`EventBatch`): the source and
        the batch's last replay id, named as the API's single-event payloads name them.

        :param replay_id: the batch's last replay id (an event's or a keepalive's).
        """
        raise NotImplementedError

    # --- the mechanism -----------------------------------------------------------------------

    async def register(self, store: AssetStateStoreAccessors | None, *, read: bool) -> None:
        """Make the producer commit to a watcher's assets too.

        :param store: the watcher's ``asset_state_store`` (``None`` outside an asset watcher).
        :param read: read the stored replay ids (the join round) rather than only registering.
        """
        for accessor in _accessors(store):
            if accessor in self._stores:
                continue
            stored = await accessor.aget(self.state_key) if read else None
            self._stores[accessor] = None if stored is None else self.load_replay_id(stored)

    def _start_from(self) -> Any:
        stored = [value for value in self._stores.values() if value is not None]
        if not stored:
            return self.policy_start()
        # The oldest position wins: one subscription serves every asset, and replaying a few
        # events twice is allowed (at-least-once) where skipping one is not.
        oldest = stored[0]
        for candidate in stored[1:]:
            order = self.compare_replay_ids(candidate, oldest)
            if order is None:
                log.warning("Stored replay ids of %s cannot be ordered (%s, %s); replaying every retained event",
                            self.source, self.describe(candidate), self.describe(oldest))
                return self.unordered_start()
            if order < 0:
                oldest = candidate
        return self.resume_after(oldest)

    def start_position(self) -> Any:
        """Fix and return where this poll's subscription starts (logged, kept in ``start_replay_id``)."""
        self.start_replay_id = self._start_from()
        log.info("Subscribing to %s from %s for %d asset(s)", self.source, self.describe(self.start_replay_id),
                 len(self._stores))
        return self.start_replay_id

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        """Join round, then the subscription; yields ``(StreamItem, replay_id)`` forever."""
        yield StreamJoin(self), None
        try:
            await asyncio.wait_for(self._joined.wait(), timeout=JOIN_TIMEOUT)
        except asyncio.TimeoutError:
            raise SalesforceStreamAdvanceError(
                f"watchers of {self.source} did not report their replay ids within {JOIN_TIMEOUT:.0f} s"
            ) from None
        if self.pacing is not None:
            async for item in self.pacing.stream(self):
                yield item
            return
        async with aclosing(self.events()) as events:
            async for delivered in events:
                event, replay_id = self.split(delivered)
                yield StreamItem(self, event), replay_id
        raise SalesforceStreamAdvanceError(f"the subscription to {self.source} ended")

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Commit the replay id of the last event of the batch's accepted prefix.

        An event a watcher failed on (ack timeout, overflow) or that nobody was online for stops
        the commit there and ends the group, so a new poll replays from the last commit.

        :param batch: resolved events of the one lane, in delivery order.
        """
        last: Any = None
        refused: Any = None
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
            if self.pacing is not None:
                self.pacing.resolved()
        if refused is not None:
            since = self._committed if self._committed is not None else self.start_replay_id
            raise SalesforceStreamAdvanceError(
                f"event {self.describe(refused)} of {self.source} was not persisted for every watcher; "
                f"replaying from {self.describe(since)}"
            )

    async def commit(self, replay_id: Any) -> None:
        """Record ``replay_id`` as handled (never moving backwards).

        :param replay_id: the last replay id whose asset events Airflow persisted.
        """
        if self._committed is not None:
            order = self.compare_replay_ids(replay_id, self._committed)
            if order is not None and order <= 0:
                return
        await self.persist_position(replay_id)
        self._committed = replay_id

    async def persist_position(self, replay_id: Any) -> None:
        """Store ``replay_id`` in every registered asset's state.

        :param replay_id: the last replay id whose asset events Airflow persisted.
        """
        value = self.dump_replay_id(replay_id)
        for accessor in list(self._stores):
            try:
                await accessor.aset(self.state_key, value)
            except Exception:
                # A watcher whose asset is gone must not stop the others from advancing; a live
                # asset missing one write replays a few events after a restart (duplicates only).
                log.warning("Could not store replay id %s of %s in %r", self.describe(replay_id), self.source,
                            accessor, exc_info=True)


class ReplayCommittingProducer(SharedReplayProducer):
    """The CometD producer of :class:`~.streaming.SalesforceEventTrigger`: integer replay ids.

    :param kwargs: the serialized kwargs of one trigger of the group (only fields that are part
        of the shared-stream key are read: connection id, channel, API version, replay policy).
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.conn_id: str = kwargs["salesforce_conn_id"]
        self.channel: str = kwargs["channel"]
        self.api_version: str | None = kwargs.get("api_version")
        self.replay: str = kwargs.get("replay", "new")
        self.on_replay_gap: str = kwargs.get("on_replay_gap", "earliest")
        super().__init__(self.channel, replay_state_key(self.channel), pacing_from(kwargs))

    def load_replay_id(self, stored: Any) -> int | None:
        return stored if isinstance(stored, int) and not isinstance(stored, bool) else None

    def dump_replay_id(self, replay_id: int) -> int:
        return replay_id

    def compare_replay_ids(self, left: int, right: int) -> int:
        return (left > right) - (left < right)

    def batch_header(self, replay_id: int) -> dict[str, Any]:
        return {"channel": self.channel, "replay_id": replay_id}

    def policy_start(self) -> int:
        return REPLAY_POLICIES[self.replay]

    def unordered_start(self) -> int:
        return REPLAY_ALL

    async def events(self) -> AsyncIterator[Any]:
        """Subscribe after the oldest stored replay id of the registered assets (or the policy)."""
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        start = self.start_position()
        hook = SalesforceStreamingHook(salesforce_conn_id=self.conn_id, api_version=self.api_version)
        try:
            async with aclosing(hook.subscribe(self.channel, replay_id=start,
                                               on_replay_gap=self.on_replay_gap)) as stream:  # type: ignore[arg-type]
                async for event in stream:
                    yield event
        finally:
            if hook._async_session is not None:  # the hook's aiohttp session outlives the subscription
                await hook._async_session.close()
