"""Non-JSON error bodies (HTML, empty, plain text) from a loopback HTTP server become clear errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceServerError,
)
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

SESSION = "00D000000000001!FAKEsessionTokenValue1234567890"
HTML = (b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
        b"<p>upstream said no</p></body></html>")


class _Handler(BaseHTTPRequestHandler):
    calls: list[str] = []

    def _answer(self) -> None:
        self.calls.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, ctype, body = {
            "/html": (502, "text/html", HTML),
            "/empty": (500, "text/plain", b""),
            "/text": (400, "text/plain", b"Bad thing happened " + SESSION.encode()),
            "/services/oauth2/token": (503, "text/html", b"<html><title>Maintenance</title></html>"),
        }.get(self.path.split("?")[0], (200, "application/json", json.dumps({"ok": True}).encode()))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def plain_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.calls = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def session_hook(plain_server, monkeypatch) -> SalesforceBaseHook:
    conn = {"conn_type": "salesforce_suite", "host": plain_server,
            "extra": {"auth_type": "session", "session_id": SESSION, "max_retries": 1, "retry_max_seconds": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_SF_PLAIN", json.dumps(conn))
    return SalesforceBaseHook("sf_plain")


def test_html_502_after_retries(session_hook) -> None:
    with pytest.raises(SalesforceServerError) as err:
        session_hook.request("GET", "/html")
    assert err.value.status == 502 and err.value.error_code is None
    assert "502 Bad Gateway" in str(err.value) and "upstream said no" in str(err.value) and "<" not in err.value.message
    assert _Handler.calls == ["GET /html", "GET /html"]


def test_empty_body(session_hook) -> None:
    with pytest.raises(SalesforceServerError, match="empty body"):
        session_hook.request("POST", "/empty", json={})


def test_plain_text_body_without_token(session_hook) -> None:
    with pytest.raises(SalesforceApiError) as err:
        session_hook.request("GET", "/text")
    assert "Bad thing happened" in str(err.value) and SESSION not in str(err.value)


def test_success_sends_bearer(session_hook) -> None:
    assert session_hook.request("GET", "/anything").json() == {"ok": True}


def test_html_token_endpoint_is_an_auth_error(plain_server, monkeypatch) -> None:
    conn = {"conn_type": "salesforce_suite", "host": plain_server, "login": "u", "password": "p4ssw0rd-x",
            "extra": {"consumer_key": "k", "consumer_secret": "s3cret-x", "max_retries": 1, "retry_max_seconds": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_SF_PLAIN_PW", json.dumps(conn))
    with pytest.raises(SalesforceAuthError) as err:
        SalesforceBaseHook("sf_plain_pw").request("GET", "/x")
    assert err.value.status == 503 and "Maintenance" in str(err.value)
    assert _Handler.calls.count("POST /services/oauth2/token") == 2  # retried once, then reported
