"""SalesforceEventTrigger with ``paced_by`` in Airflow's shared-stream manager against the emulator.

The DAG run count the producer reads through the triggerer's supervisor (``GetDRCount``) is the
boundary stood in for here: ``runs`` is the scheduler, the test creates a run by incrementing it.
Everything else is real: Airflow's ``SharedStreamManager``, the streaming hook, the emulator.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_provider_salesforce_suite.triggers._pacing import Pacing
from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger, salesforce_events
from tests.triggers.test_event_trigger import (
    CHANNEL,
    KEY,
    AssetState,
    create_accounts,
    run_watchers,
    select_account_for_cdc,
    stop,
    streaming_stats,
    until,
    watcher,
)


@pytest.fixture
def runs(monkeypatch) -> dict[str, int]:
    """DAG id -> number of runs, as GetDRCount would answer (the test is the scheduler)."""
    counts: dict[str, int] = {}

    async def dag_run_count(self: Pacing, dag_id: str) -> int:
        return counts.get(dag_id, 0)

    monkeypatch.setattr(Pacing, "dag_run_count", dag_run_count)
    monkeypatch.setattr("airflow_provider_salesforce_suite.triggers._pacing.COUNT_INTERVAL", 0.05)
    return counts


def replay_ids(payload: dict) -> list[int]:
    return [event["replay_id"] for event in payload["events"]]


async def test_events_arriving_while_a_run_is_queued_become_one_asset_event(sf_conn, emulator_admin, runs) -> None:
    conn_id = sf_conn("sf_paced")
    select_account_for_cdc(emulator_admin)
    state = AssetState("orders")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [watcher(conn_id, state, paced_by=["consumer"])], fired)
    try:
        await until(lambda: streaming_stats(emulator_admin)["subscriptions"] == 1)
        await create_accounts(conn_id, ["first"])
        await until(lambda: len(fired) == 1 and state.values.get(KEY) == 1)
        await create_accounts(conn_id, ["second", "third"])
        await asyncio.sleep(1.0)
        assert len(fired) == 1  # no run consumed the first asset event yet: the next one waits
        runs["consumer"] = 1  # the scheduler created the run (and deleted the queue row)
        await until(lambda: len(fired) == 2 and state.values.get(KEY) == 3)
        (_, first), (_, second) = fired
        assert replay_ids(first) == [1] and replay_ids(second) == [2, 3]
        assert second["replay_id"] == 3 and second["channel"] == CHANNEL
        assert [e["payload"]["payload"]["Name"] for e in second["events"]] == ["second", "third"]
        await create_accounts(conn_id, ["fourth"])
        await asyncio.sleep(0.5)
        assert len(fired) == 2
        runs["consumer"] = 2
        await until(lambda: len(fired) == 3)
        assert replay_ids(fired[2][1]) == [4]
    finally:
        await stop(manager, tasks)


async def test_a_batch_the_filter_drops_entirely_waits_for_no_run(sf_conn, emulator_admin, runs) -> None:
    conn_id = sf_conn("sf_paced_filter")
    select_account_for_cdc(emulator_admin)
    state = AssetState("orders")
    manager, fired = SharedStreamManager(ack_timeout=20), []
    trigger = watcher(conn_id, state, paced_by=["consumer"], filter={"payload.Name": "wanted"})
    tasks = await run_watchers(manager, [trigger], fired)
    try:
        await until(lambda: streaming_stats(emulator_admin)["subscriptions"] == 1)
        await create_accounts(conn_id, ["skip me"])
        await until(lambda: state.values.get(KEY) == 1)  # resolved and committed, no asset event
        await create_accounts(conn_id, ["wanted"])
        await until(lambda: len(fired) == 1)  # no run was needed for the dropped batch
        assert [e["payload"]["payload"]["Name"] for e in fired[0][1]["events"]] == ["wanted"]
    finally:
        await stop(manager, tasks)


async def test_no_run_within_the_pace_timeout_delivers_anyway(sf_conn, emulator_admin, runs) -> None:
    conn_id = sf_conn("sf_paced_timeout")
    select_account_for_cdc(emulator_admin)
    manager, fired = SharedStreamManager(ack_timeout=20), []
    tasks = await run_watchers(manager, [watcher(conn_id, AssetState("o"), paced_by=["paused"], pace_timeout=1.5)],
                               fired)
    try:
        await until(lambda: streaming_stats(emulator_admin)["subscriptions"] == 1)
        await create_accounts(conn_id, ["one"])
        await until(lambda: len(fired) == 1)
        await create_accounts(conn_id, ["two"])
        await until(lambda: len(fired) == 2, timeout=10)
    finally:
        await stop(manager, tasks)


@pytest.mark.parametrize("kwargs, message", [
    ({"paced_by": "consumer"}, "non-empty list of DAG ids"),
    ({"paced_by": []}, "non-empty list of DAG ids"),
    ({"paced_by": ["ok", ""]}, "non-empty list of DAG ids"),
    ({"paced_by": ["d"], "pace_timeout": 0}, "pace_timeout must be a positive number"),
])
def test_bad_pacing_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforceEventTrigger(channel="/topic/X", **kwargs)


def test_pacing_is_serialized_and_keys_its_own_stream(sf_conn) -> None:
    conn_id = sf_conn("sf_paced_key")
    paced = SalesforceEventTrigger(channel=CHANNEL, salesforce_conn_id=conn_id, paced_by=["b", "a"], pace_timeout=60)
    classpath, kwargs = paced.serialize()
    assert kwargs["paced_by"] == ["b", "a"] and kwargs["pace_timeout"] == 60.0
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SalesforceEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert "paced_by" not in SalesforceEventTrigger(channel=CHANNEL).serialize()[1]  # unpaced kwargs unchanged
    unpaced = SalesforceEventTrigger(channel=CHANNEL, salesforce_conn_id=conn_id)
    assert paced.shared_stream_key() != unpaced.shared_stream_key()
    same = SalesforceEventTrigger(channel=CHANNEL, salesforce_conn_id=conn_id, paced_by=["a", "b"])
    assert same.shared_stream_key() == paced.shared_stream_key()
    assert SalesforceEventTrigger.create_shared_stream_producer(kwargs).pacing.paced_by == ("b", "a")
    assert SalesforceEventTrigger.create_shared_stream_producer(unpaced.serialize()[1]).pacing is None


def test_salesforce_events_reads_single_and_batched_asset_events() -> None:
    one = {"channel": CHANNEL, "replay_id": 1, "payload": {"x": 1}, "created_date": None}
    two = {"channel": CHANNEL, "replay_id": 2, "payload": {"x": 2}, "created_date": None}
    batch = {"channel": CHANNEL, "replay_id": 2, "events": [one, two]}
    found = salesforce_events([SimpleNamespace(extra={"payload": one}), {"extra": {"payload": batch}}])
    assert found == [one, one, two]
    assert salesforce_events([SimpleNamespace(extra={})]) == []
