"""Streaming: event latency, 100 watchers on one channel, one connection's throughput.

* ``latency``: one ``SalesforceEventTrigger`` in Airflow's shared-stream manager (ack mode);
  ``SF_BENCH_STREAM_EVENTS`` (200) Accounts created one at a time over REST; time from the create
  call to the ``TriggerEvent``. The samples are pooled across rounds (5 rounds: 1,000) for p50/p99.
* ``100 watchers``: 100 triggers on the same org and channel; CometD handshakes and subscribes the
  emulator counted (one connection), every watcher gets every event; the latency of an event is
  until the last of the 100 got it (``SF_BENCH_STREAM_EVENTS / 2`` a round, pooled); peak RSS.
* ``throughput``: 2,000 change events published through sObject Collections, then drained by one
  ``SalesforceStreamingHook.subscribe(replay_id=-2)``: events per second.

The floors (``bench.bare_cometd``): a bare ``aiohttp`` long-polling client (handshake, subscribe,
connect in a loop, nothing else) receiving while the records are created as in the other latency
case (``SalesforceRestHook.create``: only the receiving side differs), and the same client draining
the retained events. The 100 watchers have no floor (one connection is the point).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import requests

from bench.runner import BenchEnv, Case
from bench.stream_support import AssetState, measure_latency, quiet_run

EVENTS = int(os.environ.get("SF_BENCH_STREAM_EVENTS", "200"))
CHANNEL = "/data/AccountChangeEvent"
GROUP = f"Streaming (emulator, loopback): latency over {EVENTS} events a round, 100 watchers, one connection's throughput"


def _stats(env: BenchEnv) -> dict[str, Any]:
    return requests.get(f"{env.url}/__emulator__/stats", verify=env.ca_bundle or True, timeout=10).json()["streaming"]


def _setup(env: BenchEnv) -> Any:
    requests.post(f"{env.url}/__emulator__/reset", verify=env.ca_bundle or True, timeout=60).raise_for_status()
    # a reset selects no entity for Change Data Capture (as in a new org): select Account
    requests.post(f"{env.url}/__emulator__/streaming/config", json={"cdc_entities": ["Account"]},
                  verify=env.ca_bundle or True, timeout=10).raise_for_status()
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    hook = SalesforceRestHook()
    hook.describe("Account")  # imports, authentication and the TLS handshake before the clock
    return hook


async def _watch(env: BenchEnv, rest: Any, watchers: int, events: int) -> dict[str, Any]:
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

    manager = SharedStreamManager(ack_timeout=60)
    received: dict[int, list[float]] = {i: [] for i in range(watchers)}

    async def run(trigger_id: int) -> None:
        trigger = SalesforceEventTrigger(channel=CHANNEL)
        trigger.asset_state_store = AssetState(f"asset-{trigger_id}")
        key = trigger.shared_stream_key()
        async for _ in trigger.filter_shared_stream(manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)):
            received[trigger_id].append(time.perf_counter())
            seq = manager.bind_pending_event(trigger_id=trigger_id, key=key)
            if seq is not None:
                manager.confirm_persisted([seq])

    before = _stats(env)
    tasks = [asyncio.create_task(run(i)) for i in range(watchers)]
    try:
        async with asyncio.timeout(60):
            while _stats(env)["subscriptions"] < 1:
                await asyncio.sleep(0.05)
        latencies = []
        first = time.perf_counter()
        for n in range(events):
            started = time.perf_counter()
            await asyncio.to_thread(rest.create, "Account", {"Name": f"bench {n}"})
            async with asyncio.timeout(30):
                while any(len(times) <= n for times in received.values()):
                    await asyncio.sleep(0.001)
            latencies.append(max(times[n] for times in received.values()) - started)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop_all()
    timed = time.perf_counter() - first  # first create to the last watcher's last event (the table's wall)
    after = _stats(env)
    return {"latency_ms": [round(x * 1000, 3) for x in latencies],  # samples: the runner pools the rounds
            "timed_s": timed,
            "watchers": watchers, "cometd_handshakes": after["handshakes"] - before["handshakes"],
            "cometd_subscribes": after["subscribes"] - before["subscribes"]}


def _setup_floor_latency(env: BenchEnv) -> dict[str, Any]:
    """The cases' creator (the same REST create for every latency case) and a token for the bare receiver."""
    import aiohttp  # noqa: F401  (imported before the clock)

    from bench.rest_support import token

    return {"rest": _setup(env), "token": token(env)}


def floor_latency(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The floor: the bare CometD client receiving; the records created as in the other latency
    cases (the create is part of every latency; only the receiving side differs)."""
    from bench.bare_cometd import events

    access, instance = prepared["token"]

    def create(n: int) -> None:
        prepared["rest"].create("Account", {"Name": f"bench {n}"})

    async def subscribed() -> bool:
        return (await asyncio.to_thread(_stats, env))["subscriptions"] >= 1

    async def run() -> dict[str, Any]:
        arrivals = lambda: events(instance, access, CHANNEL, -1, env.ca_bundle)
        return {**await measure_latency(create, arrivals, subscribed, EVENTS), "watchers": 1}

    return quiet_run(run())


def latency(env: BenchEnv, prepared: Any) -> dict[str, Any]:
    return quiet_run(_watch(env, prepared, 1, EVENTS))


def many_watchers(env: BenchEnv, prepared: Any) -> dict[str, Any]:
    return quiet_run(_watch(env, prepared, 100, max(5, EVENTS // 2)))


def _publish(env: BenchEnv) -> int:
    rest = _setup(env)
    total = 2_000
    for start in range(0, total, 200):
        rest.request("POST", rest.data_url("composite/sobjects"), json={"allOrNone": False, "records": [
            {"attributes": {"type": "Account"}, "Name": f"burst {n}"} for n in range(start, start + 200)]})
    return total


def _publish_bare(env: BenchEnv) -> dict[str, Any]:
    import aiohttp  # noqa: F401  (imported before the clock)

    from bench.rest_support import token

    return {"events": _publish(env), "token": token(env)}


def floor_throughput(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The floor: the bare CometD client draining every retained event (replay -2)."""
    from bench.bare_cometd import events

    access, instance = prepared["token"]
    total = prepared["events"]

    async def drain() -> float:
        started, seen = time.perf_counter(), 0
        stream = events(instance, access, CHANNEL, -2, env.ca_bundle)
        async with contextlib.aclosing(stream):
            async for _ in stream:
                seen += 1
                if seen == total:
                    break
        return time.perf_counter() - started

    elapsed = quiet_run(drain())
    return {"events": total, "events_per_s": round(total / elapsed)}


def throughput(env: BenchEnv, prepared: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

    async def drain() -> float:
        hook = SalesforceStreamingHook()
        started, seen = time.perf_counter(), 0
        async with contextlib.aclosing(hook.subscribe(CHANNEL, replay_id=-2)) as stream:
            async for _ in stream:
                seen += 1
                if seen == prepared:
                    break
        elapsed = time.perf_counter() - started
        await hook._async_session.close()
        return elapsed

    elapsed = quiet_run(drain())
    return {"events": prepared, "events_per_s": round(prepared / elapsed)}


CASES = [
    Case("floor: bare aiohttp CometD, latency", floor_latency, setup=_setup_floor_latency, floor=True,
         job="latency"),
    Case("latency, 1 watcher", latency, setup=_setup, job="latency"),
    Case("100 watchers, 1 channel", many_watchers, setup=_setup, job="100 watchers"),
    Case("floor: bare aiohttp CometD, throughput", floor_throughput, setup=_publish_bare, floor=True,
         job="throughput"),
    Case("throughput, 1 connection", throughput, setup=_publish, job="throughput"),
]
