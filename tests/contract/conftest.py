"""Contract tests: what holds on the emulator AND on a real org (docs/contract-tests.md).

``make test`` runs them against the emulator like any other test; ``make test-live`` sets
``SF_CONTRACT_TARGET=live`` and runs them against the Airflow connection named by
``SF_LIVE_CONN_ID`` (a sandbox, please), or skips them all when that is not set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.contract_org import (
    LIVE_CONN_ENV,
    LIVE_PARDOT_CONN_ENV,
    Org,
    live_conn_id,
    live_requested,
)

_HERE = Path(__file__).resolve().parent
CONN_ID = "sf_contract"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract: runs against the emulator and, under `make test-live`, a real org")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_live = live_requested() and not live_conn_id()
    for item in items:
        if _HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.contract)
        if no_live:
            item.add_marker(pytest.mark.skip(
                reason=f"make test-live needs {LIVE_CONN_ENV}: the id of a salesforce_suite Airflow connection "
                       f"to a sandbox (e.g. AIRFLOW_CONN_SF_SANDBOX='{{...}}' {LIVE_CONN_ENV}=sf_sandbox)"))


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    """On the emulator each test authenticates from scratch (as elsewhere in the suite); a live run
    keeps one token for the whole session: one login, not one per test."""
    from airflow_provider_salesforce_suite.core.auth import clear_token_cache

    if not live_requested():
        clear_token_cache()
    yield
    if not live_requested():
        clear_token_cache()


@pytest.fixture
def org(request: pytest.FixtureRequest) -> Iterator[Org]:
    """The target org: the emulator (reset for this test) or, under ``make test-live``, the live
    connection. Whatever the test created is removed afterwards, also when it failed."""
    if live_requested():
        target = Org(conn_id=str(live_conn_id()), live=True)
    else:
        sf_conn = request.getfixturevalue("sf_conn")
        target = Org(conn_id=sf_conn(CONN_ID), live=False)
    yield target
    target.teardown()


@pytest.fixture
def pardot_conn_id(request: pytest.FixtureRequest) -> str:
    """A ``salesforce_pardot`` connection: the emulator's Business Unit, or ``SF_LIVE_PARDOT_CONN_ID``
    on a live run (skipped without it: Pardot needs a Business Unit id)."""
    if live_requested():
        conn_id = os.environ.get(LIVE_PARDOT_CONN_ENV)
        if not conn_id:
            pytest.skip(f"no Pardot Business Unit configured: set {LIVE_PARDOT_CONN_ENV} to a salesforce_pardot "
                        "connection with business_unit_id")
        return conn_id
    return request.getfixturevalue("pardot_conn")("pardot_contract")


@pytest.fixture
def connection_variant(monkeypatch: pytest.MonkeyPatch):
    """``connection_variant(org, new_id, extra_changes={...}, **fields)`` -> the id of a copy of the org's
    connection with some fields and extras replaced (an extra set to None is removed), in this
    process's environment only."""
    from airflow.sdk import BaseHook

    def make(target: Org, new_id: str, extra_changes: dict | None = None, **fields: object) -> str:
        conn = BaseHook.get_connection(target.conn_id)
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
        extra = {k: v for k, v in {**extra, **(extra_changes or {})}.items() if v is not None}
        body = {"conn_type": conn.conn_type, "host": conn.host, "login": conn.login, "password": conn.password,
                "port": conn.port, "schema": conn.schema, "extra": extra}
        body.update(fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{new_id.upper()}", json.dumps({k: v for k, v in body.items() if v is not None}))
        return new_id

    return make
