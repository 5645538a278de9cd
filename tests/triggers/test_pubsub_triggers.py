"""The Pub/Sub triggers: construction, serialization, the ack-mode producer's replay-id rules, and
the triggers against the emulator's gRPC server over loopback (the real hook, Airflow's
``SharedStreamManager``; the asset state store is the dict-backed stand-in of test_event_trigger).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome, SharedStreamManager

from airflow_provider_salesforce_suite.triggers._event_stream import SalesforceStreamAdvanceError
from airflow_provider_salesforce_suite.triggers._pubsub_stream import (
    ManagedSubscriptionProducer,
    PubSubReplayProducer,
    pubsub_state_key,
)
from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger, SalesforcePubSubTrigger
from tests.triggers.test_event_trigger import (
    AssetState,
    WatchedAssets,
    create_accounts,
    run_watchers,
    select_account_for_cdc,
    stop,
    until,
)

TOPIC = "/data/AccountChangeEvent"
KEY = pubsub_state_key(TOPIC)


def rid(n: int, width: int = 8) -> bytes:
    """A replay id as the emulator encodes it: the log's integer, big-endian."""
    return n.to_bytes(width, "big")


def b64(n: int, width: int = 8) -> str:
    return base64.b64encode(rid(n, width)).decode()


# --- construction and serialization -----------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"topic": "/topic/NewOpportunities"}, "CometD-only"),
    ({"topic": "AccountChangeEvent"}, "one Pub/Sub topic"),
    ({"topic": "/data/"}, "one Pub/Sub topic"),
    ({"topic": ["/data/ChangeEvents"]}, "one Pub/Sub topic"),
    ({"topic": TOPIC, "replay_preset": "NEWEST"}, "replay_preset must be one of LATEST, EARLIEST, CUSTOM"),
    ({"topic": TOPIC, "replay_preset": "CUSTOM"}, "needs a replay_id"),
    ({"topic": TOPIC, "replay_preset": "LATEST", "replay_id": "AAAAAAAAAAE="}, "only used with replay_preset 'CUSTOM'"),
    ({"topic": TOPIC, "replay_id": "not base64!"}, "not base64!"),  # the bad value is named
    ({"topic": TOPIC, "replay_id": 5}, "base64 text"),
    ({"topic": TOPIC, "event_count": 0}, "event_count"),
    ({"topic": TOPIC, "timeout": -1}, "timeout"),
    ({"topic": TOPIC, "on_replay_gap": "skip"}, "on_replay_gap"),
    ({"topic": TOPIC, "batch_size": 0}, "batch_size"),
    ({"topic": TOPIC, "batch_size": 101}, "batch_size"),
    ({"topic": TOPIC, "filter": {"": 1}}, "dotted field paths"),
    ({"topic": TOPIC, "filter": {"Name": object()}}, "must be JSON"),
])
def test_trigger_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforcePubSubTrigger(**kwargs)


def test_trigger_serializes_json_safe_and_round_trips() -> None:
    trigger = SalesforcePubSubTrigger(topic="/event/Order_Shipped__e", salesforce_conn_id="sf", replay_id=b64(7),
                                      event_count=3, filter={"Status__c": "Shipped"}, timeout=30, batch_size=10,
                                      on_replay_gap="earliest", api_version="62.0", pubsub_endpoint="localhost:7443")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.pubsub.SalesforcePubSubTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["replay_preset"] == "CUSTOM" and kwargs["replay_id"] == b64(7)
    again = SalesforcePubSubTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)  # the deadline (started_at) survives a restart
    assert SalesforcePubSubTrigger(topic=TOPIC).serialize()[1]["replay_preset"] == "LATEST"


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give a topic"),
    ({"managed_subscription": " "}, "developer name or id"),
    ({"topic": "/u/Broadcast"}, "CometD-only"),
    ({"topic": TOPIC, "replay_preset": "CUSTOM"}, "replay_preset must be one of LATEST, EARLIEST"),
    ({"topic": TOPIC, "replay_preset": "new"}, "replay_preset must be one of"),
    ({"topic": TOPIC, "on_replay_gap": "skip"}, "on_replay_gap"),
    ({"topic": TOPIC, "filter": ["ChangeEventHeader.changeType"]}, "mapping"),
])
def test_event_trigger_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforcePubSubEventTrigger(**kwargs)


def test_event_trigger_serializes_json_safe_and_round_trips() -> None:
    for trigger in (SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id="sf", replay_preset="EARLIEST",
                                                 filter={"ChangeEventHeader.changeType": "UPDATE"}, batch_size=50),
                    SalesforcePubSubEventTrigger(managed_subscription="Account_Changes", salesforce_conn_id="sf"),
                    SalesforcePubSubEventTrigger(managed_subscription="Account_Changes", topic=TOPIC)):
        classpath, kwargs = trigger.serialize()
        assert classpath == "airflow_provider_salesforce_suite.triggers.pubsub.SalesforcePubSubEventTrigger"
        assert json.loads(json.dumps(kwargs)) == kwargs
        assert SalesforcePubSubEventTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_watchers_share_a_stream_per_org_and_topic(sf_conn) -> None:
    one, same_org = sf_conn("sf_ps_one"), sf_conn("sf_ps_same_org")

    def key(conn_id: str, **kwargs: Any) -> Any:
        kwargs.setdefault("topic", None if "managed_subscription" in kwargs else TOPIC)
        return SalesforcePubSubEventTrigger(salesforce_conn_id=conn_id, **kwargs).shared_stream_key()

    assert key(same_org) == key(one)  # another connection id, same org and user
    assert key(one, filter={"Name": "x"}) == key(one)  # filters are per watcher
    assert key(one, topic="/data/ContactChangeEvent") != key(one)
    assert key(one, pubsub_endpoint="127.0.0.1:1") != key(one)
    assert key(one, managed_subscription="Account_Changes") != key(one)
    assert key(one, managed_subscription="Account_Changes") == key(same_org, managed_subscription="Account_Changes")


def test_the_producer_matches_the_trigger() -> None:
    topic = SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id="sf")
    managed = SalesforcePubSubEventTrigger(managed_subscription="Account_Changes", salesforce_conn_id="sf")
    assert type(topic.create_shared_stream_producer(topic.serialize()[1])) is PubSubReplayProducer
    assert type(managed.create_shared_stream_producer(managed.serialize()[1])) is ManagedSubscriptionProducer


# --- the producer's replay-id rules -------------------------------------------------------------

def _item(replay_id: bytes | None, acked: int = 1, failed: int = 0, rejected: int = 0) -> AdvanceItem:
    return AdvanceItem(broker_payload=replay_id, outcome=AdvanceOutcome(acked=acked, failed=failed, rejected=rejected))


def producer(**kwargs: Any) -> PubSubReplayProducer:
    return PubSubReplayProducer({"salesforce_conn_id": "sf", "topic": TOPIC, **kwargs})


async def test_start_is_the_oldest_stored_replay_id_bytewise_or_the_preset() -> None:
    fresh = producer(replay_preset="EARLIEST")
    assert fresh._start_from() == ("EARLIEST", None)
    await fresh.register(WatchedAssets(AssetState("a", **{KEY: b64(13)}), AssetState("b", **{KEY: b64(1)}),
                                       AssetState("c", **{KEY: b64(300)}), AssetState("d")), read=True)
    # 1 < 13 bytewise (equal length, big-endian), though not as base64 text.
    assert b64(1) > b64(13)
    assert fresh._start_from() == ("CUSTOM", rid(1))


async def test_ids_of_different_lengths_replay_everything_retained() -> None:
    mixed = producer()
    await mixed.register(WatchedAssets(AssetState("a", **{KEY: b64(5, 8)}), AssetState("b", **{KEY: b64(9, 4)})),
                         read=True)
    assert mixed._start_from() == ("EARLIEST", None)


async def test_a_stored_value_that_is_not_base64_is_ignored() -> None:
    odd = producer()
    await odd.register(WatchedAssets(AssetState("a", **{KEY: "%%%"}), AssetState("b", **{KEY: 12})), read=True)
    assert odd._start_from() == ("LATEST", None)


async def test_advance_commits_base64_after_the_accepted_prefix_and_never_backwards() -> None:
    stream = producer()
    first, second = AssetState("a", **{KEY: b64(3)}), AssetState("b")
    await stream.register(WatchedAssets(first), read=True)
    await stream.register(WatchedAssets(second), read=False)
    await stream.advance([_item(None), _item(rid(4)), _item(rid(5), rejected=1), _item(rid(6))])
    assert first.values[KEY] == second.values[KEY] == b64(6)
    await stream.advance([_item(rid(5))])
    assert first.values[KEY] == b64(6)
    with pytest.raises(SalesforceStreamAdvanceError, match=f"event {b64(8)} of {TOPIC}.*replaying from {b64(7)}"):
        await stream.advance([_item(rid(7)), _item(rid(8), acked=0), _item(rid(9))])
    assert first.values[KEY] == b64(7)


class _ManagedStream:
    """What ``hook.managed_subscribe`` yields to commit on (records the commits)."""

    def __init__(self) -> None:
        self.commits: list[bytes] = []

    async def commit(self, replay_id: bytes) -> None:
        self.commits.append(replay_id)


async def test_managed_subscription_commits_to_salesforce_not_to_the_asset() -> None:
    managed = ManagedSubscriptionProducer({"salesforce_conn_id": "sf", "managed_subscription": "Account_Changes"})
    state = AssetState("a", **{KEY: b64(1)})
    await managed.register(WatchedAssets(state), read=True)
    assert managed._start_from() == ("MANAGED", None)  # Salesforce knows where the subscription is
    with pytest.raises(SalesforceStreamAdvanceError, match="managed subscription Account_Changes closed"):
        await managed.advance([_item(rid(2))])
    managed._stream = _ManagedStream()
    await managed.advance([_item(rid(2)), _item(rid(3))])
    assert managed._stream.commits == [rid(3)]
    assert state.values == {KEY: b64(1)}


async def test_a_keepalive_is_a_position_committed_after_the_events_before_it() -> None:
    from airflow_provider_salesforce_suite.hooks._pubsub.events import PubSubEvent, PubSubKeepalive

    stream = producer()
    event = PubSubEvent(topic=TOPIC, replay_id=rid(4), event_id="e4", schema_id="s", payload={})
    assert stream.split(event) == (event, rid(4))
    assert stream.split(PubSubKeepalive(latest_replay_id=rid(9), pending_num_requested=100)) == (None, rid(9))
    assert stream.is_position(event) and stream.is_position(PubSubKeepalive(rid(9), 100))
    # No request outstanding (the server may hold older events) or no id at all: not a position.
    assert not stream.is_position(PubSubKeepalive(rid(9), 0)) and not stream.is_position(PubSubKeepalive(b"", 5))
    state = AssetState("a")
    await stream.register(WatchedAssets(state), read=True)
    with pytest.raises(SalesforceStreamAdvanceError):
        await stream.advance([_item(rid(4), acked=0), _item(rid(9))])  # the event before it was not persisted
    assert KEY not in state.values
    await stream.advance([_item(rid(4)), _item(rid(9))])
    assert state.values[KEY] == b64(9)



# --- against the emulator ------------------------------------------------------------------------

def pubsub_stats(admin) -> dict[str, Any]:
    return admin._call("GET", "pubsub")["stats"]


async def open_streams(admin) -> int:
    return (await asyncio.to_thread(pubsub_stats, admin))["open_streams"]


async def wait_streams(admin, count: int = 1, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while await open_streams(admin) < count:
            await asyncio.sleep(0.05)


async def fire(trigger) -> dict[str, Any]:
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    return events[0].payload


@pytest.fixture
def cdc_conn(sf_conn, emulator_admin) -> str:
    select_account_for_cdc(emulator_admin)
    return sf_conn("sf_pubsub")


async def test_trigger_collects_the_matching_events(cdc_conn, emulator_admin) -> None:
    ids = await create_accounts(cdc_conn, ["skip", "match me", "skip too", "match me"])
    payload = await fire(SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, replay_preset="EARLIEST",
                                                 event_count=2, filter={"Name": "match me"}, timeout=30))
    assert payload["status"] == "success" and payload["message"] is None
    events = payload["events"]
    assert [e["payload"]["ChangeEventHeader"]["recordIds"] for e in events] == [[ids[1]], [ids[3]]]
    assert all(e["payload"]["ChangeEventHeader"]["changeType"] == "CREATE" and e["topic"] == TOPIC for e in events)
    assert [e["replay_id"] for e in events] == [b64(2), b64(4)]  # the emulator's log positions, base64
    assert payload["last_replay_id"] == b64(4)
    assert json.loads(json.dumps(payload)) == payload


async def test_trigger_waits_for_new_events_and_resumes_after_a_replay_id(cdc_conn, emulator_admin) -> None:
    trigger = SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, event_count=2, timeout=30,
                                      filter={"ChangeEventHeader.changeType": "UPDATE"})
    task = asyncio.ensure_future(fire(trigger))
    await wait_streams(emulator_admin)
    (record,) = await create_accounts(cdc_conn, ["before"])
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    rest = SalesforceRestHook(cdc_conn)
    for rating in ("Warm", "Hot"):
        await asyncio.to_thread(rest.update, "Account", record, {"Rating": rating})
    payload = await task
    assert payload["status"] == "success"
    assert [e["payload"]["Rating"] for e in payload["events"]] == ["Warm", "Hot"]
    assert all("Rating" in e["payload"]["ChangeEventHeader"]["changedFields"] for e in payload["events"])
    # The next wait resumes after the first update: the second is the first it sees.
    again = await fire(SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, timeout=30,
                                               replay_id=payload["events"][0]["replay_id"]))
    assert [e["payload"]["Rating"] for e in again["events"]] == ["Hot"]


async def test_trigger_times_out_with_what_it_saw(cdc_conn) -> None:
    payload = await fire(SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, timeout=1))
    assert payload["status"] == "timeout" and payload["events"] == [] and payload["last_replay_id"] is None
    assert payload["message"].startswith(f"0 of 1 event(s) on {TOPIC} after")
    late = SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, timeout=5, started_at=0)
    assert (await fire(late))["status"] == "timeout"  # a restarted trigger keeps its deadline


async def test_trigger_reports_salesforce_errors(cdc_conn) -> None:
    unknown = await fire(SalesforcePubSubTrigger(topic="/data/NopeChangeEvent", salesforce_conn_id=cdc_conn, timeout=10))
    assert unknown["status"] == "error" and "SalesforcePubSubTopicError" in unknown["message"]
    assert "/data/NopeChangeEvent" in unknown["message"]
    gone = await fire(SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, timeout=10,
                                              replay_id=b64(10_000)))
    assert gone["status"] == "error" and "SalesforcePubSubReplayIdError" in gone["message"]


async def test_trigger_replays_everything_retained_after_a_gap_when_asked(cdc_conn) -> None:
    ids = await create_accounts(cdc_conn, ["one", "two"])
    payload = await fire(SalesforcePubSubTrigger(topic=TOPIC, salesforce_conn_id=cdc_conn, timeout=20, event_count=2,
                                                 replay_id=b64(10_000), on_replay_gap="earliest"))
    assert payload["status"] == "success"
    assert [e["payload"]["ChangeEventHeader"]["recordIds"] for e in payload["events"]] == [[i] for i in ids]


def pubsub_watcher(conn_id: str, state: AssetState | None, **kwargs: Any) -> SalesforcePubSubEventTrigger:
    kwargs.setdefault("topic", None if "managed_subscription" in kwargs else TOPIC)
    trigger = SalesforcePubSubEventTrigger(salesforce_conn_id=conn_id, **kwargs)
    trigger.asset_state_store = WatchedAssets(state) if state is not None else None
    return trigger


async def test_two_watchers_one_stream_replay_ids_committed_after_persist(cdc_conn, emulator_admin) -> None:
    states = [AssetState("orders"), AssetState("audit")]
    triggers = [pubsub_watcher(cdc_conn, states[0]),
                pubsub_watcher(cdc_conn, states[1], filter={"Name": "match me"})]
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, triggers, fired)
    try:
        await wait_streams(emulator_admin)
        ids = await create_accounts(cdc_conn, ["first", "match me", "third"])
        await until(lambda: len(fired) == 4 and all(s.values.get(KEY) == b64(3) for s in states))
        by_watcher = {i: [p for t, p in fired if t == i] for i in (0, 1)}
        assert [p["payload"]["ChangeEventHeader"]["recordIds"] for p in by_watcher[0]] == [[i] for i in ids]
        assert [p["payload"]["Name"] for p in by_watcher[1]] == ["match me"]
        assert [p["replay_id"] for p in by_watcher[0]] == [b64(1), b64(2), b64(3)]
        assert set(by_watcher[0][0]) == {"topic", "replay_id", "event_id", "schema_id", "payload"}
        assert await open_streams(emulator_admin) == 1  # one gRPC stream for both watchers
    finally:
        await stop(manager, tasks)


async def test_nothing_is_committed_until_airflow_persisted_the_events(cdc_conn, emulator_admin) -> None:
    state = AssetState("orders")
    manager, fired = SharedStreamManager(ack_timeout=30), []
    tasks = await run_watchers(manager, [pubsub_watcher(cdc_conn, state)], fired, persist=False)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["a", "b"])
        await until(lambda: len(fired) == 2)
        await asyncio.sleep(0.5)
        assert KEY not in state.values
    finally:
        await stop(manager, tasks)


async def test_a_restarted_stream_resumes_after_the_stored_replay_id(cdc_conn) -> None:
    ids = await create_accounts(cdc_conn, ["before 1", "before 2", "before 3"])
    state = AssetState("orders", **{KEY: b64(1)})  # the last run committed event 1
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [pubsub_watcher(cdc_conn, state)], fired)
    try:
        await until(lambda: len(fired) == 2 and state.values[KEY] == b64(3))
        assert [p["payload"]["ChangeEventHeader"]["recordIds"] for _, p in fired] == [[ids[1]], [ids[2]]]
    finally:
        await stop(manager, tasks)


def managed(admin, name: str = "Account_Changes") -> dict[str, Any]:
    return admin._call("GET", f"pubsub/managed-subscriptions/{name}")


async def test_managed_subscription_commits_to_salesforce_only_after_persist(cdc_conn, emulator_admin) -> None:
    # EARLIEST: with no commit yet, a new stream starts at the oldest retained event (Salesforce's
    # setting for a subscription that must not miss what happened before its first commit).
    emulator_admin._call("POST", "pubsub/managed-subscriptions",
                         {"developer_name": "Account_Changes", "topic": TOPIC, "default_replay": "EARLIEST"})
    state = AssetState("orders")
    trigger = pubsub_watcher(cdc_conn, state, managed_subscription="Account_Changes", topic=TOPIC)
    manager, fired = SharedStreamManager(ack_timeout=30), []
    tasks = await run_watchers(manager, [trigger], fired, persist=False)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["a", "b"])
        await until(lambda: len(fired) == 2)
        await asyncio.sleep(0.5)
        assert managed(emulator_admin)["committed_replay_id"] is None  # not persisted: not committed
    finally:
        await stop(manager, tasks)
    # Salesforce redelivers the unacknowledged events to the next stream; this time they persist.
    manager, fired = SharedStreamManager(ack_timeout=30), []
    tasks = await run_watchers(manager, [trigger], fired)
    try:
        await until(lambda: len(fired) == 2 and managed(emulator_admin)["committed_replay_id"] == 2)
        assert [p["payload"]["Name"] for _, p in fired] == ["a", "b"]
        assert fired[0][1]["topic"] == TOPIC
        assert state.values == {}  # the position lives on Salesforce
    finally:
        await stop(manager, tasks)


async def test_a_quiet_topics_keepalive_keeps_the_stored_id_current(cdc_conn, emulator_admin) -> None:
    await create_accounts(cdc_conn, ["old 1", "old 2"])  # before the watcher: LATEST skips them
    emulator_admin._call("POST", "pubsub/config", {"keepalive_seconds": 0.5})
    state = AssetState("orders")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [pubsub_watcher(cdc_conn, state)], fired)
    try:
        await until(lambda: state.values.get(KEY) == b64(2))
        assert fired == []  # a position, not an event
    finally:
        await stop(manager, tasks)
        emulator_admin._call("POST", "pubsub/config", {"keepalive_seconds": 270})
