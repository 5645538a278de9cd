"""Pytest fixtures for testing against the emulator (registered as a ``pytest11`` plugin).

``salesforce_emulator`` is one HTTPS emulator for the whole session (in-memory store, a temporary
cert dir); ``salesforce_emulator_reset`` hands the same server over with data, faults, stats and
API counters reset, so each test starts clean without paying for a new server::

    def test_my_dag(salesforce_emulator_reset, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", salesforce_emulator_reset.connection_json())
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..core.extras import extra_installed
from .server import EmulatorServer


@pytest.fixture(scope="session")
def salesforce_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A running emulator over TLS on a free loopback port, for the whole test session, with the
    Pub/Sub API (gRPC, same TLS) on another free port (``server.pubsub_endpoint``) when the
    ``pubsub`` extra is installed."""
    server = EmulatorServer(port=0, tls=True, cert_dir=tmp_path_factory.mktemp("salesforce-emulator-certs"),
                            pubsub_port=0 if extra_installed("pubsub") else None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def salesforce_emulator_reset(salesforce_emulator: EmulatorServer) -> EmulatorServer:
    """The session's emulator, with data, faults, stats and API counters reset before the test
    (sessions survive, so clients' cached tokens stay valid)."""
    salesforce_emulator.reset()
    return salesforce_emulator
