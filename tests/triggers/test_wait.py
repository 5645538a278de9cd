"""The one-shot wait shared by the CometD and Pub/Sub triggers (triggers/_wait.py), over plain
async iterators: what the payload says when the stream ends early, times out or fails, and that
the hook is always closed. The triggers run it against the emulator in their own tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_salesforce_suite.triggers._wait import validate_wait, wait_for_events


@dataclass
class Event:
    replay_id: int
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"replay_id": self.replay_id, "payload": self.payload}


def stream(*events: Event, then: BaseException | None = None, hang: bool = False):
    async def gen():
        for event in events:
            yield event
        if then is not None:
            raise then
        if hang:
            await asyncio.sleep(3600)
    return gen


async def wait(subscribe, closed: list[bool], **kwargs: Any) -> dict[str, Any]:
    async def close() -> None:
        closed.append(True)

    options = {"source": "/data/X", "event_count": 2, "filter": None, "timeout": 5.0, "started_at": time.time(),
               "last_replay_id": -1, "replay_id_of": lambda event: event.replay_id, **kwargs}
    return await wait_for_events(subscribe, close=close, **options)


async def test_collects_matching_events_and_reports_the_last_seen() -> None:
    closed: list[bool] = []
    events = [Event(1, {"Name": "a"}), Event(2, {"Name": "b"}), Event(3, {"Name": "b"}), Event(4, {"Name": "b"})]
    payload = await wait(stream(*events, hang=True), closed, filter={"Name": "b"})
    assert payload == {"status": "success", "events": [e.to_dict() for e in events[1:3]], "last_replay_id": 3,
                       "message": None}
    assert closed == [True]


async def test_a_replayed_duplicate_is_counted_once_when_asked() -> None:
    events = [Event(1, {}), Event(1, {}), Event(2, {})]
    payload = await wait(stream(*events, hang=True), [], dedupe=True)
    assert [e["replay_id"] for e in payload["events"]] == [1, 2]


async def test_a_stream_that_ends_early_is_an_error_not_a_success() -> None:
    payload = await wait(stream(Event(1, {})), [])
    assert payload["status"] == "error" and payload["message"] == "RuntimeError: the subscription to /data/X ended after 1 event(s)"
    assert payload["events"] == [Event(1, {}).to_dict()]


async def test_a_failure_is_reported_as_text_and_the_hook_closed() -> None:
    closed: list[bool] = []
    payload = await wait(stream(then=ConnectionError("refused")), closed)
    assert (payload["status"], payload["message"], payload["last_replay_id"]) == ("error", "ConnectionError: refused", -1)
    assert closed == [True]


async def test_timeout_counts_from_started_at() -> None:
    closed: list[bool] = []
    payload = await wait(stream(Event(7, {}), hang=True), closed, timeout=0.2)
    assert payload["status"] == "timeout" and payload["last_replay_id"] == 7
    assert payload["message"].startswith("1 of 2 event(s) on /data/X after")
    expired = await wait(stream(hang=True), closed, timeout=1.0, started_at=time.time() - 5)
    assert expired["status"] == "timeout" and closed == [True, True]


@pytest.mark.parametrize("count, timeout, message", [(0, None, "event_count"), (True, None, "event_count"),
                                                     (1, 0, "timeout"), (1, "5", "timeout")])
def test_bad_arguments(count: Any, timeout: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_wait(count, timeout)
