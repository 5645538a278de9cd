"""Shared fixtures. The emulator fixtures come from the package's own pytest plugin
(``pytest11`` entry point), exactly as users' test suites get them."""

from __future__ import annotations

import os
import tempfile

# Airflow reads its configuration when first imported: point it at a throwaway home (SQLite
# metadata database) before anything imports it.
# One home per process (each pytest-xdist worker has its own): importing this module a second time
# (``from tests.conftest import ...``) must not move AIRFLOW_HOME away from the database in use.
if os.environ.get("SF_SUITE_TEST_HOME_PID") == str(os.getpid()):
    _AIRFLOW_HOME = os.environ["AIRFLOW_HOME"]
else:
    _AIRFLOW_HOME = tempfile.mkdtemp(prefix="sf-suite-airflow-home-")
    os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
    os.environ["SF_SUITE_TEST_HOME_PID"] = str(os.getpid())
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# One Fernet key for this process and the ``airflow`` CLI processes tests start, so connections
# the CLI stores (encrypted) can be read back here.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "9aVb2kB8WQm2m1T6nq6l0o3rS6y3mW0vS3rB0nY8c5E="
# dag.test() re-parses DAGs from the dags-folder bundle: that is where the example DAGs live.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_dags")


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


@pytest.fixture(autouse=True)
def _own_failed_records_base(tmp_path, monkeypatch):
    """Each test's default failures files and REST save journals under its own directory: a journal
    is kept after a failed save (for the retry), and tests reuse the same dag/run/task ids."""
    monkeypatch.setenv("AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI", f"file://{tmp_path}/failed_records")


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

    Extras default to fast retries so fault tests stay quick; an extra set to None is removed;
    ``server=`` points the connection at another emulator (e.g. ``custom_emulator``).
    """

    def make(conn_id: str = "sf_test", *, extra: dict[str, Any] | None = None, server: Any = None,
             **fields: Any) -> str:
        conn = _base_connection(server or salesforce_emulator_reset)
        conn["extra"].update({"max_retries": 3, "retry_max_seconds": 20})
        conn["extra"].update(extra or {})
        conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
        conn.update(fields)
        conn = {k: v for k, v in conn.items() if v is not None}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make


JWT_CONSUMER_KEY = "jwt-app"


@pytest.fixture(scope="session")
def jwt_consumer_key() -> str:
    """The consumer key of ``custom_emulator``'s JWT connected app."""
    return JWT_CONSUMER_KEY


@pytest.fixture(scope="session")
def jwt_key_pair(tmp_path_factory) -> tuple[str, str]:
    """(private key PEM, certificate path) for the JWT bearer flow, generated for this session."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path = tmp_path_factory.mktemp("jwt") / "jwt-cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, str(cert_path)


@pytest.fixture(scope="session")
def _custom_emulator_session(tmp_path_factory, jwt_key_pair):
    """A second emulator: a JWT connected app, refresh token rotation, Account.External_Id__c."""
    from airflow_provider_salesforce_suite.emulator.config import (
        DEFAULT_USERNAME,
        ConnectedAppConfig,
        EmulatorConfig,
    )
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    config = EmulatorConfig(refresh_token_rotation=True)
    config.add_connected_app(ConnectedAppConfig(name="JWT app", consumer_key=JWT_CONSUMER_KEY,
                                                consumer_secret="jwt-app-secret", certificates=[jwt_key_pair[1]],
                                                run_as=DEFAULT_USERNAME))
    schema = tmp_path_factory.mktemp("schema") / "schema.json"
    schema.write_text(json.dumps({"fields": {"Account": {"External_Id__c": {"type": "text", "externalId": True}}}}))
    server = EmulatorServer(cert_dir=tmp_path_factory.mktemp("custom-certs"), config=config, schema_files=[schema])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def custom_emulator(_custom_emulator_session):
    _custom_emulator_session.reset()
    return _custom_emulator_session


@pytest.fixture
def custom_admin(custom_emulator) -> EmulatorAdmin:
    admin = EmulatorAdmin(custom_emulator.url, custom_emulator.ca_bundle)
    admin.clear_faults()
    yield admin
    admin.clear_faults()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated SQLite metadata database in the session's AIRFLOW_HOME (for ``dag.test()``)."""
    import subprocess
    import sys
    from pathlib import Path

    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture
def salesforce_connection(salesforce_emulator_reset, monkeypatch) -> str:
    """``salesforce_suite_default`` pointed at the emulator, as users' DAGs expect it."""
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", salesforce_emulator_reset.connection_json())
    return "salesforce_suite_default"


PARDOT_BUSINESS_UNIT = "0Uv000000000001AAA"


@pytest.fixture
def pardot_conn(sf_conn, salesforce_emulator_reset) -> Callable[..., str]:
    """``pardot_conn(conn_id, **extra)`` -> a ``salesforce_pardot`` connection: OAuth and Pardot both on
    the emulator, its default Business Unit, fast retries; Pardot knobs reset after the test."""

    def make(conn_id: str = "pardot_test", **extra: Any) -> str:
        extra = {"business_unit_id": PARDOT_BUSINESS_UNIT, "pardot_host": salesforce_emulator_reset.url,
                 "max_retries": 2, "retry_max_seconds": 5, **extra}
        return sf_conn(conn_id, extra=extra, conn_type="salesforce_pardot")

    yield make
    requests.post(f"{salesforce_emulator_reset.url}/__emulator__/pardot", json={"daily_quota": None, "job_seconds": 0.3, "fail_next_job": False},
                  verify=salesforce_emulator_reset.ca_bundle or True, timeout=10)


@pytest.fixture
def pardot_admin(salesforce_emulator_reset) -> Callable[..., Any]:
    """``pardot_admin(path="", **body)`` -> POST ``/__emulator__/pardot{path}`` (knobs; ``/seed``)."""

    def post(path: str = "", **body: Any) -> Any:
        reply = requests.post(f"{salesforce_emulator_reset.url}/__emulator__/pardot{path}", json=body,
                              verify=salesforce_emulator_reset.ca_bundle or True, timeout=10)
        reply.raise_for_status()
        return reply.json()

    return post
