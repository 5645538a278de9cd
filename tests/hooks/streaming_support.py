"""Helpers for Streaming API tests: the emulator's streaming knobs and a background subscriber."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook, StreamingEvent

TOPIC = "StreamAccounts"
CHANNEL = f"/topic/{TOPIC}"
# Held /meta/connect answered after this many seconds without events (Salesforce: 110).
CONNECT_HOLD_SECONDS = 1


@dataclass
class Streaming:
    """A connection with a PushTopic on Account, and the emulator's knobs."""

    conn_id: str
    admin: Any

    @property
    def hook(self) -> SalesforceStreamingHook:
        return SalesforceStreamingHook(self.conn_id)

    @property
    def rest(self) -> SalesforceRestHook:
        return SalesforceRestHook(self.conn_id)

    def knob(self, name: str, body: dict | None = None, method: str = "POST") -> Any:
        return self.admin._call(method, f"streaming/{name}", body or {})

    def stats(self) -> dict:
        return self.admin.stats()["streaming"]

    def accounts(self, *names: str) -> list[str]:
        rest = self.rest
        return [rest.create("Account", {"Name": name}) for name in names]

    async def acreate(self, *names: str) -> list[str]:
        return await asyncio.to_thread(self.accounts, *names)

    async def until(self, check, timeout: float = 10.0) -> None:
        """Poll the admin API (off the loop) until ``check(streaming stats)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await asyncio.to_thread(self.stats)
            if check(stats):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; streaming stats: {stats}")
            await asyncio.sleep(0.05)


@pytest.fixture
def streaming(sf_conn, emulator_admin) -> Streaming:
    conn_id = sf_conn("sf_stream")
    emulator_admin._call("POST", "streaming/config", {"connect_timeout": CONNECT_HOLD_SECONDS})
    setup = Streaming(conn_id, emulator_admin)
    setup.hook.create_push_topic(TOPIC, "SELECT Id, Name FROM Account")
    return setup


class Subscriber:
    """Consume ``hook.subscribe(...)`` in a background task, collecting events."""

    def __init__(self, hook: SalesforceStreamingHook, channels: Any = CHANNEL, **options: Any) -> None:
        self.hook, self.channels, self.options = hook, channels, options
        self.events: list[StreamingEvent] = []
        self.error: BaseException | None = None
        self._task: asyncio.Task | None = None

    async def _consume(self) -> None:
        try:
            async with aclosing(self.hook.subscribe(self.channels, **self.options)) as stream:
                async for event in stream:
                    self.events.append(event)
        except Exception as exc:  # surfaced by wait_for
            self.error = exc

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.ensure_future(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[StreamingEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.events)} of {count} events: {self.events}")
            await asyncio.sleep(0.02)
        return self.events

    async def failure(self, timeout: float = 10.0) -> BaseException:
        deadline = time.monotonic() + timeout
        while self.error is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no error; events: {self.events}")
            await asyncio.sleep(0.02)
        return self.error


def run(coro: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def names(events: list[StreamingEvent]) -> list[str]:
    return [event.payload["sobject"]["Name"] for event in events]
