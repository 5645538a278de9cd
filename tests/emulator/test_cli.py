"""The console script as a real process: starts, serves over HTTP and HTTPS, stops on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    # The installed console script when there is one, else the equivalent module entry point.
    script = shutil.which("salesforce-suite-emulator", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "airflow_provider_salesforce_suite.emulator"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(*args: str) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([*_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line.rstrip("\n"))
        if line.startswith("export AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT="):
            return proc, lines
    proc.kill()
    raise AssertionError(f"emulator did not start: {lines} {proc.stderr.read()}")  # type: ignore[union-attr]


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_help_documents_credentials_and_certificate() -> None:
    done = subprocess.run([*_command(), "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0
    for needle in ("consumer key", "emulator", "admin@emulator.local", "security token", "cert.pem", "--no-tls"):
        assert needle in done.stdout


def test_plain_http_process_serves_and_stops_on_sigterm(tmp_path) -> None:
    port = _free_port()
    proc, lines = _start("--port", str(port), "--no-tls", "--db", str(tmp_path / "org.sqlite"))
    try:
        assert lines[0] == f"Salesforce emulator listening on http://127.0.0.1:{port}"
        versions = requests.get(f"http://127.0.0.1:{port}/services/data/", timeout=10)
        assert versions.status_code == 200 and versions.json()[-1]["version"] == "66.0"
        token = requests.post(f"http://127.0.0.1:{port}/services/oauth2/token", timeout=10, data={
            "grant_type": "password", "client_id": "emulator", "client_secret": "emulator",
            "username": "admin@emulator.local", "password": "emulator"}).json()
        assert token["instance_url"] == f"http://127.0.0.1:{port}"
    finally:
        assert _stop(proc) == 0
    assert "Salesforce emulator stopped" in proc.stdout.read()  # type: ignore[union-attr]
    assert (tmp_path / "org.sqlite").exists()


def test_tls_process_with_its_ca_certificate(tmp_path) -> None:
    port = _free_port()
    proc, lines = _start("--port", str(port), "--cert-dir", str(tmp_path))
    try:
        assert lines[0] == f"Salesforce emulator listening on https://127.0.0.1:{port}"
        ca = str(tmp_path / "cert.pem")
        assert f"CA certificate (ca_bundle): {ca}" in lines
        assert ca in lines[-1]  # the example connection carries the CA bundle
        assert requests.get(f"https://127.0.0.1:{port}/services/data/", verify=ca, timeout=10).status_code == 200
        assert requests.get(f"https://localhost:{port}/services/data/", verify=ca, timeout=10).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://127.0.0.1:{port}/services/data/", timeout=10)  # not in the system store
    finally:
        assert _stop(proc) == 0


def _documented_schema() -> str:
    """The schema file example of ``docs/emulator.md`` (the list form), verbatim."""
    text = (REPO / "docs" / "emulator.md").read_text()
    section = text[text.index("Custom objects and fields come from a schema file"):]
    return section[section.index("```json\n") + len("```json\n"):section.index("\n```", section.index("```json"))]


def test_the_documented_schema_file_starts_the_emulator(tmp_path) -> None:
    schema = tmp_path / "custom_objects.json"
    schema.write_text(_documented_schema())
    port = _free_port()
    proc, _ = _start("--port", str(port), "--no-tls", "--schema", str(schema))
    try:
        base = f"http://127.0.0.1:{port}"
        token = requests.post(f"{base}/services/oauth2/token", timeout=10, data={
            "grant_type": "password", "client_id": "emulator", "client_secret": "emulator",
            "username": "admin@emulator.local", "password": "emulator"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        invoice = requests.get(f"{base}/services/data/v64.0/sobjects/Invoice__c/describe", headers=auth, timeout=10)
        fields = {f["name"]: f for f in invoice.json()["fields"]}
        assert fields["Number__c"]["externalId"] and fields["Amount__c"]["scale"] == 2
        assert fields["Account__c"]["relationshipName"] == "Account__r"
        account = requests.get(f"{base}/services/data/v64.0/sobjects/Account/describe", headers=auth, timeout=10)
        tier = next(f for f in account.json()["fields"] if f["name"] == "Tier__c")
        assert [v["value"] for v in tier["picklistValues"]] == ["Gold", "Silver"]
    finally:
        assert _stop(proc) == 0


def test_a_malformed_schema_file_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    schema = tmp_path / "custom_objects.json"
    schema.write_text('{"objects": [{"label": "Invoice"}]}')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*_command(), "--port", str(_free_port()), "--no-tls", "--schema", str(schema)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--schema: schema file {str(schema)!r}: objects[0] must be an object with a \"name\"" in done.stderr


def _pubsub_topic(endpoint: str, base: str, ca: str | None) -> tuple[str, bool]:
    """GetTopic over raw generated stubs, with a password-grant token from the same process."""
    import grpc

    from airflow_provider_salesforce_suite.core.pubsub import stubs

    pb2, pb2_grpc = stubs()
    login = requests.post(f"{base}/services/oauth2/token", verify=ca or True, timeout=10, data={
        "grant_type": "password", "client_id": "emulator", "client_secret": "emulator",
        "username": "admin@emulator.local", "password": "emulator"}).json()
    org_id = login["id"].rstrip("/").split("/")[-2]
    metadata = (("accesstoken", login["access_token"]), ("instanceurl", base), ("tenantid", org_id))
    channel = (grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(open(ca, "rb").read())) if ca
               else grpc.insecure_channel(endpoint))
    with channel:
        info = pb2_grpc.PubSubStub(channel).GetTopic(pb2.TopicRequest(topic_name="/data/ChangeEvents"),
                                                     metadata=metadata, timeout=10)
    return info.tenant_guid, info.can_subscribe


def test_pubsub_port_zero_is_printed_and_serves_grpc_over_tls(tmp_path) -> None:
    port = _free_port()
    proc, lines = _start("--port", str(port), "--cert-dir", str(tmp_path), "--pubsub-port", "0")
    try:
        [line] = [text for text in lines if text.startswith("Pub/Sub API")]
        endpoint = line.rsplit(" ", 1)[1]
        assert line == f"Pub/Sub API (gRPC) listening on {endpoint}" and endpoint.startswith("127.0.0.1:")
        assert int(endpoint.rsplit(":", 1)[1]) not in (0, port)
        assert f'"pubsub_endpoint": "{endpoint}"' in lines[-1]  # in the example connection's extras
        tenant, can_subscribe = _pubsub_topic(endpoint, f"https://127.0.0.1:{port}", str(tmp_path / "cert.pem"))
        assert tenant.startswith("00D") and can_subscribe
    finally:
        assert _stop(proc) == 0


def test_pubsub_plaintext_with_no_tls_on_a_given_port() -> None:
    port, pubsub_port = _free_port(), _free_port()
    proc, lines = _start("--port", str(port), "--no-tls", "--pubsub-port", str(pubsub_port))
    try:
        assert f"Pub/Sub API (gRPC, plaintext) listening on 127.0.0.1:{pubsub_port}" in lines
        assert _pubsub_topic(f"127.0.0.1:{pubsub_port}", f"http://127.0.0.1:{port}", None)[1]
    finally:
        assert _stop(proc) == 0


def test_a_busy_pubsub_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        done = subprocess.run([*_command(), "--port", "0", "--no-tls", "--pubsub-port", str(taken)],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"the Pub/Sub API could not bind 127.0.0.1:{taken}" in done.stderr
