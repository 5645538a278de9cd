"""Helpers for Pub/Sub API tests: an emulator with a platform event and CDC on Contact, serving gRPC
on loopback beside HTTPS, its knobs, and a background subscriber."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from airflow_provider_salesforce_suite.hooks.pubsub import PubSubEvent, PubSubKeepalive, SalesforcePubSubHook
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from tests.hooks import streaming_support

ORDER_TOPIC = "/event/Order_Event__e"
CONTACT_TOPIC = "/data/ContactChangeEvent"
SCHEMA = {
    "objects": {
        "Order_Event__e": {"fields": {
            "Order_Number__c": {"type": "text", "length": 20},
            "Amount__c": {"type": "number", "precision": 18, "scale": 2},
            "Rush__c": {"type": "checkbox"},
        }},
    }
}


@pytest.fixture(scope="module")
def pubsub_server(tmp_path_factory):
    """One emulator (HTTPS + gRPC) for the module, with ``Order_Event__e`` defined."""
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    schema = tmp_path_factory.mktemp("pubsub-schema") / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    server = EmulatorServer(cert_dir=tmp_path_factory.mktemp("pubsub-certs"), schema_files=[schema], pubsub_port=0)
    server.start()
    yield server
    server.stop()


@dataclass
class PubSub:
    """A connection to the module's emulator, its knobs and helpers."""

    conn_id: str
    server: Any

    monkeypatch: Any = None

    def hook(self, conn_id: str | None = None, **kwargs: Any) -> SalesforcePubSubHook:
        return SalesforcePubSubHook(conn_id or self.conn_id, **kwargs)

    def connection(self, conn_id: str, **extra: Any) -> str:
        """Another connection to the emulator, with these extras."""
        conn = json.loads(self.server.connection_json())
        base = conn["extra"] if isinstance(conn["extra"], dict) else json.loads(conn["extra"])
        conn["extra"] = {**base, **extra}
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    @property
    def rest(self) -> SalesforceRestHook:
        return SalesforceRestHook(self.conn_id)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        reply = requests.request(method, f"{self.server.url}/__emulator__/{path}", json=body,
                                 verify=self.server.ca_bundle, timeout=10)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def knobs(self, **values: Any) -> Any:
        return self.admin("POST", "pubsub/config", values)

    def drop_streams(self) -> Any:
        return self.admin("POST", "pubsub/drop-streams", {})

    def fault(self, **rule: Any) -> Any:
        return self.admin("POST", "pubsub/faults", rule)

    def expire_sessions(self) -> Any:
        return self.admin("POST", "sessions/expire", {})


@pytest.fixture
def pubsub(pubsub_server, monkeypatch) -> PubSub:
    pubsub_server.reset()
    setup = PubSub("sf_pubsub", pubsub_server, monkeypatch)
    setup.connection("sf_pubsub", max_retries=4, retry_max_seconds=20)
    setup.admin("POST", "streaming/config", {"cdc_entities": ["Contact"]})
    setup.knobs(keepalive_seconds=1)
    return setup


class Subscriber(streaming_support.Subscriber):
    """Consume a Pub/Sub subscription (``hook.subscribe(...)``) in a background task; keepalives apart."""

    def __init__(self, events: Any) -> None:
        super().__init__(None)
        self.source = events
        self.keepalives: list[PubSubKeepalive] = []

    async def _consume(self) -> None:
        try:
            async with aclosing(self.source) as stream:
                async for item in stream:
                    (self.events if isinstance(item, PubSubEvent) else self.keepalives).append(item)
        except Exception as exc:  # surfaced by wait_for / failure
            self.error = exc

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[PubSubEvent]:
        return await super().wait_for(count, timeout)

    async def first_keepalive(self, timeout: float = 10.0) -> PubSubKeepalive:
        deadline = time.monotonic() + timeout
        while not self.keepalives:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError("no keepalive")
            await asyncio.sleep(0.02)
        return self.keepalives[0]


def run(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def orders(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"Order_Number__c": f"O-{i}", "Amount__c": i + 0.5} for i in range(start, start + count)]


async def collect(hook: SalesforcePubSubHook, topic: str, count: int, timeout: float = 20.0, **options: Any) -> list[PubSubEvent]:
    """The first ``count`` events of ``topic`` (EARLIEST by default)."""
    options.setdefault("replay_preset", "EARLIEST")
    async with Subscriber(hook.subscribe(topic, **options)) as sub:
        return list(await sub.wait_for(count, timeout))[:count]


async def all_retained(hook: SalesforcePubSubHook, topic: str, settle: float = 1.5) -> list[PubSubEvent]:
    """Every retained event of ``topic``: EARLIEST until nothing new arrives for ``settle`` seconds."""
    async with Subscriber(hook.subscribe(topic, replay_preset="EARLIEST", batch_size=200)) as sub:
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < settle:
            if sub.error is not None:
                raise sub.error
            if len(sub.events) != seen:
                seen, quiet_since = len(sub.events), time.monotonic()
            await asyncio.sleep(0.05)
        return list(sub.events)
