"""Fixtures of the emulator tests: simple-salesforce on the shared emulator, and one emulator with the
Pub/Sub API per Pub/Sub test module."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from pubsub_support import PubSub, start_server
from sf_emulator_client import EmulatorClient
from simple_salesforce import Salesforce

from airflow_provider_salesforce_suite.emulator.server import EmulatorServer


@pytest.fixture
def sf(salesforce_emulator_reset, monkeypatch) -> Salesforce:
    """simple-salesforce, unchanged, on a freshly reset emulator (API version 62.0)."""
    # requests lets these override Session.verify; simple-salesforce passes no verify per request.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    # Its Bulk 1.0 client polls batches every 5 s with no way to ask for less: shorten the client's
    # sleep (the requests it sends are unchanged).
    monkeypatch.setattr("simple_salesforce.bulk.sleep", lambda seconds: time.sleep(min(seconds, 0.05)))
    session = requests.Session()
    session.verify = salesforce_emulator_reset.ca_bundle
    return Salesforce(instance_url=salesforce_emulator_reset.url, session=session, version="62.0",
                      session_id=EmulatorClient(salesforce_emulator_reset).token())


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
