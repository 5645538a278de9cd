"""The Pub/Sub triggers: construction, serialization and the ack-mode producer's replay-id rules.

The parts that talk to Salesforce run against the emulator's gRPC server in
``test_pubsub_triggers_emulator.py``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

from airflow_provider_salesforce_suite.triggers._event_stream import SalesforceStreamAdvanceError
from airflow_provider_salesforce_suite.triggers._pubsub_stream import (
    ManagedSubscriptionProducer,
    PubSubReplayProducer,
    pubsub_state_key,
)
from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger, SalesforcePubSubTrigger
from tests.triggers.test_event_trigger import AssetState, WatchedAssets

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
