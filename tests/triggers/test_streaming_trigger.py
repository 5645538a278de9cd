"""SalesforceStreamingTrigger against the emulator: N events, filter, timeout, errors, serialization."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from airflow_provider_salesforce_suite.triggers.streaming import (
    SalesforceStreamingTrigger,
    compile_event_filter,
    validate_event_filter,
)
from tests.hooks.streaming_support import CHANNEL, run, streaming  # noqa: F401


async def _fire(trigger: SalesforceStreamingTrigger, action=None) -> list:
    """Run the trigger to its end (it must yield exactly one event), doing ``action`` meanwhile."""
    fired = []

    async def consume():
        async for event in trigger.run():
            fired.append(event.payload)

    task = asyncio.ensure_future(consume())
    if action is not None:
        await action()
    await task
    return fired


def _trigger(streaming, **kwargs) -> SalesforceStreamingTrigger:
    return SalesforceStreamingTrigger(channel=CHANNEL, salesforce_conn_id=streaming.conn_id, **kwargs)


def test_fires_once_after_n_events(streaming) -> None:
    streaming.accounts("One", "Two", "Three")
    (payload,) = run(_fire(_trigger(streaming, replay_id=-2, event_count=2, timeout=20)))
    assert payload["status"] == "success"
    assert [e["payload"]["sobject"]["Name"] for e in payload["events"]] == ["One", "Two"]
    assert payload["last_replay_id"] == payload["events"][-1]["replay_id"]
    json.dumps(payload)


def test_filter_waits_for_a_matching_event(streaming) -> None:
    trigger = _trigger(streaming, filter={"sobject.Name": "Wanted", "event.type": "created"}, timeout=20)

    async def action():
        await streaming.until(lambda s: s["subscriptions"] >= 1)
        await streaming.acreate("Other", "Wanted", "Later")

    (payload,) = run(_fire(trigger, action))
    assert payload["status"] == "success"
    assert [e["payload"]["sobject"]["Name"] for e in payload["events"]] == ["Wanted"]
    assert payload["last_replay_id"] == payload["events"][0]["replay_id"]


def test_timeout_fires_with_what_arrived(streaming) -> None:
    streaming.accounts("Only")
    started = time.monotonic()
    (payload,) = run(_fire(_trigger(streaming, replay_id=-2, event_count=2, timeout=2)))
    assert payload["status"] == "timeout"
    assert [e["payload"]["sobject"]["Name"] for e in payload["events"]] == ["Only"]
    assert payload["last_replay_id"] == payload["events"][0]["replay_id"]
    assert "1 of 2" in payload["message"]
    assert 1.5 < time.monotonic() - started < 10


def test_deadline_survives_reserialization(streaming) -> None:
    trigger = _trigger(streaming, timeout=5, started_at=time.time() - 10)
    (payload,) = run(_fire(trigger))
    assert payload == {"status": "timeout", "events": [], "last_replay_id": -1, "message": payload["message"]}


def test_refused_subscription_is_an_error_event(streaming) -> None:
    trigger = SalesforceStreamingTrigger(channel="/topic/Nope", salesforce_conn_id=streaming.conn_id, timeout=20)
    (payload,) = run(_fire(trigger))
    assert payload["status"] == "error"
    assert "does not exist {/topic/Nope}" in payload["message"]


def test_replay_gap_is_an_error_event_naming_id_and_channel(streaming) -> None:
    streaming.accounts("One", "Two")
    streaming.knob("age-out", {"channel": CHANNEL, "count": 2})
    (payload,) = run(_fire(_trigger(streaming, replay_id=0, timeout=20)))
    assert payload["status"] == "error"
    assert "SalesforceReplayGapError" in payload["message"] and "0" in payload["message"] and CHANNEL in payload["message"]


def test_serialize_round_trip() -> None:
    trigger = SalesforceStreamingTrigger(channel="/data/AccountChangeEvent", salesforce_conn_id="c", replay_id=42,
                                         event_count=3, filter={"payload.ChangeEventHeader.changeType": "UPDATE"},
                                         timeout=60, on_replay_gap="earliest", api_version="62.0")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.streaming.SalesforceStreamingTrigger"
    kwargs = json.loads(json.dumps(kwargs))
    module, name = classpath.rsplit(".", 1)
    clone = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert clone.serialize() == (classpath, kwargs)
    assert kwargs["started_at"] == trigger.started_at


@pytest.mark.parametrize("kwargs, message", [
    ({"channel": "topic/X"}, "start with '/'"),
    ({"channel": ["/topic/A", "/topic/B"]}, "one channel"),
    ({"channel": CHANNEL, "replay_id": "7"}, "replay_id"),
    ({"channel": CHANNEL, "event_count": 0}, "event_count"),
    ({"channel": CHANNEL, "event_count": True}, "event_count"),
    ({"channel": CHANNEL, "timeout": 0}, "timeout"),
    ({"channel": CHANNEL, "timeout": "soon"}, "timeout"),
    ({"channel": CHANNEL, "on_replay_gap": "skip"}, "on_replay_gap"),
    ({"channel": CHANNEL, "filter": ["sobject.Name"]}, "mapping"),
    ({"channel": CHANNEL, "filter": {"sobject..Name": 1}}, "dotted"),
    ({"channel": CHANNEL, "filter": {"sobject.Name": object()}}, "JSON"),
])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforceStreamingTrigger(**kwargs)


def test_filter_semantics() -> None:
    event = {"payload": {"sobject": {"Name": "A", "Amount": 1, "Flag": True},
                         "payload": {"ChangeEventHeader": {"recordIds": ["001A", "001B"]}}}}
    assert compile_event_filter(None)(event)
    assert compile_event_filter({"sobject.Name": "A", "sobject.Amount": 1})(event)
    assert not compile_event_filter({"sobject.Name": "B"})(event)
    assert not compile_event_filter({"sobject.Missing": None})(event)
    assert compile_event_filter({"payload.ChangeEventHeader.recordIds.1": "001B"})(event)
    assert not compile_event_filter({"payload.ChangeEventHeader.recordIds.5": "001B"})(event)
    assert not compile_event_filter({"sobject.Flag": 1})(event)  # True is not 1
    assert not compile_event_filter({"sobject.Amount": True})(event)
    assert validate_event_filter({}) is None


def test_module_import_does_not_pull_cometd_or_aiohttp() -> None:
    code = ("import sys, airflow.sdk; before = set(sys.modules)\n"
            "import airflow_provider_salesforce_suite.triggers.streaming, airflow_provider_salesforce_suite.sensors.streaming\n"
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('aiocometd_noloop', 'aiohttp')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
