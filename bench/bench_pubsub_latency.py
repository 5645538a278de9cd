"""Pub/Sub API vs CometD: create-to-event latency, one Account created at a time over REST.

Each case subscribes (from the tip of the stream), then creates ``SF_BENCH_PUBSUB_LATENCY_EVENTS``
Accounts one after another, waiting for each change event before the next create; the latency of
one event is the time from the create call to its arrival (p50 and p99 in ms).

* **floor**: a bare gRPC client on the generated stubs (every event requested up front, nothing
  decoded): the emulator's own commit-to-delivery time plus the REST create.
* ``SalesforcePubSubEventTrigger``: the asset-watcher trigger in Airflow's shared-stream manager
  (ack mode), time to its ``TriggerEvent``.
* ``SalesforceEventTrigger`` (CometD): the same through the Streaming API.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench.bench_pubsub import TOPIC, AssetState, quiet_run, reset_with_cdc
from bench.runner import BenchEnv, Case

EVENTS = int(os.environ.get("SF_BENCH_PUBSUB_LATENCY_EVENTS", "200"))
GROUP = f"Pub/Sub API vs CometD (emulator, loopback): create-to-event latency over {EVENTS} creates"


def _percentiles(latencies: list[float]) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {"events": len(latencies), "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1)}


async def _measure(rest: Any, arrivals: Callable[[], AsyncIterator[Any]], ready: Callable[[], bool]) -> dict[str, Any]:
    """Create one Account at a time and time each change event's arrival through ``arrivals``."""
    arrived: list[float] = []

    async def consume() -> None:
        async for _ in arrivals():
            arrived.append(time.perf_counter())

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(60):
            while not ready():
                await asyncio.sleep(0.01)
        latencies = []
        for n in range(EVENTS):
            started = time.perf_counter()
            await asyncio.to_thread(rest.create, "Account", {"Name": f"latency {n}"})
            async with asyncio.timeout(30):
                while len(arrived) <= n:
                    await asyncio.sleep(0.0005)
            latencies.append(arrived[n] - started)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return _percentiles(latencies)


def floor(env: BenchEnv, prepared: Any) -> dict[str, Any]:
    import grpc

    from airflow_provider_salesforce_suite.core.pubsub import stubs
    from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

    pb2, pb2_grpc = stubs()
    hook = SalesforceBaseHook()
    token = hook.authenticator.get_token()
    org_id = token.extra["id"].rstrip("/").split("/")[-2]
    metadata = (("accesstoken", token.access_token), ("instanceurl", token.instance_url), ("tenantid", org_id))
    subscribed = asyncio.Event()

    async def arrivals() -> AsyncIterator[Any]:
        if env.ca_bundle:
            with open(env.ca_bundle, "rb") as fh:
                channel = grpc.aio.secure_channel(hook.config.pubsub_endpoint, grpc.ssl_channel_credentials(fh.read()))
        else:
            channel = grpc.aio.insecure_channel(hook.config.pubsub_endpoint)
        async with channel:
            await channel.channel_ready()

            async def fetches() -> AsyncIterator[Any]:
                yield pb2.FetchRequest(topic_name=TOPIC, replay_preset=pb2.LATEST, num_requested=EVENTS)
                await asyncio.Event().wait()

            call = pb2_grpc.PubSubStub(channel).Subscribe(fetches(), metadata=metadata)
            await call.wait_for_connection()
            subscribed.set()
            async for response in call:
                for event in response.events:
                    yield event

    async def main() -> dict[str, Any]:
        result = await _measure(prepared, arrivals, subscribed.is_set)
        return result

    return quiet_run(main())


def _trigger_case(make_trigger: Callable[[], Any]) -> Callable[[BenchEnv, Any], dict[str, Any]]:
    def run(env: BenchEnv, prepared: Any) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            from airflow.triggers.shared_stream import SharedStreamManager

            manager = SharedStreamManager(ack_timeout=60)
            trigger = make_trigger()
            trigger.asset_state_store = AssetState("bench-asset")
            key = trigger.shared_stream_key()
            joined = asyncio.Event()

            async def arrivals() -> AsyncIterator[Any]:
                stream = manager.subscribe(trigger_id=1, trigger=trigger, key=key)
                async for event in trigger.filter_shared_stream(_mark_first(stream, joined)):
                    seq = manager.bind_pending_event(trigger_id=1, key=key)
                    if seq is not None:
                        manager.confirm_persisted([seq])
                    yield event

            try:
                # The subscription is live once the group's join round reached the watcher; a short
                # settle covers the subscribe call that follows it.
                async def ready_after_join() -> None:
                    await joined.wait()
                    await asyncio.sleep(1.0)
                    settled.set()

                settled = asyncio.Event()
                waiter = asyncio.create_task(ready_after_join())
                result = await _measure(prepared, arrivals, settled.is_set)
                waiter.cancel()
                return result
            finally:
                await manager.stop_all()

        return quiet_run(main())

    return run


async def _mark_first(stream: AsyncIterator[Any], seen: asyncio.Event) -> AsyncIterator[Any]:
    async for item in stream:
        seen.set()
        yield item


def _pubsub_trigger() -> Any:
    from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger

    return SalesforcePubSubEventTrigger(topic=TOPIC)


def _cometd_trigger() -> Any:
    from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

    return SalesforceEventTrigger(channel=TOPIC)


CASES = [
    Case("floor: bare gRPC Subscribe", floor, setup=reset_with_cdc),
    Case("SalesforcePubSubEventTrigger (shared stream, ack)", _trigger_case(_pubsub_trigger), setup=reset_with_cdc),
    Case("SalesforceEventTrigger (CometD)", _trigger_case(_cometd_trigger), setup=reset_with_cdc),
]
