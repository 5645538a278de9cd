pytest_plugins = ["airflow_provider_salesforce_suite.emulator.pytest_plugin"]


# --- auth/transport and hook test fixtures (emulator connections, admin API client) ---


import json
from typing import Any, Callable

import pytest
import requests


class EmulatorAdmin:
    """The emulator's ``/__emulator__`` control API, over loopback HTTPS."""

    def __init__(self, url: str, ca_bundle: str | None) -> None:
        self.url = url.rstrip("/")
        self.verify: bool | str = ca_bundle or True

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        reply = requests.request(method, f"{self.url}/__emulator__/{path}", json=payload, verify=self.verify, timeout=10)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def fault(self, **rule: Any) -> Any:
        return self._call("POST", "faults", rule)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def expire_sessions(self) -> Any:
        return self._call("POST", "sessions/expire", {})

    def stats(self) -> dict:
        return self._call("GET", "stats")

    def refresh_token(self, username: str, client_id: str) -> str:
        reply = self._call("POST", "refresh-tokens", {"username": username, "client_id": client_id})
        return reply["refresh_token"] if isinstance(reply, dict) else reply


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    """Each test authenticates from scratch (the token cache is process-wide by design)."""
    from airflow_provider_salesforce_suite.core.auth import clear_token_cache

    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def emulator_admin(salesforce_emulator_reset) -> EmulatorAdmin:
    admin = EmulatorAdmin(salesforce_emulator_reset.url, salesforce_emulator_reset.ca_bundle)
    admin.clear_faults()
    yield admin
    admin.clear_faults()


def _base_connection(server) -> dict[str, Any]:
    raw = server.connection_json()
    conn = json.loads(raw) if isinstance(raw, str) else dict(raw)
    extra = conn.get("extra") or {}
    conn["extra"] = json.loads(extra) if isinstance(extra, str) else dict(extra)
    conn["conn_type"] = "salesforce_suite"
    return conn


@pytest.fixture
def sf_conn(salesforce_emulator_reset, monkeypatch) -> Callable[..., str]:
    """``sf_conn(conn_id, extra={...}, login=..., password=...)`` -> conn id of an emulator connection.

    Extras default to fast retries so fault tests stay quick; an extra set to None is removed.
    """

    def make(conn_id: str = "sf_test", *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
        conn = _base_connection(salesforce_emulator_reset)
        conn["extra"].update({"max_retries": 3, "retry_max_seconds": 20})
        conn["extra"].update(extra or {})
        conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
        conn.update(fields)
        conn = {k: v for k, v in conn.items() if v is not None}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make
