"""Streaming hook against the emulator's CometD endpoint: PushTopic events, replay (-1, -2, stored
id, gaps), re-handshake, session expiry, dropped long polls, refused subscriptions, PushTopics."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError, SalesforceSessionExpiredError
from airflow_provider_salesforce_suite.hooks.streaming import (
    SalesforceReplayGapError,
    SalesforceStreamingError,
    SalesforceStreamingHook,
    StreamingEvent,
)
from tests.hooks.streaming_support import CHANNEL, TOPIC, Subscriber, names, run, streaming  # noqa: F401


def _subscribed(count: int = 1):
    return lambda stats: stats["subscriptions"] >= count


def test_pushtopic_events_of_rest_writes(streaming) -> None:
    async def scenario():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            (first,) = await streaming.acreate("Alpha")
            await streaming.acreate("Beta")
            await asyncio.to_thread(streaming.rest.update, "Account", first, {"Name": "Alpha2"})
            await asyncio.to_thread(streaming.rest.delete, "Account", first)
            return await sub.wait_for(4)

    events = run(scenario())
    assert [e.payload["event"]["type"] for e in events] == ["created", "created", "updated", "deleted"]
    assert names(events[:3]) == ["Alpha", "Beta", "Alpha2"]
    assert all(e.channel == CHANNEL for e in events)
    ids = [e.replay_id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert events[0].created_date == events[0].payload["event"]["createdDate"]


def test_replay_all_retained_and_after_a_stored_id(streaming) -> None:
    streaming.accounts("One", "Two", "Three")

    async def scenario(replay_id):
        async with Subscriber(streaming.hook, replay_id=replay_id) as sub:
            return list(await sub.wait_for(3 if replay_id == -2 else 2))

    everything = run(scenario(-2))
    assert names(everything) == ["One", "Two", "Three"]
    after_first = run(scenario(everything[0].replay_id))
    assert names(after_first) == ["Two", "Three"]


def test_replay_new_only_skips_retained_events(streaming) -> None:
    streaming.accounts("Old")

    async def scenario():
        async with Subscriber(streaming.hook, replay_id=-1) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("New")
            return await sub.wait_for(1)

    assert names(run(scenario())) == ["New"]


def test_replay_map_per_channel(streaming) -> None:
    streaming.hook.create_push_topic("StreamNamedB", "SELECT Id, Name FROM Account WHERE Name = 'B'")
    streaming.accounts("A", "B")

    async def scenario():
        channels = [CHANNEL, "/topic/StreamNamedB"]
        async with Subscriber(streaming.hook, channels, replay_id={"/topic/StreamNamedB": -2}) as sub:
            await streaming.until(_subscribed(2))
            await streaming.acreate("C")
            return await sub.wait_for(2)

    events = run(scenario())
    assert [(e.channel, e.payload["sobject"]["Name"]) for e in events] == [("/topic/StreamNamedB", "B"), (CHANNEL, "C")]


def test_replay_gap_fails_loudly_naming_id_and_channel(streaming) -> None:
    streaming.accounts("One", "Two", "Three")
    streaming.knob("age-out", {"channel": CHANNEL, "count": 2})

    async def scenario():
        async with Subscriber(streaming.hook, replay_id=0) as sub:
            return await sub.failure()

    error = run(scenario())
    assert isinstance(error, SalesforceReplayGapError)
    assert (error.channel, error.replay_id) == (CHANNEL, 0)
    assert "0" in str(error) and CHANNEL in str(error) and "400::The replayId" in error.error


def test_replay_gap_earliest_restarts_from_retained_events(streaming) -> None:
    streaming.accounts("One", "Two", "Three")
    streaming.knob("age-out", {"channel": CHANNEL, "count": 2})

    async def scenario():
        async with Subscriber(streaming.hook, replay_id=0, on_replay_gap="earliest") as sub:
            await sub.wait_for(1)
            await streaming.acreate("Four")
            return await sub.wait_for(2)

    assert names(run(scenario())) == ["Three", "Four"]


def test_rehandshake_after_forgotten_client_resumes_from_last_delivered(streaming) -> None:
    async def scenario():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("Before")
            await sub.wait_for(1)
            await asyncio.to_thread(streaming.knob, "forget-clients")
            # Published while the client is unknown: only a resubscribe from the last delivered
            # replay id (not -1) brings it.
            await streaming.acreate("While")
            await streaming.until(lambda s: s["handshakes"] >= 2 and s["subscriptions"] >= 1)
            await streaming.acreate("After")
            return await sub.wait_for(3)

    events = run(scenario())
    assert names(events) == ["Before", "While", "After"]
    assert len({e.replay_id for e in events}) == 3
    assert streaming.stats()["unknown_client_errors"] >= 1


def test_session_expiry_mid_stream_reauthenticates_once_without_gaps(streaming) -> None:
    async def main():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("Before")
            await sub.wait_for(1)
            before = await asyncio.to_thread(streaming.admin.stats)
            await asyncio.to_thread(streaming.admin.expire_sessions)
            await streaming.until(lambda s: s["authentication_errors"] >= 1 and s["handshakes"] >= 2
                                  and s["subscriptions"] >= 1)
            after_reauth = await asyncio.to_thread(streaming.admin.stats)
            await streaming.acreate("After")
            return before, after_reauth, await sub.wait_for(2)

    before, after, events = run(main())
    assert names(events) == ["Before", "After"]
    # The stream re-authenticated exactly once (the REST write after it reused the new token).
    assert after["token_grants_total"] - before["token_grants_total"] == 1
    assert streaming.admin.stats()["token_grants_total"] == after["token_grants_total"]


def test_events_published_during_session_expiry_are_not_lost(streaming) -> None:
    async def main():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("Before")
            await sub.wait_for(1)
            grants = (await asyncio.to_thread(streaming.admin.stats))["token_grants_total"]
            await asyncio.to_thread(streaming.admin.expire_sessions)
            await streaming.acreate("During")  # the REST call re-authenticates; the stream reuses its token
            events = await sub.wait_for(2)
            return grants, events

    grants, events = run(main())
    assert names(events) == ["Before", "During"]
    assert streaming.admin.stats()["token_grants_total"] == grants + 1


def test_dropped_long_poll_resubscribes_from_last_delivered(streaming) -> None:
    async def main():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("Before")
            await sub.wait_for(1)
            await streaming.until(lambda s: s["held_connects"] >= 1)
            dropped = await asyncio.to_thread(streaming.knob, "drop-connects")
            await streaming.acreate("WhileDown")  # before the new session subscribes
            await streaming.until(lambda s: s["handshakes"] >= 2 and s["subscriptions"] >= 1)
            await streaming.acreate("After")
            return dropped, await sub.wait_for(3)

    dropped, events = run(main())
    assert dropped["dropped"] == 1
    assert names(events) == ["Before", "WhileDown", "After"]


def test_long_poll_dropped_by_a_fault_is_survived(streaming) -> None:
    async def main():
        async with Subscriber(streaming.hook) as sub:
            await streaming.until(_subscribed())
            await streaming.acreate("Before")
            await sub.wait_for(1)
            await asyncio.to_thread(streaming.admin.fault, drop_connection=True, path_prefix="/cometd", count=1)
            await streaming.until(lambda s: s["handshakes"] >= 2 and s["subscriptions"] >= 1)
            await streaming.acreate("After")
            return await sub.wait_for(2)

    assert names(run(main())) == ["Before", "After"]


def test_transient_failures_opening_the_session_are_retried(streaming) -> None:
    streaming.admin.fault(status=503, path_prefix="/cometd", count=2)
    streaming.accounts("Kept")

    async def main():
        async with Subscriber(streaming.hook, replay_id=-2) as sub:
            return await sub.wait_for(1)

    assert names(run(main())) == ["Kept"]
    assert streaming.stats()["handshakes"] == 1


def test_unknown_channel_is_refused_with_salesforces_message(streaming) -> None:
    async def main():
        async with Subscriber(streaming.hook, "/topic/Nope") as sub:
            return await sub.failure()

    error = run(main())
    assert type(error) is SalesforceStreamingError
    assert error.channel == "/topic/Nope"
    assert "400::The channel you requested to subscribe to does not exist {/topic/Nope}" in str(error)


def test_session_auth_type_cannot_reauthenticate(streaming, sf_conn) -> None:
    token = streaming.hook.session.token
    conn = sf_conn("sf_stream_session", extra={"auth_type": "session", "session_id": token.access_token,
                                                "instance_url": token.instance_url})
    streaming.admin.expire_sessions()

    async def main():
        async with Subscriber(SalesforceStreamingHook(conn)) as sub:
            return await sub.failure()

    error = run(main())
    assert isinstance(error, SalesforceSessionExpiredError)
    assert token.access_token not in str(error)


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": []}, "at least one channel"),
    ({"channels": "topic/NoSlash"}, "start with '/'"),
    ({"channels": "/meta/connect"}, "meta channel"),
    ({"channels": [CHANNEL, CHANNEL]}, "duplicate"),
    ({"channels": CHANNEL, "replay_id": -3}, "replay_id"),
    ({"channels": CHANNEL, "replay_id": "5"}, "replay_id"),
    ({"channels": CHANNEL, "replay_id": True}, "replay_id"),
    ({"channels": CHANNEL, "replay_id": {"/topic/Other": 1}}, "not subscribed"),
    ({"channels": CHANNEL, "on_replay_gap": "ignore"}, "on_replay_gap"),
])
def test_bad_subscribe_arguments(kwargs, message) -> None:
    hook = SalesforceStreamingHook("never_used")  # fails before any connection lookup

    async def main():
        await anext(hook.subscribe(**kwargs))

    with pytest.raises(ValueError, match=message):
        run(main())


def test_streaming_event_is_json_safe() -> None:
    message = {"channel": "/event/Order__e", "data": {"schema": "s1", "payload": {"CreatedDate": "2026-01-01T00:00:00Z",
               "Amount__c": 5}, "event": {"replayId": 7, "EventUuid": "u"}}}
    event = StreamingEvent.from_message(message)
    assert (event.replay_id, event.created_date) == (7, "2026-01-01T00:00:00Z")
    assert StreamingEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    for bad in ({}, {"channel": "/x"}, {"channel": "/x", "replay_id": "1"}, None):
        with pytest.raises(ValueError):
            StreamingEvent.from_dict(bad)


def test_streaming_url(streaming) -> None:
    hook = streaming.hook
    assert hook.streaming_url() == f"{hook.instance_url}/cometd/{hook.api_version}"


# -- PushTopic management ----------------------------------------------------------------------------
def test_ensure_push_topic_is_idempotent(streaming) -> None:
    hook = streaming.hook
    topic_id, changed = hook.ensure_push_topic("Ensured", "SELECT Id, Name FROM Contact")
    assert changed
    assert hook.ensure_push_topic("Ensured", "SELECT Id, Name FROM Contact") == (topic_id, False)
    assert hook.ensure_push_topic("Ensured", "SELECT Id, Name FROM Contact", operations=["create"]) == (topic_id, True)
    topic = hook.get_push_topic("Ensured")
    assert (topic["NotifyForOperationCreate"], topic["NotifyForOperationUpdate"]) == (True, False)
    assert hook.ensure_push_topic("Ensured", "SELECT Id FROM Contact", operations=["create"]) == (topic_id, True)
    assert hook.get_push_topic("Ensured")["Query"] == "SELECT Id FROM Contact"
    assert hook.ensure_push_topic("Ensured", "SELECT Id FROM Contact", operations=["create"]) == (topic_id, False)


def test_push_topic_update_and_delete(streaming) -> None:
    hook = streaming.hook
    topic_id = hook.create_push_topic("Managed", "SELECT Id FROM Lead", notify_for_fields="All",
                                      operations=("create", "update"))
    topic = hook.get_push_topic("Managed")
    assert topic["Id"] == topic_id and topic["NotifyForFields"] == "All" and topic["ApiVersion"] == 64.0
    assert topic["NotifyForOperationDelete"] is False
    hook.update_push_topic("Managed", description="leads", is_active=False)
    assert hook.get_push_topic("Managed")["Description"] == "leads"
    assert hook.get_push_topic("Managed")["IsActive"] is False
    assert hook.delete_push_topic("Managed") == topic_id
    assert hook.get_push_topic("Managed") is None
    with pytest.raises(SalesforceNotFoundError, match="Managed"):
        hook.delete_push_topic("Managed")
    with pytest.raises(SalesforceNotFoundError):
        hook.update_push_topic("Managed", description="x")


def test_push_topic_name_with_quote_is_escaped(streaming) -> None:
    assert streaming.hook.get_push_topic("it's") is None


@pytest.mark.parametrize("call, message", [
    (lambda h: h.create_push_topic("", "SELECT Id FROM Account"), "non-empty"),
    (lambda h: h.create_push_topic("x" * 26, "SELECT Id FROM Account"), "25"),
    (lambda h: h.create_push_topic("T", " "), "query"),
    (lambda h: h.create_push_topic("T", "SELECT Id FROM Account", notify_for_fields="Some"), "notify_for_fields"),
    (lambda h: h.create_push_topic("T", "SELECT Id FROM Account", operations=["merge"]), "operations"),
    (lambda h: h.create_push_topic("T", "SELECT Id FROM Account", operations=[]), "operations"),
    (lambda h: h.create_push_topic("T", "SELECT Id FROM Account", api_version="latest"), "api_version"),
    (lambda h: h.update_push_topic("T", colour="red"), "unknown PushTopic option"),
    (lambda h: h.ensure_push_topic("T", "SELECT Id FROM Account", colour="red"), "unknown PushTopic option"),
])
def test_bad_push_topic_arguments(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call(SalesforceStreamingHook("never_used"))
