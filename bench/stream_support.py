"""Helpers shared by the event benchmarks (Streaming and Pub/Sub): an in-memory asset state store,
a quiet ``asyncio.run`` and the create-to-arrival latency loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any


class AssetState:
    """An asset state store in memory (the triggerer reaches the real one through its supervisor)."""

    def __init__(self, name: str) -> None:
        self.name, self.values = name, {}
        self._by_name, self._by_uri = {name: self}, {}

    def __hash__(self) -> int:
        return hash(self.name)

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def quiet_run(coro: Any) -> Any:
    """``asyncio.run`` with log lines kept off stdout (the runner reads the case's JSON there)."""
    with contextlib.redirect_stdout(sys.stderr):
        return asyncio.run(coro)


async def measure_latency(create: Callable[[int], Any], arrivals: Callable[[], AsyncIterator[Any]],
                          ready: Callable[[], Any], events: int) -> dict[str, Any]:
    """Create one record at a time (``create(n)``, in a thread) and time each event's arrival through
    ``arrivals``, once ``ready()`` (awaitable or not) says the subscription is live; the round's
    samples in ms, which the runner pools across rounds, and as ``timed_s`` the time from the first
    create to the last arrival (the table's wall: imports and subscribing left out).

    :param create: makes the n-th record (blocking).
    :param arrivals: a fresh async iterator of the subscription's events.
    :param ready: true once the subscription is live (an awaitable result is awaited).
    :param events: how many records to create.
    """
    arrived: list[float] = []

    async def consume() -> None:
        async for _ in arrivals():
            arrived.append(time.perf_counter())

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(60):
            while not await _maybe_await(ready()):
                await asyncio.sleep(0.01)
        latencies = []
        first = time.perf_counter()
        for n in range(events):
            started = time.perf_counter()
            await asyncio.to_thread(create, n)
            async with asyncio.timeout(30):
                while len(arrived) <= n:
                    await asyncio.sleep(0.0005)
            latencies.append(arrived[n] - started)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"latency_ms": [round(x * 1000, 3) for x in latencies], "timed_s": arrived[events - 1] - first}


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value
