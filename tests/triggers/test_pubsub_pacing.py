"""SalesforcePubSubEventTrigger with ``paced_by`` in Airflow's shared-stream manager against the
emulator's gRPC server.

As in test_event_pacing, the DAG run count (``GetDRCount``) is the boundary stood in for: the
``runs`` fixture is the scheduler. Everything else is real: Airflow's ``SharedStreamManager``,
the Pub/Sub hook, the emulator's Subscribe / ManagedSubscribe streams and keepalives.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger, salesforce_events
from tests.triggers.test_event_pacing import runs  # noqa: F401 - the fixture
from tests.triggers.test_event_trigger import AssetState, create_accounts, run_watchers, stop, until
from tests.triggers.test_pubsub_triggers import (  # noqa: F401 - cdc_conn is a fixture
    KEY,
    TOPIC,
    b64,
    cdc_conn,
    managed,
    pubsub_watcher,
    wait_streams,
)


def names(payload: dict) -> list[str]:
    return [event["payload"]["Name"] for event in payload["events"]]


async def test_events_arriving_while_a_run_is_queued_become_one_asset_event(cdc_conn, emulator_admin, runs) -> None:
    state = AssetState("accounts")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [pubsub_watcher(cdc_conn, state, paced_by=["consumer"])], fired)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["first"])
        await until(lambda: len(fired) == 1 and state.values.get(KEY) == b64(1))
        await create_accounts(cdc_conn, ["second", "third"])
        await asyncio.sleep(1.0)
        assert len(fired) == 1  # no run consumed the first asset event yet: the next one waits
        assert state.values[KEY] == b64(1)  # the waiting events are not committed
        runs["consumer"] = 1  # the scheduler created the run (and deleted the queue row)
        await until(lambda: len(fired) == 2 and state.values.get(KEY) == b64(3))
        (_, first), (_, second) = fired
        assert names(first) == ["first"] and names(second) == ["second", "third"]
        assert {k: v for k, v in second.items() if k != "events"} == {"topic": TOPIC, "replay_id": b64(3)}
        assert [e["replay_id"] for e in second["events"]] == [b64(2), b64(3)]
        assert set(second["events"][0]) == {"topic", "replay_id", "event_id", "schema_id", "payload"}
        assert json.loads(json.dumps(second)) == second
    finally:
        await stop(manager, tasks)


async def test_a_batch_the_filter_drops_entirely_waits_for_no_run(cdc_conn, emulator_admin, runs) -> None:
    state = AssetState("accounts")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    trigger = pubsub_watcher(cdc_conn, state, paced_by=["consumer"], filter={"Name": "wanted"})
    tasks = await run_watchers(manager, [trigger], fired)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["skip me"])
        await until(lambda: state.values.get(KEY) == b64(1))  # resolved and committed, no asset event
        await create_accounts(cdc_conn, ["wanted"])
        await until(lambda: len(fired) == 1)  # no run was needed for the dropped batch
        assert names(fired[0][1]) == ["wanted"]
    finally:
        await stop(manager, tasks)


async def test_no_run_within_the_pace_timeout_delivers_anyway(cdc_conn, emulator_admin, runs) -> None:
    manager, fired = SharedStreamManager(ack_timeout=20), []
    trigger = pubsub_watcher(cdc_conn, AssetState("a"), paced_by=["paused"], pace_timeout=1.5)
    tasks = await run_watchers(manager, [trigger], fired)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["one"])
        await until(lambda: len(fired) == 1)
        await create_accounts(cdc_conn, ["two"])
        await until(lambda: len(fired) == 2, timeout=10)
        assert [names(payload) for _, payload in fired] == [["one"], ["two"]]
    finally:
        await stop(manager, tasks)


async def test_keepalives_alone_move_the_stored_id_without_an_asset_event(cdc_conn, emulator_admin, runs) -> None:
    await create_accounts(cdc_conn, ["old 1", "old 2"])  # before the watcher: LATEST skips them
    emulator_admin._call("POST", "pubsub/config", {"keepalive_seconds": 0.5})
    state = AssetState("accounts")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [pubsub_watcher(cdc_conn, state, paced_by=["consumer"])], fired)
    try:
        await until(lambda: state.values.get(KEY) == b64(2))
        await asyncio.sleep(1.5)  # several keepalives: each a position, none waits for a run
        assert fired == []
        await create_accounts(cdc_conn, ["new"])
        await until(lambda: len(fired) == 1)  # no run was created, yet the first event is not held
        assert names(fired[0][1]) == ["new"]
    finally:
        await stop(manager, tasks)
        emulator_admin._call("POST", "pubsub/config", {"keepalive_seconds": 270})


async def test_a_paced_managed_subscription_commits_each_batch_to_salesforce(cdc_conn, emulator_admin, runs) -> None:
    emulator_admin._call("POST", "pubsub/managed-subscriptions",
                         {"developer_name": "Paced_Changes", "topic": TOPIC, "default_replay": "EARLIEST"})
    state = AssetState("accounts")
    trigger = pubsub_watcher(cdc_conn, state, managed_subscription="Paced_Changes", paced_by=["consumer"])
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [trigger], fired)
    try:
        await wait_streams(emulator_admin)
        await create_accounts(cdc_conn, ["a"])
        await until(lambda: len(fired) == 1 and managed(emulator_admin, "Paced_Changes")["committed_replay_id"] == 1)
        await create_accounts(cdc_conn, ["b", "c"])
        await asyncio.sleep(1.0)
        assert len(fired) == 1 and managed(emulator_admin, "Paced_Changes")["committed_replay_id"] == 1
        runs["consumer"] = 1
        await until(lambda: len(fired) == 2 and managed(emulator_admin, "Paced_Changes")["committed_replay_id"] == 3)
        assert names(fired[1][1]) == ["b", "c"] and fired[1][1]["topic"] == fired[1][1]["events"][0]["topic"]
        assert state.values == {}  # the position lives on Salesforce
    finally:
        await stop(manager, tasks)


@pytest.mark.parametrize("kwargs, message", [
    ({"paced_by": "consumer"}, "non-empty list of DAG ids"),
    ({"paced_by": []}, "non-empty list of DAG ids"),
    ({"paced_by": ["ok", None]}, "non-empty list of DAG ids"),
    ({"paced_by": ["d"], "pace_timeout": -1}, "pace_timeout must be a positive number"),
    ({"paced_by": ["d"], "pace_timeout": True}, "pace_timeout must be a positive number"),
])
def test_bad_pacing_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforcePubSubEventTrigger(topic=TOPIC, **kwargs)


def test_pacing_is_serialized_and_keys_its_own_stream(sf_conn) -> None:
    conn_id = sf_conn("sf_pubsub_paced_key")
    paced = SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id=conn_id, paced_by=["b", "a"],
                                         pace_timeout=60)
    classpath, kwargs = paced.serialize()
    assert kwargs["paced_by"] == ["b", "a"] and kwargs["pace_timeout"] == 60.0
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SalesforcePubSubEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    unpaced = SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id=conn_id)
    assert "paced_by" not in unpaced.serialize()[1]  # unpaced kwargs unchanged
    assert paced.shared_stream_key() != unpaced.shared_stream_key()
    same = SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id=conn_id, paced_by=["a", "b"])
    assert same.shared_stream_key() == paced.shared_stream_key()
    assert SalesforcePubSubEventTrigger.create_shared_stream_producer(kwargs).pacing.paced_by == ("b", "a")
    assert SalesforcePubSubEventTrigger.create_shared_stream_producer(unpaced.serialize()[1]).pacing is None
    managed_kwargs = {**kwargs, "managed_subscription": "Paced_Changes"}
    assert SalesforcePubSubEventTrigger.create_shared_stream_producer(managed_kwargs).pacing is not None


def test_salesforce_events_reads_pubsub_asset_events() -> None:
    one = {"topic": TOPIC, "replay_id": b64(1), "event_id": "e1", "schema_id": "s", "payload": {"Name": "x"}}
    two = {**one, "replay_id": b64(2), "event_id": "e2"}
    batch = {"topic": TOPIC, "replay_id": b64(2), "events": [one, two]}
    assert salesforce_events([SimpleNamespace(extra={"payload": one}), {"extra": {"payload": batch}}]) == [one, one, two]
