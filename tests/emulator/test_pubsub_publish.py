"""Pub/Sub API Publish and PublishStream: per-event results, schema checks, and events that
reach CometD subscribers too."""

from __future__ import annotations

import grpc
import pytest
from pubsub_support import EVENT_TOPIC, PubSub, encode, pb2, records_of, replay, trailers
from sf_emulator_client import V
from test_streaming import Bayeux


def test_publish_with_one_bad_event_reports_it_and_publishes_the_rest(ps):
    good = ps.producer_events(EVENT_TOPIC, [{"OrderNumber__c": "ON-1", "Amount__c": 3.5},
                                            {"OrderNumber__c": "X" * 30},  # too long for the field
                                            {"OrderNumber__c": "ON-3", "Rush__c": True}])
    wrong_schema = pb2.ProducerEvent(id="key-wrong", schema_id="AAAAAAAAAAAAAAAAAAAAAA", payload=good[0].payload)
    garbage = pb2.ProducerEvent(id="key-garbage", schema_id=good[0].schema_id, payload=b"\xff\xff\xff")
    stream = ps.subscribe(EVENT_TOPIC, 10)
    response = ps.stub.Publish(pb2.PublishRequest(topic_name=EVENT_TOPIC, events=[*good, wrong_schema, garbage]),
                               metadata=ps.metadata(), timeout=10)
    assert response.schema_id == good[0].schema_id and response.rpc_id
    results = list(response.results)
    assert [r.correlation_key for r in results] == ["key-0", "key-1", "key-2", "key-wrong", "key-garbage"]
    assert [r.replay_id for r in results] == [replay(1), b"", replay(2), b"", b""]
    assert not results[0].HasField("error") and not results[2].HasField("error")
    assert results[1].error.code == pb2.PUBLISH and results[1].error.msg.startswith("STRING_TOO_LONG")
    assert "AAAAAAAAAAAAAAAAAAAAAA" in results[3].error.msg and "schema ID" in results[3].error.msg
    assert "not valid Avro" in results[4].error.msg
    events = ps.events(stream, 2)
    assert [e.replay_id for e in events] == [replay(1), replay(2)]
    assert [e.event.id for e in events] == ["key-0", "key-2"]  # subscribers see the publisher's event id
    records = records_of(ps, events)
    assert [(r["OrderNumber__c"], r["Amount__c"], r["Rush__c"]) for r in records] == [
        ("ON-1", 3.5, False), ("ON-3", None, True)]
    assert all(r["CreatedById"].startswith("005") and r["CreatedDate"] > 0 for r in records)  # set by the server
    stats = ps.sf.stats()["pubsub"]
    assert stats["events_published"] == 2 and stats["events_delivered"] == 2 and stats["open_streams"] == 1


def test_published_event_reaches_cometd_with_the_same_replay_id(ps):
    reply = ps.sf.post(f"{V}/sobjects/Order_Shipped__e", json={"OrderNumber__c": "REST"})  # replay id 1
    assert reply.status_code == 201
    ps.sf.admin("POST", "streaming/config", {"connect_timeout": 1})
    bayeux = Bayeux(ps.sf, ps.token).start(EVENT_TOPIC)
    response = ps.publish(EVENT_TOPIC, [{"OrderNumber__c": "GRPC"}])
    [result] = response.results
    assert result.replay_id == replay(2)
    [message] = bayeux.events()
    assert message["channel"] == EVENT_TOPIC
    assert message["data"]["event"]["replayId"] == 2 and message["data"]["event"]["EventUuid"] == "key-0"
    assert message["data"]["payload"]["OrderNumber__c"] == "GRPC"
    assert message["data"]["schema"] == response.schema_id


def test_publish_to_a_change_event_topic_is_refused(ps):
    with pytest.raises(grpc.RpcError) as caught:
        ps.stub.Publish(pb2.PublishRequest(topic_name="/data/AccountChangeEvent",
                                           events=[pb2.ProducerEvent(id="k", schema_id="x", payload=b"")]),
                        metadata=ps.metadata(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.topic.meta.permission"


def test_publish_bad_requests(ps):
    with pytest.raises(grpc.RpcError) as caught:
        ps.stub.Publish(pb2.PublishRequest(topic_name=EVENT_TOPIC), metadata=ps.metadata(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.publish.event.count.invalid"
    with pytest.raises(grpc.RpcError) as caught:
        ps.stub.Publish(pb2.PublishRequest(topic_name="/event/Nope__e", events=[pb2.ProducerEvent(id="k")]),
                        metadata=ps.metadata(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        ps.stub.Publish(pb2.PublishRequest(topic_name=EVENT_TOPIC, events=[pb2.ProducerEvent(id="k")]),
                        metadata=ps.metadata(tenantid="00D000000000009AAA"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_publish_stream_answers_each_request_in_order(ps):
    info = ps.topic(EVENT_TOPIC)
    schema = ps.schema(info.schema_id)

    def request(*numbers: str) -> pb2.PublishRequest:
        return pb2.PublishRequest(topic_name=EVENT_TOPIC, events=[
            pb2.ProducerEvent(id=n, schema_id=info.schema_id,
                              payload=encode(schema, {"CreatedDate": 0, "CreatedById": "", "OrderNumber__c": n}))
            for n in numbers])

    stream = ps.publish_stream(request("a", "b"))
    first = stream.next()
    assert [(r.correlation_key, r.replay_id) for r in first.results] == [("a", replay(1)), ("b", replay(2))]
    later = request("c")
    later.topic_name = ""  # later requests may leave the topic out
    stream.send(later)
    assert [(r.correlation_key, r.replay_id) for r in stream.next().results] == [("c", replay(3))]
    stream.send(pb2.PublishRequest(topic_name="/event/Other__e", events=request("d").events))
    error = stream.error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.publish.topic.mismatch"
    check = ps.subscribe(EVENT_TOPIC, 10, "EARLIEST")
    assert [r["OrderNumber__c"] for r in records_of(ps, ps.events(check, 3))] == ["a", "b", "c"]


def test_publish_stream_is_dropped_by_the_knob(ps):
    first = pb2.PublishRequest(topic_name=EVENT_TOPIC, events=ps.producer_events(EVENT_TOPIC, [{}]))
    stream = ps.publish_stream(first)
    assert len(stream.next().results) == 1
    assert ps.sf.admin("POST", "pubsub/drop-streams").json() == {"dropped": 1}  # dropped while it waits
    error = stream.error()
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.service.unavailable"


def test_expired_session_ends_publish_stream(ps: PubSub):
    first = pb2.PublishRequest(topic_name=EVENT_TOPIC, events=ps.producer_events(EVENT_TOPIC, [{}]))
    stream = ps.publish_stream(first)
    stream.next()
    ps.sf.admin("POST", "sessions/expire")
    stream.send(first)
    error = stream.error()
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_injected_fault_after_publish_loses_only_the_reply(ps):
    reply = ps.sf.admin("POST", "pubsub/faults", {"rpc": "Publish", "after": True})
    assert reply.status_code == 201 and reply.json()["count"] == 1
    with pytest.raises(grpc.RpcError) as caught:
        ps.publish(EVENT_TOPIC, [{"OrderNumber__c": "lost-reply"}])
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.service.unavailable"
    assert ps.sf.admin("GET", "pubsub/faults").json() == []  # spent
    check = ps.subscribe(EVENT_TOPIC, 10, "EARLIEST")
    assert [r["OrderNumber__c"] for r in records_of(ps, ps.events(check, 1))] == ["lost-reply"]  # it WAS published


def test_injected_fault_before_a_call(ps):
    rule = {"rpc": "GetTopic", "status": "RESOURCE_EXHAUSTED", "error_code": "sfdc.platform.eventbus.grpc.service"
            ".protection.triggered", "message": "slow down", "count": 2}
    assert ps.sf.admin("POST", "pubsub/faults", rule).status_code == 201
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            ps.topic(EVENT_TOPIC)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "slow down" in caught.value.details()
    assert ps.topic(EVENT_TOPIC).can_publish
    assert ps.sf.admin("POST", "pubsub/faults", {"rpc": "Subscribe"}).status_code == 201
    assert ps.subscribe(EVENT_TOPIC, 1).error().code() == grpc.StatusCode.UNAVAILABLE
    for bad in ({"rpc": "Nope"}, {"status": "OK"}, {"count": 0}, {"colour": "red"}):
        assert ps.sf.admin("POST", "pubsub/faults", bad).status_code == 400, bad
