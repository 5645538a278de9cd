"""Streaming API: a PushTopic this test creates (and deletes), and the event of one change."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook, StreamingEvent
from tests.contract.contract_org import Org

EVENT_WAIT_SECONDS = 120.0


async def _first_event(hook: SalesforceStreamingHook, channel: str, name: str) -> StreamingEvent:
    # -2: every retained event, so the change made before subscribing arrives without a race
    async with aclosing(hook.subscribe(channel, replay_id=-2)) as stream:
        async for event in stream:
            if event.payload.get("sobject", {}).get("Name") == name:
                return event
    raise AssertionError("the stream ended")


def test_pushtopic_event_of_a_change(org: Org) -> None:
    hook = SalesforceStreamingHook(org.conn_id)
    topic = f"sfct{org.tag[:12]}"  # PushTopic names: at most 25 characters
    name = org.name("stream")
    hook.create_push_topic(topic, f"SELECT Id, Name FROM Account WHERE Name = '{name}'")
    org.on_teardown(lambda: hook.delete_push_topic(topic))
    (account_id,) = org.create_accounts("stream")

    event = asyncio.run(asyncio.wait_for(_first_event(hook, f"/topic/{topic}", name), EVENT_WAIT_SECONDS))
    assert event.channel == f"/topic/{topic}"
    assert event.payload["event"]["type"] == "created"
    assert isinstance(event.replay_id, int) and event.replay_id > 0
    assert event.payload["sobject"] == {"Id": account_id, "Name": name}
