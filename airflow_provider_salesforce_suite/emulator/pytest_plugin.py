"""Pytest fixtures for testing against the emulator (registered as a ``pytest11`` plugin).

``salesforce_emulator`` is one HTTPS emulator for the whole session (in-memory store, a temporary
cert dir); ``salesforce_emulator_reset`` hands the same server over with data, faults, stats and
API counters reset, so each test starts clean without paying for a new server::

    def test_my_dag(salesforce_emulator_reset, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", salesforce_emulator_reset.connection_json())

The emulator loads the schema files (custom objects, snapshots, seed records) and the config file
named by the ini options ``salesforce_emulator_schema`` and ``salesforce_emulator_config`` (paths
relative to the ini file), or by overriding the ``salesforce_emulator_schema_files`` and
``salesforce_emulator_config`` fixtures in a ``conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from ..core.extras import extra_installed
from .server import EmulatorServer

if TYPE_CHECKING:
    from .config import EmulatorConfig

_SCHEMA_INI = "salesforce_emulator_schema"
_CONFIG_INI = "salesforce_emulator_config"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ini options that configure the ``salesforce_emulator`` fixture."""
    parser.addini(_SCHEMA_INI, type="paths", default=[],
                  help="schema files the salesforce_emulator fixture loads (custom objects, snapshots, seed records)")
    parser.addini(_CONFIG_INI, type="paths", default=[],
                  help="JSON config file of the salesforce_emulator fixture (users, connected apps, limits)")


@pytest.fixture(scope="session")
def salesforce_emulator_schema_files(pytestconfig: pytest.Config) -> Sequence[str | os.PathLike[str]]:
    """Schema files the session's emulator loads: the ``salesforce_emulator_schema`` ini option.

    Override it in a ``conftest.py`` to choose them in code (session scope)."""
    return list(pytestconfig.getini(_SCHEMA_INI))


@pytest.fixture(scope="session")
def salesforce_emulator_config(pytestconfig: pytest.Config) -> EmulatorConfig | str | os.PathLike[str] | None:
    """The session's emulator config: the ``salesforce_emulator_config`` ini option (one JSON file),
    or ``None`` for the defaults. Override it in a ``conftest.py`` to build an ``EmulatorConfig``."""
    paths = list(pytestconfig.getini(_CONFIG_INI))
    if len(paths) > 1:
        raise pytest.UsageError(f"{_CONFIG_INI} takes one file, got {len(paths)}")
    return paths[0] if paths else None


@pytest.fixture(scope="session")
def salesforce_emulator(
    tmp_path_factory: pytest.TempPathFactory,
    salesforce_emulator_schema_files: Sequence[str | os.PathLike[str]],
    salesforce_emulator_config: EmulatorConfig | str | os.PathLike[str] | None,
) -> Iterator[EmulatorServer]:
    """A running emulator over TLS on a free loopback port, for the whole test session, with the
    Pub/Sub API (gRPC, same TLS) on another free port (``server.pubsub_endpoint``) when the
    ``pubsub`` extra is installed, loading ``salesforce_emulator_schema_files`` and
    ``salesforce_emulator_config``."""
    from .metadata import SchemaError

    server = EmulatorServer(port=0, tls=True, cert_dir=tmp_path_factory.mktemp("salesforce-emulator-certs"),
                            pubsub_port=0 if extra_installed("pubsub") else None,
                            schema_files=salesforce_emulator_schema_files, config=salesforce_emulator_config)
    try:
        server.start()
    except SchemaError as exc:  # a user's file: name it and what is wrong, not a traceback
        pytest.fail(f"salesforce_emulator: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def salesforce_emulator_reset(salesforce_emulator: EmulatorServer) -> EmulatorServer:
    """The session's emulator, with data, faults, stats and API counters reset before the test
    (sessions survive, so clients' cached tokens stay valid); seed records are loaded again."""
    salesforce_emulator.reset()
    return salesforce_emulator
