"""Fixtures of the Pub/Sub API tests (one emulator with the Pub/Sub API per test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pubsub_support import PubSub, start_server

from airflow_provider_salesforce_suite.emulator.server import EmulatorServer


@pytest.fixture(scope="module")
def pubsub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """An emulator with the Pub/Sub API (TLS) and the test schema, for one test module."""
    server = start_server(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture
def ps(pubsub_server: EmulatorServer) -> Iterator[PubSub]:
    """A raw Pub/Sub client of a freshly reset emulator (open streams end at the reset)."""
    pubsub_server.reset()
    client = PubSub(pubsub_server)
    yield client
    client.close()
