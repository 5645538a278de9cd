"""Raw Pub/Sub API clients for the emulator tests: the generated stubs over real gRPC on loopback.

Nothing here comes from the hook: each call is built from the ``eventbus.v1`` messages by hand, so
the tests check the emulator's wire behaviour, not our client's.
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import fastavro
import grpc
import pytest
from sf_emulator_client import EmulatorClient

from airflow_provider_salesforce_suite.core.pubsub import stubs
from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

pb2, pb2_grpc = stubs()

EVENT_TOPIC = "/event/Order_Shipped__e"
SCHEMA = {
    "objects": {
        "Order_Shipped__e": {"fields": {"OrderNumber__c": {"type": "text", "length": 20},
                                        "Amount__c": {"type": "number", "precision": 10, "scale": 2},
                                        "Rush__c": {"type": "checkbox"}}},
        "Invoice__c": {"fields": {"Amount__c": {"type": "currency"}, "Due__c": {"type": "date"}}},
    }
}


def start_server(tmp_path_factory: pytest.TempPathFactory, *, tls: bool = True) -> EmulatorServer:
    """An emulator with the Pub/Sub API on a free port and the test schema."""
    schema = tmp_path_factory.mktemp("pubsub-schema") / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    return EmulatorServer(cert_dir=tmp_path_factory.mktemp("pubsub-certs"), schema_files=[schema], tls=tls,
                          pubsub_port=0).start()


def org_id(sf: EmulatorClient) -> str:
    """The org id as a client learns it: from the token response's identity URL."""
    reply = sf.password_login()
    return reply.json()["id"].rstrip("/").split("/")[-2]


def encode(schema_json: str, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(schema_json)), record)
    return buffer.getvalue()


def decode(schema_json: str, payload: bytes) -> dict[str, Any]:
    return fastavro.schemaless_reader(io.BytesIO(payload), fastavro.parse_schema(json.loads(schema_json)), None)


def replay(value: int) -> bytes:
    return value.to_bytes(8, "big")


class Stream:
    """A bidirectional stream driven from the test thread: requests in, responses read with a timeout."""

    def __init__(self, method: Any, first: Any, metadata: Iterable[tuple[str, str]]) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._responses: queue.Queue = queue.Queue()
        self._requests.put(first)
        self.call = method(iter(self._requests.get, None), metadata=tuple(metadata))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self._responses.put(response)
        except grpc.RpcError as error:
            self._responses.put(error)
        self._responses.put(StopIteration())

    def send(self, request: Any) -> None:
        self._requests.put(request)

    def next(self, timeout: float = 10.0) -> Any:
        """The next response; raises the stream's ``grpc.RpcError`` if it ended with one."""
        item = self._responses.get(timeout=timeout)
        if isinstance(item, BaseException):
            self._responses.put(item)  # keep reporting the end
            raise item
        return item

    def nothing_for(self, seconds: float) -> bool:
        """Whether no response arrives within ``seconds``."""
        try:
            item = self._responses.get(timeout=seconds)
        except queue.Empty:
            return True
        self._responses.queue.appendleft(item)
        return False

    def error(self, timeout: float = 10.0) -> grpc.RpcError:
        """The error the stream ends with (responses before it are skipped)."""
        while True:
            try:
                self.next(timeout)
            except grpc.RpcError as error:
                return error

    def close(self) -> None:
        self._requests.put(None)
        self.call.cancel()


class PubSub:
    """One authenticated client of the emulator's Pub/Sub API.

    :param server: the running emulator.
    :param token: the access token (default: a password-grant login).
    """

    def __init__(self, server: EmulatorServer, token: str | None = None) -> None:
        self.server = server
        self.sf = EmulatorClient(server)
        self.token = token or self.sf.token()
        self.tenant = org_id(self.sf)
        assert server.pubsub_endpoint
        if server.ca_bundle:
            credentials = grpc.ssl_channel_credentials(open(server.ca_bundle, "rb").read())
            self.channel = grpc.secure_channel(server.pubsub_endpoint, credentials)
        else:
            self.channel = grpc.insecure_channel(server.pubsub_endpoint)
        self.stub = pb2_grpc.PubSubStub(self.channel)
        self.streams: list[Stream] = []

    def metadata(self, **override: str) -> list[tuple[str, str]]:
        headers = {"accesstoken": self.token, "instanceurl": self.server.url or "", "tenantid": self.tenant, **override}
        return [(k, v) for k, v in headers.items() if v is not None]

    def topic(self, name: str) -> Any:
        return self.stub.GetTopic(pb2.TopicRequest(topic_name=name), metadata=self.metadata(), timeout=10)

    def schema(self, schema_id: str) -> str:
        return self.stub.GetSchema(pb2.SchemaRequest(schema_id=schema_id), metadata=self.metadata(),
                                   timeout=10).schema_json

    def subscribe(self, topic: str, num_requested: int = 100, preset: str = "LATEST", replay_id: bytes = b"",
                  **metadata: str) -> Stream:
        first = pb2.FetchRequest(topic_name=topic, replay_preset=pb2.ReplayPreset.Value(preset),
                                 replay_id=replay_id, num_requested=num_requested)
        stream = Stream(self.stub.Subscribe, first, self.metadata(**metadata))
        self.streams.append(stream)
        return stream

    def managed(self, first: Any) -> Stream:
        stream = Stream(self.stub.ManagedSubscribe, first, self.metadata())
        self.streams.append(stream)
        return stream

    def publish_stream(self, first: Any) -> Stream:
        stream = Stream(self.stub.PublishStream, first, self.metadata())
        self.streams.append(stream)
        return stream

    def events(self, stream: Stream, count: int, timeout: float = 10.0) -> list[Any]:
        """The next ``count`` events of a subscription (keepalives skipped)."""
        events: list[Any] = []
        while len(events) < count:
            events.extend(stream.next(timeout).events)
        assert len(events) == count, f"asked for {count}, got {len(events)}"
        return events

    def producer_events(self, topic: str, records: Iterable[dict[str, Any]]) -> list[Any]:
        info = self.topic(topic)
        schema_json = self.schema(info.schema_id)
        return [pb2.ProducerEvent(id=f"key-{i}", schema_id=info.schema_id,
                                  payload=encode(schema_json, {"CreatedDate": 0, "CreatedById": "", **record}))
                for i, record in enumerate(records)]

    def publish(self, topic: str, records: Iterable[dict[str, Any]]) -> Any:
        events = self.producer_events(topic, records)
        return self.stub.Publish(pb2.PublishRequest(topic_name=topic, events=events), metadata=self.metadata(),
                                 timeout=10)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.channel.close()


def trailers(error: grpc.RpcError) -> dict[str, str]:
    return {item.key: item.value for item in error.trailing_metadata() or ()}


def records_of(client: PubSub, events: Iterator[Any] | list[Any]) -> list[dict[str, Any]]:
    """Decode consumer events with the schema each names (fetched over GetSchema)."""
    schemas: dict[str, str] = {}
    out = []
    for event in events:
        schema_id = event.event.schema_id
        if schema_id not in schemas:
            schemas[schema_id] = client.schema(schema_id)
        out.append(decode(schemas[schema_id], event.event.payload))
    return out
