"""Legacy SOAP login() against a loopback HTTPS-less server answering like Salesforce's partner API."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_salesforce_suite.core import auth
from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

SESSION = "00D000000000001!SOAPsessionIdValue0123456789abcdef"
PASSWORD, TOKEN = "s0ap-Passw0rd", "SECTOKEN123"


def _login_ok(base: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
        "<soapenv:Body><loginResponse><result><metadataServerUrl>x</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/64.0/00D000000000001</serverUrl>"
        f"<sessionId>{SESSION}</sessionId><userId>005000000000001AAA</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


FAULT = (
    b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>'
    b"<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>"
    b"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)
BOMB = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<r><sessionId>&b;</sessionId></r>")


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[tuple[str, bytes, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, body, self.headers.get("SOAPAction", "")))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        status, payload = {"ok": (200, _login_ok(base)), "fault": (500, FAULT), "bomb": (200, BOMB)}[self.mode]
        self._send(status, "text/xml", payload)

    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == f"Bearer {SESSION}"
        self._send(200 if ok else 401, "application/json",
                   b'{"ok": true}' if ok else b'[{"errorCode":"INVALID_SESSION_ID","message":"Session expired"}]')

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def soap_hook(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Handler.seen, _Handler.mode = [], "ok"
    conn = {"conn_type": "salesforce_suite", "host": f"http://127.0.0.1:{server.server_address[1]}",
            "login": "soap@example.com", "password": PASSWORD,
            "extra": {"auth_type": "soap_login", "security_token": TOKEN, "api_version": "66.0", "max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_SF_SOAP", json.dumps(conn))
    yield SalesforceBaseHook("sf_soap")
    server.shutdown()
    server.server_close()


def test_soap_login_gets_session_and_warns(soap_hook, caplog) -> None:
    auth._soap_warned = False
    caplog.set_level(logging.WARNING)
    assert soap_hook.request("GET", "/services/data/v66.0/limits").json() == {"ok": True}
    path, body, action = _Handler.seen[0]
    # SOAP login() is gone from API 65.0: the login call uses 64.0 whatever the REST version.
    assert path == "/services/Soap/u/64.0" and action == "login"
    assert f"<urn:password>{PASSWORD}{TOKEN}</urn:password>".encode() in body
    assert soap_hook.instance_url == soap_hook.config.login_url
    assert any("65.0" in r.getMessage() and "Summer '27" in r.getMessage() for r in caplog.records)
    assert PASSWORD not in caplog.text and SESSION not in caplog.text


def test_soap_fault_is_auth_error(soap_hook) -> None:
    _Handler.mode = "fault"
    with pytest.raises(SalesforceAuthError) as err:
        soap_hook.request("GET", "/services/data/v66.0/limits")
    assert err.value.error == "INVALID_LOGIN" and err.value.status == 500
    assert "Invalid username" in str(err.value) and PASSWORD not in str(err.value)


def test_entity_expansion_refused(soap_hook) -> None:
    _Handler.mode = "bomb"
    with pytest.raises(SalesforceAuthError) as err:
        soap_hook.request("GET", "/services/data/v66.0/limits")
    assert "aaaaaaaaaa" not in str(err.value)
