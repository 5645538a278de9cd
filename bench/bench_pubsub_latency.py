"""Pub/Sub API vs CometD: create-to-event latency, one Account created at a time over REST.

Each case subscribes (from the tip of the stream) and waits until the emulator counts the new
subscription (``/__emulator__/stats``: an open Pub/Sub stream, a CometD subscribe), then creates
``SF_BENCH_PUBSUB_LATENCY_EVENTS`` (200) Accounts one after another, waiting for each change event
before the next create; the latency of one event is the time from the create call to its arrival.
The samples are pooled across rounds (5 rounds: 1,000) for p50 and p99.

* **floor**: a bare gRPC client on the generated stubs (100 events requested, topped up after each
  event is handed over, nothing decoded): the emulator's own commit-to-delivery time plus the REST
  create.
* ``SalesforcePubSubEventTrigger``: the asset-watcher trigger in Airflow's shared-stream manager
  (ack mode), time to its ``TriggerEvent``.
* ``SalesforceEventTrigger`` (CometD): the same through the Streaming API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import requests

from bench.bench_pubsub import TOPIC, AssetState, bare_metadata, bare_responses, quiet_run, reset_with_cdc
from bench.runner import BenchEnv, Case
from bench.stream_support import measure_latency

EVENTS = int(os.environ.get("SF_BENCH_PUBSUB_LATENCY_EVENTS", "200"))
GROUP = f"Pub/Sub API vs CometD (emulator, loopback): create-to-event latency over {EVENTS} creates"


async def _measure(rest: Any, arrivals: Callable[[], AsyncIterator[Any]], ready: Callable[[], bool]) -> dict[str, Any]:
    """Create one Account at a time through ``rest`` and time each change event's arrival."""
    return await measure_latency(lambda n: rest.create("Account", {"Name": f"latency {n}"}), arrivals, ready, EVENTS)


def _pubsub_streams(stats: dict[str, Any]) -> int:
    return int(stats["pubsub"]["open_streams"])


def _cometd_subscribes(stats: dict[str, Any]) -> int:
    return int(stats["streaming"]["subscribes"])


def _stats(env: BenchEnv) -> dict[str, Any]:
    reply = requests.get(f"{env.url}/__emulator__/stats", verify=env.ca_bundle or True, timeout=30)
    reply.raise_for_status()
    return reply.json()


async def _subscribed(env: BenchEnv, counter: Callable[[dict[str, Any]], int], before: int, live: asyncio.Event) -> None:
    """Set ``live`` once the emulator counts the new subscription (its start position is then fixed:
    every later create reaches it)."""
    while counter(await asyncio.to_thread(_stats, env)) <= before:
        await asyncio.sleep(0.01)
    live.set()


async def _with_readiness(env: BenchEnv, rest: Any, counter: Callable[[dict[str, Any]], int],
                          arrivals: Callable[[], AsyncIterator[Any]]) -> dict[str, Any]:
    live = asyncio.Event()
    watcher = asyncio.create_task(_subscribed(env, counter, counter(_stats(env)), live))
    try:
        return await _measure(rest, arrivals, live.is_set)
    finally:
        watcher.cancel()


def floor(env: BenchEnv, prepared: Any) -> dict[str, Any]:
    endpoint, metadata = bare_metadata()

    async def arrivals() -> AsyncIterator[Any]:
        async for response in bare_responses(env, endpoint, metadata, "LATEST", top_up_first=False):
            for event in response.events:
                yield event

    return quiet_run(_with_readiness(env, prepared, _pubsub_streams, arrivals))


def _trigger_case(make_trigger: Callable[[], Any],
                  counter: Callable[[dict[str, Any]], int]) -> Callable[[BenchEnv, Any], dict[str, Any]]:
    def run(env: BenchEnv, prepared: Any) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            from airflow.triggers.shared_stream import SharedStreamManager

            manager = SharedStreamManager(ack_timeout=60)
            trigger = make_trigger()
            trigger.asset_state_store = AssetState("bench-asset")
            key = trigger.shared_stream_key()

            async def arrivals() -> AsyncIterator[Any]:
                stream = manager.subscribe(trigger_id=1, trigger=trigger, key=key)
                async for event in trigger.filter_shared_stream(stream):
                    seq = manager.bind_pending_event(trigger_id=1, key=key)
                    if seq is not None:
                        manager.confirm_persisted([seq])
                    yield event

            try:
                return await _with_readiness(env, prepared, counter, arrivals)
            finally:
                await manager.stop_all()

        return quiet_run(main())

    return run


def _pubsub_trigger() -> Any:
    from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger

    return SalesforcePubSubEventTrigger(topic=TOPIC)


def _cometd_trigger() -> Any:
    from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

    return SalesforceEventTrigger(channel=TOPIC)


CASES = [
    Case("floor: bare gRPC Subscribe", floor, setup=reset_with_cdc, floor=True),
    Case("SalesforcePubSubEventTrigger (shared stream, ack)", _trigger_case(_pubsub_trigger, _pubsub_streams),
         setup=reset_with_cdc),
    Case("SalesforceEventTrigger (CometD)", _trigger_case(_cometd_trigger, _cometd_subscribes), setup=reset_with_cdc),
]
