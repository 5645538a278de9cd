"""Pub/Sub API Subscribe: replay presets, exact flow control, keepalives, stream errors, and the
one event log shared with CometD (same events, same replay ids)."""

from __future__ import annotations

import time

import grpc
import pytest
from pubsub_support import EVENT_TOPIC, PubSub, pb2, records_of, replay, trailers
from sf_emulator_client import V
from test_streaming import Bayeux

TOPIC = "/data/AccountChangeEvent"


@pytest.fixture(autouse=True)
def _cdc(ps: PubSub) -> None:
    assert ps.sf.admin("POST", "streaming/config", {"cdc_entities": ["Account", "Contact"],
                                                    "connect_timeout": 1}).status_code == 200


def accounts(ps: PubSub, *names: str) -> list[str]:
    ids = []
    for name in names:
        reply = ps.sf.post(f"{V}/sobjects/Account", json={"Name": name})
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    return ids


def names(ps: PubSub, events) -> list[str]:
    return [r["Name"] for r in records_of(ps, events)]


def wait_for_stream(ps: PubSub) -> None:
    """Until the emulator has the stream open (its first request read)."""
    deadline = time.monotonic() + 10
    while ps.sf.admin("GET", "pubsub").json()["stats"]["open_streams"] < 1:
        assert time.monotonic() < deadline, "the stream never opened"
        time.sleep(0.02)


def test_latest_gets_only_new_events(ps):
    accounts(ps, "Before")
    stream = ps.subscribe(TOPIC, 10)
    wait_for_stream(ps)
    accounts(ps, "After")
    [event] = ps.events(stream, 1)
    assert names(ps, [event]) == ["After"] and event.replay_id == replay(2)


def test_earliest_replays_everything_retained(ps):
    accounts(ps, "A1", "A2", "A3")
    stream = ps.subscribe(TOPIC, 10, "EARLIEST")
    response = stream.next()
    assert [e.replay_id for e in response.events] == [replay(1), replay(2), replay(3)]
    assert response.latest_replay_id == replay(3) and response.pending_num_requested == 7
    assert names(ps, response.events) == ["A1", "A2", "A3"]


def test_custom_starts_after_the_given_replay_id(ps):
    accounts(ps, "A1", "A2", "A3", "A4")
    stream = ps.subscribe(TOPIC, 10, "CUSTOM", replay(2))
    assert names(ps, ps.events(stream, 2)) == ["A3", "A4"]
    tip = ps.subscribe(TOPIC, 10, "CUSTOM", replay(4))  # the newest id: nothing until something new
    assert tip.nothing_for(0.3)
    accounts(ps, "A5")
    assert names(ps, ps.events(tip, 1)) == ["A5"]


def test_num_requested_is_honoured_exactly(ps):
    accounts(ps, *[f"A{i}" for i in range(7)])
    stream = ps.subscribe(TOPIC, 3, "EARLIEST")
    first = stream.next()
    assert len(first.events) == 3 and first.pending_num_requested == 0
    assert stream.nothing_for(0.5)  # nothing more until asked
    stream.send(pb2.FetchRequest(num_requested=2))
    second = stream.next()
    assert [e.replay_id for e in second.events] == [replay(4), replay(5)] and second.pending_num_requested == 0
    assert stream.nothing_for(0.3)
    stream.send(pb2.FetchRequest(topic_name=TOPIC, num_requested=5))  # repeating the topic is fine
    third = stream.next()
    assert len(third.events) == 2 and third.pending_num_requested == 3
    accounts(ps, "Later")
    fourth = stream.next()
    assert names(ps, fourth.events) == ["Later"] and fourth.pending_num_requested == 2


def test_keepalive_carries_the_stream_position(ps):
    assert ps.sf.admin("POST", "pubsub/config", {"keepalive_seconds": 0.3}).status_code == 200
    accounts(ps, "A1", "A2")
    stream = ps.subscribe(TOPIC, 1, "EARLIEST")
    assert len(stream.next().events) == 1
    keepalive = stream.next(timeout=5)
    assert list(keepalive.events) == [] and keepalive.rpc_id
    assert keepalive.latest_replay_id == replay(1)  # where the subscriber is, not the tip: resuming loses nothing
    assert keepalive.pending_num_requested == 0


def test_default_keepalive_is_salesforces_270_seconds(ps):
    assert ps.sf.admin("GET", "pubsub/config").json() == {"keepalive_seconds": 270.0, "delay_ms": 0}


def test_topic_change_mid_stream_is_invalid_argument(ps):
    stream = ps.subscribe(TOPIC, 1)
    stream.send(pb2.FetchRequest(topic_name="/data/ContactChangeEvent", num_requested=1))
    error = stream.error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.subscription.fetch.topic.mismatch"
    assert "/data/ContactChangeEvent" in error.details()


@pytest.mark.parametrize("replay_id, code", [
    (b"", "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"),
    (b"\x01\x02", "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"),
    (replay(99), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"),
])
def test_invalid_replay_id_is_invalid_argument(ps, replay_id, code):
    accounts(ps, "A1")
    error = ps.subscribe(TOPIC, 1, "CUSTOM", replay_id).error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["error-code"] == code


def test_replay_id_outside_retention_is_invalid_argument(ps):
    accounts(ps, "A1", "A2", "A3")
    ps.subscribe(TOPIC, 10, "CUSTOM", replay(1)).next()  # valid while retained
    assert ps.sf.admin("POST", "streaming/age-out", {"channel": TOPIC, "count": 2}).status_code == 200
    ps.subscribe(TOPIC, 10, "CUSTOM", replay(2)).next()  # right before the oldest retained event: still fine
    error = ps.subscribe(TOPIC, 10, "CUSTOM", replay(1)).error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    assert TOPIC in error.details()


def test_bad_requests(ps):
    error = ps.subscribe(TOPIC, 0).error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid"
    error = ps.subscribe("/event/Nope__e", 1).error()
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = ps.subscribe(TOPIC, 1, accesstoken="nope").error()
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_session_expiry_ends_an_open_stream(ps):
    stream = ps.subscribe(TOPIC, 1)
    wait_for_stream(ps)
    assert ps.sf.admin("POST", "sessions/expire").status_code == 200
    error = stream.error(timeout=5)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.service.auth.error"


def test_drop_streams_knob_ends_streams_with_unavailable(ps):
    accounts(ps, "A1", "A2")
    stream = ps.subscribe(TOPIC, 1, "EARLIEST")
    [first] = stream.next().events
    assert ps.sf.admin("POST", "pubsub/drop-streams").json() == {"dropped": 1}
    error = stream.error()
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.service.unavailable"
    resumed = ps.subscribe(TOPIC, 5, "CUSTOM", first.replay_id)  # resuming after the last delivered id
    assert names(ps, ps.events(resumed, 1)) == ["A2"]


def test_delay_knob_slows_answers(ps):
    assert ps.sf.admin("POST", "pubsub/config", {"delay_ms": 300}).status_code == 200
    started = time.monotonic()
    ps.topic(TOPIC)
    assert time.monotonic() - started >= 0.3
    assert ps.sf.admin("POST", "pubsub/config", {"delay_ms": -1}).status_code == 400


def test_same_change_on_cometd_and_pubsub_with_the_same_replay_id(ps):
    accounts(ps, "Old")  # replay id 1 on both
    bayeux = Bayeux(ps.sf, ps.token).start(TOPIC, "/data/ChangeEvents")
    stream = ps.subscribe(TOPIC, 10)
    everything = ps.subscribe("/data/ChangeEvents", 10)
    wait_for_stream(ps)
    [account_id] = accounts(ps, "Shared")
    assert ps.sf.patch(f"{V}/sobjects/Account/{account_id}", json={"Industry": "Energy"}).status_code == 204
    by_channel: dict[str, list] = {}
    deadline = time.monotonic() + 10
    while sum(len(v) for v in by_channel.values()) < 4 and time.monotonic() < deadline:
        for message in bayeux.events():
            by_channel.setdefault(message["channel"], []).append(message["data"])
    cometd = by_channel[TOPIC]
    pubsub = ps.events(stream, 2)
    assert [d["event"]["replayId"] for d in cometd] == [2, 3]
    assert [int.from_bytes(e.replay_id, "big") for e in pubsub] == [2, 3]
    assert [d["schema"] for d in cometd] == [e.event.schema_id for e in pubsub]
    records = records_of(ps, pubsub)
    assert [r["ChangeEventHeader"]["changeType"] for r in records] == ["CREATE", "UPDATE"]
    assert [r["ChangeEventHeader"]["transactionKey"] for r in records] == [
        d["payload"]["ChangeEventHeader"]["transactionKey"] for d in cometd]
    assert records[0]["ChangeEventHeader"]["recordIds"] == [account_id]
    assert records[1]["Industry"] == "Energy"
    # the multi-entity channel has its own ids, the same on both sides too; the event ids match across topics
    on_everything = ps.events(everything, 2)
    assert [int.from_bytes(e.replay_id, "big") for e in on_everything] == [
        d["event"]["replayId"] for d in by_channel["/data/ChangeEvents"]]
    assert [e.event.id for e in on_everything] == [e.event.id for e in pubsub]
    assert len({e.event.id for e in pubsub}) == 2


def test_platform_event_from_rest_reaches_pubsub(ps):
    stream = ps.subscribe(EVENT_TOPIC, 5)
    wait_for_stream(ps)
    reply = ps.sf.post(f"{V}/sobjects/Order_Shipped__e", json={"OrderNumber__c": "ON-1", "Amount__c": 12.5})
    assert reply.status_code == 201, reply.text
    [event] = ps.events(stream, 1)
    [record] = records_of(ps, [event])
    assert record["OrderNumber__c"] == "ON-1" and record["Amount__c"] == 12.5 and record["Rush__c"] is False  # a checkbox is never null
    assert record["CreatedById"].startswith("005") and record["CreatedDate"] > 1_600_000_000_000
    assert len(event.event.id) == 36 and event.replay_id == replay(1)


def test_bulk_ingest_changes_reach_pubsub_with_cometds_replay_ids(ps):
    """Bulk 2.0 writes on a worker thread: its events cross to the loop and land in the same log."""
    from test_bulk_v2 import _ingest

    bayeux = Bayeux(ps.sf, ps.token).start(TOPIC)
    stream = ps.subscribe(TOPIC, 10)
    wait_for_stream(ps)
    job = _ingest(ps.sf, "Name,Industry\nBulk One,Energy\nBulk Two,Banking\n")
    assert job["state"] == "JobComplete" and job["numberRecordsProcessed"] == 2
    events = ps.events(stream, 2)
    assert sorted(names(ps, events)) == ["Bulk One", "Bulk Two"]
    cometd: list = []
    deadline = time.monotonic() + 10
    while len(cometd) < 2 and time.monotonic() < deadline:
        cometd += bayeux.events()
    assert {m["data"]["event"]["replayId"] for m in cometd} == {int.from_bytes(e.replay_id, "big") for e in events}


def test_stall_knob_silences_streams_even_keepalives(ps):
    assert ps.sf.admin("POST", "pubsub/config", {"keepalive_seconds": 0.2}).status_code == 200
    stream = ps.subscribe(TOPIC, 5)
    assert list(stream.next(timeout=5).events) == []  # keepalives flow
    assert ps.sf.admin("POST", "pubsub/stall-streams", {"seconds": 1.0}).json() == {"stalled": 1}
    while not stream.nothing_for(0.05):  # drain what was sent before the stall
        stream.next()
    accounts(ps, "During")
    assert stream.nothing_for(0.7)  # silent: no event, no keepalive
    assert names(ps, ps.events(stream, 1, timeout=5)) == ["During"]  # delivered once the stall ends
    assert ps.sf.admin("POST", "pubsub/stall-streams", {"seconds": 0}).status_code == 400
