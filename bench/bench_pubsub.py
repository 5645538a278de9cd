"""Pub/Sub API vs CometD: draining ``SF_BENCH_PUBSUB_EVENTS`` (10,000) Account change events.

The events are written before the clock (sObject Collections, 200 per call) to an org with
Change Data Capture on Account; each case then subscribes from the earliest retained event and
stops at the last one. Events per second is the figure; the ratio column compares wall times.

* **floor**: a bare gRPC client on the generated stubs, doing nothing but receive: one
  ``Subscribe`` from ``EARLIEST`` asking for every event up front (no flow-control round trips, no
  Avro decoding). Nothing that delivers the events as Python objects can be faster.
* ``SalesforcePubSubHook.subscribe``: flow control (``batch_size`` 100, topped up), Avro decoding,
  change-event bitmaps turned into field names.
* ``SalesforcePubSubEventTrigger``: the hook inside Airflow's shared-stream manager in ack mode,
  each event confirmed as persisted (what the triggerer does for an asset watcher).
* ``SalesforceEventTrigger`` (CometD): the same through the Streaming API's long polling.

Latency (create-to-TriggerEvent) is in ``bench_pubsub_latency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

import requests

from bench.runner import BenchEnv, Case

EVENTS = int(os.environ.get("SF_BENCH_PUBSUB_EVENTS", "10000"))
TOPIC = "/data/AccountChangeEvent"
GROUP = f"Pub/Sub API vs CometD (emulator, loopback): draining {EVENTS:,} change events"


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


def _admin(env: BenchEnv, path: str, body: Any = None) -> None:
    requests.post(f"{env.url}/__emulator__/{path}", json=body, verify=env.ca_bundle or True,
                  timeout=120).raise_for_status()


def reset_with_cdc(env: BenchEnv) -> Any:
    """A clean org with Account selected for Change Data Capture and room for every event."""
    _admin(env, "reset")
    _admin(env, "streaming/config", {"cdc_entities": ["Account"], "max_events_per_channel": max(EVENTS * 2, 10_000)})
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    rest = SalesforceRestHook()
    rest.describe("Account")  # imports, authentication and the TLS handshake before the clock
    return rest


def write_changes(env: BenchEnv) -> int:
    rest = reset_with_cdc(env)
    for start in range(0, EVENTS, 200):
        rest.request("POST", rest.data_url("composite/sobjects"), json={"allOrNone": False, "records": [
            {"attributes": {"type": "Account"}, "Name": f"burst {n}"} for n in range(start, min(start + 200, EVENTS))]})
    return EVENTS


def _rate(events: int, elapsed: float) -> dict[str, Any]:
    return {"events": events, "events_per_s": round(events / elapsed)}


def floor(env: BenchEnv, prepared: int) -> dict[str, Any]:
    """Raw stubs: one Subscribe from EARLIEST asking for every event at once; count, never decode."""
    import grpc

    from airflow_provider_salesforce_suite.core.pubsub import stubs
    from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

    pb2, pb2_grpc = stubs()
    hook = SalesforceBaseHook()
    token = hook.authenticator.get_token()  # a bare client still needs a session: taken before the clock
    endpoint = hook.config.pubsub_endpoint
    org_id = token.extra["id"].rstrip("/").split("/")[-2]  # .../id/<org id>/<user id>
    metadata = (("accesstoken", token.access_token), ("instanceurl", token.instance_url), ("tenantid", org_id))

    async def drain() -> float:
        if env.ca_bundle:
            with open(env.ca_bundle, "rb") as fh:
                channel = grpc.aio.secure_channel(endpoint, grpc.ssl_channel_credentials(fh.read()))
        else:
            channel = grpc.aio.insecure_channel(endpoint)
        async with channel:
            stub = pb2_grpc.PubSubStub(channel)
            started, seen = time.perf_counter(), 0

            async def requests_():
                yield pb2.FetchRequest(topic_name=TOPIC, replay_preset=pb2.EARLIEST, num_requested=prepared)
                await asyncio.Event().wait()  # keep the request side open

            call = stub.Subscribe(requests_(), metadata=metadata)
            async for response in call:
                seen += len(response.events)
                if seen >= prepared:
                    break
            call.cancel()
            return time.perf_counter() - started

    return _rate(prepared, quiet_run(drain()))


def hook_subscribe(env: BenchEnv, prepared: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook

    async def drain() -> float:
        hook = SalesforcePubSubHook()
        started, seen = time.perf_counter(), 0
        async with contextlib.aclosing(hook.subscribe(TOPIC, replay_preset="EARLIEST", batch_size=100)) as stream:
            async for _ in stream:
                seen += 1
                if seen == prepared:
                    break
        elapsed = time.perf_counter() - started
        await hook.aclose()
        return elapsed

    return _rate(prepared, quiet_run(drain()))


async def drain_trigger(trigger: Any, events: int) -> float:
    """Run one asset-watcher trigger in Airflow's shared-stream manager (ack mode) until ``events``."""
    from airflow.triggers.shared_stream import SharedStreamManager

    manager = SharedStreamManager(ack_timeout=60)
    trigger.asset_state_store = AssetState("bench-asset")
    key = trigger.shared_stream_key()
    seen = 0
    started = time.perf_counter()
    try:
        async for _ in trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key)):
            seq = manager.bind_pending_event(trigger_id=1, key=key)
            if seq is not None:
                manager.confirm_persisted([seq])
            seen += 1
            if seen == events:
                break
        return time.perf_counter() - started
    finally:
        await manager.stop_all()


def pubsub_trigger(env: BenchEnv, prepared: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger

    trigger = SalesforcePubSubEventTrigger(topic=TOPIC, replay_preset="EARLIEST")
    return _rate(prepared, quiet_run(drain_trigger(trigger, prepared)))


def cometd_trigger(env: BenchEnv, prepared: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

    return _rate(prepared, quiet_run(drain_trigger(SalesforceEventTrigger(channel=TOPIC, replay="all"), prepared)))


CASES = [
    Case("floor: bare gRPC Subscribe, no decoding", floor, setup=write_changes),
    Case("SalesforcePubSubHook.subscribe", hook_subscribe, setup=write_changes),
    Case("SalesforcePubSubEventTrigger (shared stream, ack)", pubsub_trigger, setup=write_changes),
    Case("SalesforceEventTrigger (CometD)", cometd_trigger, setup=write_changes),
]
