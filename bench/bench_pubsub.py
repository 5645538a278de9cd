"""Pub/Sub API vs CometD: draining ``SF_BENCH_PUBSUB_EVENTS`` (10,000) Account change events.

The events are written before the clock (sObject Collections, 200 per call) to an org with
Change Data Capture on Account; each case then subscribes from the earliest retained event and
stops at the last one. Events per second is the figure; the time and ratio columns compare the drains
alone (from the subscribe call to the last event), not the process's one-time imports.

* **floor**: a bare gRPC client on the generated stubs, doing nothing but receive: one
  ``Subscribe`` from ``EARLIEST`` keeping as many events requested as Salesforce allows (100: it
  counts more as 100), topped up the moment each response arrives, no Avro decoding. Nothing that
  delivers the events as Python objects from Salesforce can be faster.
* ``SalesforcePubSubHook.subscribe``: flow control (``batch_size`` 100, topped up), Avro decoding,
  change-event bitmaps turned into field names.
* ``SalesforcePubSubEventTrigger``: the hook inside Airflow's shared-stream manager in ack mode,
  each event confirmed as persisted (what the triggerer does for an asset watcher).
* ``SalesforceEventTrigger`` (CometD): the same through the Streaming API's long polling.

Latency (create-to-TriggerEvent) is in ``bench_pubsub_latency``.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import requests

from bench.runner import BenchEnv, Case
from bench.stream_support import AssetState, quiet_run

EVENTS = int(os.environ.get("SF_BENCH_PUBSUB_EVENTS", "10000"))
TOPIC = "/data/AccountChangeEvent"
GROUP = f"Pub/Sub API vs CometD (emulator, loopback): draining {EVENTS:,} change events"


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


def warm_up() -> None:
    """What every case pays once per process, before the clock: gRPC, fastavro and the generated stubs."""
    import fastavro  # noqa: F401 - imported for its side effect (the import itself)
    import grpc  # noqa: F401

    from airflow_provider_salesforce_suite.core.pubsub import stubs

    stubs()


def write_changes(env: BenchEnv) -> int:
    rest = reset_with_cdc(env)
    warm_up()
    for start in range(0, EVENTS, 200):
        rest.request("POST", rest.data_url("composite/sobjects"), json={"allOrNone": False, "records": [
            {"attributes": {"type": "Account"}, "Name": f"burst {n}"} for n in range(start, min(start + 200, EVENTS))]})
    return EVENTS


def _rate(events: int, elapsed: float) -> dict[str, Any]:
    """The case's figures; ``timed_s`` (the drain alone) is what the table's time and ratio compare."""
    return {"events": events, "events_per_s": round(events / elapsed), "timed_s": elapsed}


#: Salesforce counts more than 100 events requested at a time (across a stream's FetchRequests) as 100.
WINDOW = 100


def bare_metadata() -> tuple[str, tuple[tuple[str, str], ...]]:
    """The endpoint and call metadata a bare client sends (the session is taken before the clock)."""
    from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

    hook = SalesforceBaseHook()
    token = hook.authenticator.get_token()
    org_id = token.extra["id"].rstrip("/").split("/")[-2]  # .../id/<org id>/<user id>
    return hook.config.pubsub_endpoint, (("accesstoken", token.access_token), ("instanceurl", token.instance_url),
                                         ("tenantid", org_id))


async def bare_responses(env: BenchEnv, endpoint: str, metadata: Any, preset: str, top_up_first: bool = True) -> Any:
    """A bare gRPC client on the generated stubs: one ``Subscribe``, the most events Salesforce lets a
    stream have requested (100) asked for up front and topped up the moment each response arrives (before
    its events are looked at); yields the raw ``FetchResponse`` messages, never decodes."""
    import grpc

    from airflow_provider_salesforce_suite.core.pubsub import stubs

    pb2, pb2_grpc = stubs()
    if env.ca_bundle:
        with open(env.ca_bundle, "rb") as fh:
            channel = grpc.aio.secure_channel(endpoint, grpc.ssl_channel_credentials(fh.read()))
    else:
        channel = grpc.aio.insecure_channel(endpoint)
    async with channel:
        call = pb2_grpc.PubSubStub(channel).Subscribe(metadata=metadata)
        await call.write(pb2.FetchRequest(topic_name=TOPIC, replay_preset=pb2.ReplayPreset.Value(preset),
                                          num_requested=WINDOW))
        try:
            while (response := await call.read()) is not grpc.aio.EOF:
                if response.events and top_up_first:
                    await call.write(pb2.FetchRequest(num_requested=len(response.events)))
                yield response
                if response.events and not top_up_first:  # (latency: the event first, the top-up after)
                    await call.write(pb2.FetchRequest(num_requested=len(response.events)))
        finally:
            call.cancel()


def floor(env: BenchEnv, prepared: int) -> dict[str, Any]:
    """Raw stubs: one Subscribe from EARLIEST keeping Salesforce's 100 events requested; count, never decode."""
    endpoint, metadata = bare_metadata()

    async def drain() -> float:
        started, seen = time.perf_counter(), 0
        responses = bare_responses(env, endpoint, metadata, "EARLIEST")
        async with contextlib.aclosing(responses):
            async for response in responses:
                seen += len(response.events)
                if seen >= prepared:
                    break
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
    Case("floor: bare gRPC Subscribe, no decoding", floor, setup=write_changes, floor=True),
    Case("SalesforcePubSubHook.subscribe", hook_subscribe, setup=write_changes),
    Case("SalesforcePubSubEventTrigger (shared stream, ack)", pubsub_trigger, setup=write_changes),
    Case("SalesforceEventTrigger (CometD)", cometd_trigger, setup=write_changes),
]
