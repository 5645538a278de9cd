"""Pub/Sub API ManagedSubscribe: subscriptions created through the admin knob, commits kept per
subscription on the server, a new stream resuming after the last commit."""

from __future__ import annotations

import grpc
import pytest
from pubsub_support import EVENT_TOPIC, PubSub, pb2, records_of, replay, trailers


def create(ps: PubSub, name: str = "Orders_Sub", topic: str = EVENT_TOPIC, **fields) -> dict:
    reply = ps.sf.admin("POST", "pubsub/managed-subscriptions", {"developer_name": name, "topic": topic, **fields})
    assert reply.status_code == 201, reply.text
    return reply.json()


def publish(ps: PubSub, *numbers: str) -> None:
    response = ps.publish(EVENT_TOPIC, [{"OrderNumber__c": n} for n in numbers])
    assert all(not r.HasField("error") for r in response.results)


def commit(stream, request_id: str, replay_id: bytes):
    stream.send(pb2.ManagedFetchRequest(
        commit_replay_id_request=pb2.CommitReplayRequest(commit_request_id=request_id, replay_id=replay_id)))
    while True:
        response = stream.next()
        if response.HasField("commit_response"):
            return response.commit_response


def test_commits_are_kept_and_a_new_stream_resumes_after_them(ps):
    sub = create(ps, default_replay="EARLIEST")
    assert sub["id"].startswith("18x") and len(sub["id"]) == 18 and sub["committed_replay_id"] is None
    publish(ps, "1", "2", "3")
    stream = ps.managed(pb2.ManagedFetchRequest(developer_name="Orders_Sub", num_requested=2))
    first = stream.next()
    assert [e.replay_id for e in first.events] == [replay(1), replay(2)] and first.pending_num_requested == 0
    answer = commit(stream, "c-1", replay(2))
    assert answer.commit_request_id == "c-1" and answer.replay_id == replay(2)
    assert not answer.HasField("error") and answer.process_time > 0
    stored = ps.sf.admin("GET", f"pubsub/managed-subscriptions/{sub['id']}").json()
    assert stored["committed_replay_id"] == 2 and stored["active"] is True
    assert stored["commits"][0]["commit_request_id"] == "c-1"
    stream.close()
    again = ps.managed(pb2.ManagedFetchRequest(subscription_id=sub["id"][:15], num_requested=5))
    [event] = ps.events(again, 1)  # only what follows the commit
    assert event.replay_id == replay(3) and records_of(ps, [event])[0]["OrderNumber__c"] == "3"


def test_refused_commits_answer_on_the_stream_without_ending_it(ps):
    create(ps)
    stream = ps.managed(pb2.ManagedFetchRequest(developer_name="orders_sub", num_requested=5))
    publish(ps, "1")
    [event] = ps.events(stream, 1)
    ahead = commit(stream, "c-ahead", replay(7))  # not delivered yet
    assert ahead.error.code == pb2.COMMIT and "not delivered" in ahead.error.msg
    bad = commit(stream, "c-bad", b"\x01")
    assert bad.error.code == pb2.COMMIT
    assert not commit(stream, "c-ok", event.replay_id).HasField("error")
    publish(ps, "2")
    assert [e.replay_id for e in ps.events(stream, 1)] == [replay(2)]  # the stream goes on
    commits = ps.sf.admin("GET", "pubsub/managed-subscriptions/Orders_Sub").json()["commits"]
    assert [(c["commit_request_id"], c["replay_id"], c["error"] is None) for c in commits] == [
        ("c-ahead", None, False), ("c-bad", None, False), ("c-ok", 1, True)]


def test_new_subscription_starts_at_latest_by_default(ps):
    publish(ps, "old")
    create(ps)
    stream = ps.managed(pb2.ManagedFetchRequest(developer_name="Orders_Sub", num_requested=5))
    assert stream.nothing_for(0.3)
    publish(ps, "new")
    assert records_of(ps, ps.events(stream, 1))[0]["OrderNumber__c"] == "new"


@pytest.mark.parametrize("first, status, code", [
    (dict(developer_name="Nope", num_requested=1), "NOT_FOUND", "developer.name.not.found"),
    (dict(subscription_id="18x000000000099AAA", num_requested=1), "NOT_FOUND", "subscription.id.not.found"),
    (dict(subscription_id="18x", num_requested=1), "INVALID_ARGUMENT", "subscription.id.invalid"),
    (dict(num_requested=1), "INVALID_ARGUMENT", "id.or.developer.name.empty"),
    (dict(developer_name="Orders_Sub", num_requested=-1), "INVALID_ARGUMENT", "fetch.request.events.invalid"),
    (dict(developer_name="Orders_Sub", num_requested=1,
          commit_replay_id_request=pb2.CommitReplayRequest(commit_request_id="x", replay_id=replay(1))),
     "INVALID_ARGUMENT", "fetch.request.commit.request.restricted"),
])
def test_bad_first_requests(ps, first, status, code):
    create(ps)
    error = ps.managed(pb2.ManagedFetchRequest(**first)).error()
    assert error.code() == getattr(grpc.StatusCode, status)
    assert trailers(error)["error-code"] == f"sfdc.platform.eventbus.grpc.managed.subscription.{code}"


def test_one_active_stream_per_subscription_and_stopped_ones_refuse(ps):
    sub = create(ps)
    first = ps.managed(pb2.ManagedFetchRequest(developer_name="Orders_Sub", num_requested=1))
    publish(ps, "1")
    ps.events(first, 1)
    error = ps.managed(pb2.ManagedFetchRequest(developer_name="Orders_Sub", num_requested=1)).error()
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailers(error)["error-code"].endswith("managed.subscription.already.active")
    first.close()
    assert ps.sf.admin("POST", f"pubsub/managed-subscriptions/{sub['id']}", {"state": "STOP"}).status_code == 200
    error = ps.managed(pb2.ManagedFetchRequest(developer_name="Orders_Sub", num_requested=1)).error()
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailers(error)["error-code"].endswith("managed.subscription.config.stopped")


def test_admin_knob_checks_its_input(ps):
    create(ps)
    for body in ({"developer_name": "Orders_Sub", "topic": EVENT_TOPIC},  # duplicate
                 {"developer_name": "X", "topic": "/event/Nope__e"},
                 {"developer_name": "bad name", "topic": EVENT_TOPIC},
                 {"developer_name": "Y", "topic": EVENT_TOPIC, "default_replay": "CUSTOM"}):
        reply = ps.sf.admin("POST", "pubsub/managed-subscriptions", body)
        assert reply.status_code == 400, body
    assert [s["developer_name"] for s in ps.sf.admin("GET", "pubsub/managed-subscriptions").json()] == ["Orders_Sub"]
    assert ps.sf.admin("GET", "pubsub/managed-subscriptions/Nope").status_code == 404


TOOLING = "/services/data/v62.0/tooling"


def test_tooling_api_defines_and_finds_managed_subscriptions(ps):
    body = {"FullName": "Tooling_Sub", "Metadata": {"label": "Tooling Sub", "topicName": EVENT_TOPIC,
                                                      "defaultReplay": "EARLIEST", "state": "RUN",
                                                      "errorRecoveryReplay": "LATEST"}}
    reply = ps.sf.post(f"{TOOLING}/sobjects/ManagedEventSubscription", json=body)
    assert reply.status_code == 201 and reply.json()["success"] is True
    sub_id = reply.json()["id"]
    assert sub_id.startswith("18x") and len(sub_id) == 18
    found = ps.sf.get(f"{TOOLING}/query", params={
        "q": "SELECT Id, DeveloperName, Metadata FROM ManagedEventSubscription WHERE DeveloperName='Tooling_Sub' LIMIT 1"})
    assert found.status_code == 200
    [record] = found.json()["records"]
    assert record["Id"] == sub_id and record["DeveloperName"] == "Tooling_Sub"
    assert record["Metadata"] == body["Metadata"]
    by_id = ps.sf.get(f"{TOOLING}/query", params={
        "q": f"SELECT Id FROM ManagedEventSubscription WHERE Id = '{sub_id[:15]}'"}).json()
    assert by_id["totalSize"] == 1 and set(by_id["records"][0]) == {"attributes", "Id"}
    publish(ps, "1")
    stream = ps.managed(pb2.ManagedFetchRequest(subscription_id=sub_id, num_requested=1))
    assert [e.replay_id for e in stream.next().events] == [replay(1)]  # EARLIEST, as defined
    stream.close()
    assert ps.sf.patch(f"{TOOLING}/sobjects/ManagedEventSubscription/{sub_id}",
                       json={"Metadata": {"state": "STOP"}}).status_code == 204
    assert ps.sf.get(f"{TOOLING}/sobjects/ManagedEventSubscription/{sub_id}").json()["Metadata"]["state"] == "STOP"
    assert ps.sf.delete(f"{TOOLING}/sobjects/ManagedEventSubscription/{sub_id}").status_code == 204
    assert ps.sf.get(f"{TOOLING}/sobjects/ManagedEventSubscription/{sub_id}").status_code == 404


def test_tooling_api_bad_input(ps):
    bad_topic = {"FullName": "X", "Metadata": {"topicName": "/event/Nope__e"}}
    reply = ps.sf.post(f"{TOOLING}/sobjects/ManagedEventSubscription", json=bad_topic)
    assert reply.status_code == 400 and reply.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert "/event/Nope__e" in reply.json()[0]["message"]
    reply = ps.sf.post(f"{TOOLING}/sobjects/ManagedEventSubscription", json={"Metadata": {}})
    assert reply.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    reply = ps.sf.get(f"{TOOLING}/query", params={"q": "SELECT Id FROM ApexClass"})
    assert reply.status_code == 400 and reply.json()[0]["errorCode"] == "INVALID_TYPE"
    reply = ps.sf.get(f"{TOOLING}/query", params={"q": "SELECT Bogus FROM ManagedEventSubscription"})
    assert reply.json()[0]["errorCode"] == "INVALID_FIELD"
    reply = ps.sf.get(f"{TOOLING}/query", params={"q": "DELETE everything"})
    assert reply.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert ps.sf.get(f"{TOOLING}/query", params={"q": "SELECT Id FROM ManagedEventSubscription"},
                     token="bogus").status_code == 401
    assert ps.sf.get("/services/data/v12.0/tooling/query", params={"q": "SELECT Id FROM ManagedEventSubscription"}
                     ).status_code == 404
