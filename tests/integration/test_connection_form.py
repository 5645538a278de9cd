"""The connection form a running Airflow API server serves shows every documented extra.

The UI builds its "Add connection" form from ``GET /ui/connections/hook_meta`` (Airflow 3.3's UI
API): one entry per connection type, its extra fields and its standard-field behaviour.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import requests

from tests.docs_connections import documented_extras
from tests.integration.airflow_procs import BIN, ProcessSet, airflow_env, free_port, http_ok, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("airflow-form")
    (home / "dags").mkdir()
    port = free_port()
    procs = ProcessSet(home, airflow_env(home, home / "dags", port))
    started = time.monotonic()
    try:
        procs.start("db-migrate", [str(BIN / "airflow"), "db", "migrate"])
        wait_for(lambda: procs.procs["db-migrate"].poll() is not None, timeout=120, what="airflow db migrate")
        assert procs.procs.pop("db-migrate").returncode == 0, procs.log_tail("db-migrate")
        print(f"db migrated in {time.monotonic() - started:.1f} s")
        # The UI API is part of the core app; the execution API (for workers) is not needed here.
        procs.start("api-server", [str(BIN / "airflow"), "api-server", "--apps", "core"])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: procs.assert_running() or http_ok(f"{url}/api/v2/monitor/health"), timeout=120,
                 what="the API server")
        print(f"API server up in {time.monotonic() - started:.1f} s")
        yield url
    except BaseException:
        print(procs.log_tail("db-migrate"), procs.log_tail("api-server"))
        raise
    finally:
        if "api-server" in procs.procs:  # a throwaway server: no graceful shutdown to wait for
            procs.kill("api-server", signal.SIGKILL)
        procs.stop_all()


def test_api_server_connection_form_shows_every_documented_extra(api_server: str) -> None:
    reply = requests.get(f"{api_server}/ui/connections/hook_meta", timeout=60)
    assert reply.status_code == 200, reply.text[:2000]
    served = {entry["connection_type"]: entry for entry in reply.json()}
    for conn_type, documented in documented_extras().items():
        assert conn_type in served, f"{conn_type} is not offered by the API server"
        entry = served[conn_type]
        extra_fields = entry["extra_fields"] or {}
        assert documented - set(extra_fields) == set(), f"{conn_type}: documented extras missing from the form"
        declared = _declared_fields(conn_type)
        for name in documented:
            schema = extra_fields[name]["schema"]
            # Labelled, typed and (for secrets) masked as the provider declares it.
            assert schema["title"] == declared[name]["label"], (conn_type, name, schema)
            for key in ("type", "format", "default", "enum"):
                assert schema.get(key) == declared[name]["schema"].get(key), (conn_type, name, key, schema)
        # Port and schema are hidden; host, login and password relabelled.
        standard = entry["standard_fields"]
        assert standard["port"]["hidden"] and standard["url_schema"]["hidden"], standard
        assert standard["host"]["title"], standard


def _declared_fields(conn_type: str) -> dict:
    from airflow_provider_salesforce_suite.get_provider_info import get_provider_info

    (entry,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    return entry["conn-fields"]
