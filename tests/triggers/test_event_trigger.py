"""SalesforceEventTrigger in Airflow's shared-stream manager (ack mode) against the emulator.

The asset state store stands in for the triggerer's supervisor channel with a dict per asset (the
same ``aget``/``aset`` accessors); everything else is the real thing: Airflow's
``SharedStreamManager``, the streaming hook, the emulator's CometD endpoint.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome, SharedStreamManager

from airflow_provider_salesforce_suite.triggers._event_stream import (
    ReplayCommittingProducer,
    SalesforceStreamAdvanceError,
    StreamJoin,
    replay_state_key,
)
from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

CHANNEL = "/data/AccountChangeEvent"
KEY = replay_state_key(CHANNEL)


class AssetState:
    """One asset's state store: ``aget``/``aset`` like Airflow's ``AssetStateStoreAccessor``."""

    def __init__(self, name: str, **values: Any) -> None:
        self.name, self.values = name, dict(values)

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetState) and other.name == self.name

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


class WatchedAssets:
    """A trigger's ``asset_state_store`` (Airflow's ``AssetStateStoreAccessors`` keeps accessors by name)."""

    def __init__(self, *states: AssetState) -> None:
        self._by_name = {state.name: state for state in states}
        self._by_uri: dict[str, AssetState] = {}


def watcher(conn_id: str, state: AssetState | None, **kwargs: Any) -> SalesforceEventTrigger:
    trigger = SalesforceEventTrigger(channel=kwargs.pop("channel", CHANNEL), salesforce_conn_id=conn_id, **kwargs)
    trigger.asset_state_store = WatchedAssets(state) if state is not None else None
    return trigger


async def run_watchers(manager: SharedStreamManager, triggers: list[SalesforceEventTrigger],
                       fired: list[tuple[int, dict]], *, persist: bool = True) -> list[asyncio.Task]:
    """What the triggerer does: subscribe, filter, bind each event, confirm it persisted."""
    async def run(trigger_id: int, trigger: SalesforceEventTrigger) -> None:
        key = trigger.shared_stream_key()
        async for event in trigger.filter_shared_stream(manager.subscribe(trigger_id=trigger_id, trigger=trigger,
                                                                          key=key)):
            seq = manager.bind_pending_event(trigger_id=trigger_id, key=key)
            fired.append((trigger_id, event.payload))
            if persist and seq is not None:
                manager.confirm_persisted([seq])

    return [asyncio.create_task(run(i, trigger)) for i, trigger in enumerate(triggers)]


async def until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def streaming_stats(admin) -> dict[str, Any]:
    return admin.stats()["streaming"]


def select_account_for_cdc(admin) -> None:
    """Setup -> Change Data Capture: select Account (an emulator reset selects none, as in a new org)."""
    admin._call("POST", "streaming/config", {"cdc_entities": ["Account"]})


async def create_accounts(conn_id: str, names: list[str]) -> list[str]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    hook = SalesforceRestHook(conn_id)
    return [await asyncio.to_thread(hook.create, "Account", {"Name": name}) for name in names]


async def stop(manager: SharedStreamManager, tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()


# --- construction ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"channel": "topic/X"}, "start with '/'"),
    ({"channel": ["/topic/A"]}, "one channel name"),
    ({"channel": "/topic/X", "replay": "latest"}, "replay must be one of"),
    ({"channel": "/topic/X", "on_replay_gap": "skip"}, "on_replay_gap"),
    ({"channel": "/topic/X", "filter": {"": 1}}, "dotted field paths"),
    ({"channel": "/topic/X", "filter": ["event.type"]}, "mapping"),
])
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforceEventTrigger(**kwargs)


def test_serialize_round_trips_and_is_json_safe() -> None:
    import json

    trigger = SalesforceEventTrigger(channel="/topic/NewOpportunities", salesforce_conn_id="sf", replay="all",
                                     filter={"event.type": "created"}, on_replay_gap="fail", api_version="62.0")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.streaming.SalesforceEventTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SalesforceEventTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_watchers_share_a_stream_per_org_and_channel(sf_conn) -> None:
    one, same_org = sf_conn("sf_one"), sf_conn("sf_same_org")
    key = watcher(one, None).shared_stream_key()
    assert watcher(same_org, None).shared_stream_key() == key  # another connection id, same org and user
    assert watcher(one, None, filter={"payload.Name": "x"}).shared_stream_key() == key  # filters are per watcher
    assert watcher(one, None, channel="/data/ContactChangeEvent").shared_stream_key() != key
    assert watcher(one, None, api_version="60.0").shared_stream_key() != key


# --- the producer's commit rule ---------------------------------------------------------------

def _item(replay_id: int | None, acked: int = 1, failed: int = 0, rejected: int = 0) -> AdvanceItem:
    return AdvanceItem(broker_payload=replay_id, outcome=AdvanceOutcome(acked=acked, failed=failed, rejected=rejected))


async def test_advance_commits_the_last_accepted_replay_id_to_every_asset() -> None:
    producer = ReplayCommittingProducer({"salesforce_conn_id": "sf", "channel": CHANNEL})
    first, second = AssetState("a", **{KEY: 3}), AssetState("b")
    await producer.register(WatchedAssets(first), read=True)
    await producer.register(WatchedAssets(second), read=False)
    await producer.advance([_item(None), _item(4), _item(5, rejected=1), _item(6)])
    assert first.values[KEY] == second.values[KEY] == 6
    await producer.advance([_item(5)])  # never backwards
    assert first.values[KEY] == 6


@pytest.mark.parametrize("refused", [_item(5, acked=1, failed=1), _item(5, acked=0)])
async def test_advance_stops_at_an_event_not_persisted_for_every_watcher(refused: AdvanceItem) -> None:
    producer = ReplayCommittingProducer({"salesforce_conn_id": "sf", "channel": CHANNEL})
    state = AssetState("a")
    await producer.register(WatchedAssets(state), read=True)
    with pytest.raises(SalesforceStreamAdvanceError, match=f"event 5 of {CHANNEL}"):
        await producer.advance([_item(4), refused, _item(6)])
    assert state.values[KEY] == 4


async def test_start_is_the_oldest_stored_replay_id_or_the_policy() -> None:
    producer = ReplayCommittingProducer({"salesforce_conn_id": "sf", "channel": CHANNEL, "replay": "all"})
    assert producer._start_from() == -2
    await producer.register(WatchedAssets(AssetState("a", **{KEY: 9}), AssetState("b", **{KEY: 4}),
                                          AssetState("c")), read=True)
    assert producer._start_from() == 4


# --- in Airflow's shared-stream manager -------------------------------------------------------

async def test_two_watchers_one_connection_replay_ids_committed_after_persist(sf_conn, emulator_admin) -> None:
    conn_id = sf_conn("sf_watch")
    select_account_for_cdc(emulator_admin)
    states = [AssetState("orders"), AssetState("audit")]
    triggers = [watcher(conn_id, states[0]), watcher(conn_id, states[1], filter={"payload.Name": "match me"})]
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, triggers, fired)
    try:
        await until(lambda: streaming_stats(emulator_admin)["subscriptions"] == 1)
        ids = await create_accounts(conn_id, ["first", "match me", "third"])
        await until(lambda: len(fired) == 4 and all(s.values.get(KEY) == 3 for s in states))
        by_watcher = {i: [p for t, p in fired if t == i] for i in (0, 1)}
        assert [p["payload"]["payload"]["ChangeEventHeader"]["recordIds"] for p in by_watcher[0]] == [[i] for i in ids]
        assert [p["payload"]["payload"]["Name"] for p in by_watcher[1]] == ["match me"]
        assert [p["replay_id"] for p in by_watcher[0]] == [1, 2, 3]
        event = by_watcher[0][0]
        assert set(event) == {"channel", "replay_id", "payload", "created_date"} and event["channel"] == CHANNEL
        stats = streaming_stats(emulator_admin)
        assert (stats["handshakes"], stats["subscribes"]) == (1, 1)  # one CometD connection for both
    finally:
        await stop(manager, tasks)


async def test_nothing_is_committed_until_airflow_persisted_the_events(sf_conn, emulator_admin) -> None:
    conn_id = sf_conn("sf_unpersisted")
    select_account_for_cdc(emulator_admin)
    state = AssetState("orders")
    manager, fired = SharedStreamManager(ack_timeout=30), []
    tasks = await run_watchers(manager, [watcher(conn_id, state)], fired, persist=False)
    try:
        await until(lambda: streaming_stats(emulator_admin)["subscriptions"] == 1)
        await create_accounts(conn_id, ["a", "b"])
        await until(lambda: len(fired) == 2)
        await asyncio.sleep(0.5)
        assert KEY not in state.values
    finally:
        await stop(manager, tasks)


async def test_a_restarted_stream_resumes_after_the_stored_replay_id(sf_conn, emulator_admin) -> None:
    conn_id = sf_conn("sf_resume")
    select_account_for_cdc(emulator_admin)
    ids = await create_accounts(conn_id, ["before 1", "before 2", "before 3"])  # replay ids 1..3, retained
    state = AssetState("orders", **{KEY: 1})  # the last run committed event 1
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [watcher(conn_id, state)], fired)
    try:
        await until(lambda: len(fired) == 2 and state.values[KEY] == 3)
        assert [p["payload"]["payload"]["ChangeEventHeader"]["recordIds"] for _, p in fired] == [[ids[1]], [ids[2]]]
    finally:
        await stop(manager, tasks)


async def test_join_round_hands_the_producer_every_watchers_state() -> None:
    producer = ReplayCommittingProducer({"salesforce_conn_id": "sf", "channel": CHANNEL})
    stream = producer.open_stream()
    join, payload = await stream.__anext__()
    assert isinstance(join, StreamJoin) and join.event is None and payload is None
    await stream.aclose()
