"""The SOAP hook refuses unsafe XML (DTD, entity bomb, external entity) from a loopback server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceSoapFaultError
from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

ENV = ('<?xml version="1.0" encoding="UTF-8"?>{dtd}<soapenv:Envelope '
       'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
       "<soapenv:Body><getServerTimestampResponse><result><timestamp>{ts}</timestamp></result>"
       "</getServerTimestampResponse></soapenv:Body></soapenv:Envelope>")
OK = ENV.format(dtd="", ts="2024-05-06T07:08:09.000Z").encode()
BOMB = ENV.format(
    dtd='<!DOCTYPE soapenv:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>', ts="&c;").encode()
EXTERNAL = ENV.format(dtd='<!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>', ts="&x;").encode()
DTD_ONLY = ENV.format(dtd='<!DOCTYPE soapenv:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">',
                      ts="2024-05-06T07:08:09.000Z").encode()
FAULT = (b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
         b' xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
         b"<soapenv:Body><soapenv:Fault><faultcode>sf:UNABLE_TO_LOCK_ROW</faultcode>"
         b"<faultstring>UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record</faultstring>"
         b'<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault"><sf:exceptionCode>UNABLE_TO_LOCK_ROW'
         b"</sf:exceptionCode><sf:exceptionMessage>unable to obtain exclusive access to this record</sf:exceptionMessage>"
         b"</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")


class _Handler(BaseHTTPRequestHandler):
    bodies: list[tuple[int, bytes]] = []
    seen: list[bytes] = []

    def do_POST(self) -> None:
        self.seen.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        status, body = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Handler.seen = []
    base = f"http://127.0.0.1:{server.server_address[1]}"
    conn = {"conn_type": "salesforce_suite", "host": base,
            "extra": {"auth_type": "session", "session_id": "00D000000000001!loopbackSessionValue",
                      "instance_url": base, "max_retries": 1, "initial_backoff": 0.01}}
    monkeypatch.setenv("AIRFLOW_CONN_SF_SOAP_LOOP", json.dumps(conn))

    def serve(*bodies: tuple[int, bytes]) -> SalesforceSoapHook:
        _Handler.bodies = list(bodies)
        return SalesforceSoapHook("sf_soap_loop")

    yield serve
    server.shutdown()
    server.server_close()


def test_safe_response_is_parsed(loopback):
    hook = loopback((200, OK))
    assert hook.get_server_timestamp().isoformat() == "2024-05-06T07:08:09+00:00"
    assert b"<ns0:sessionId>00D000000000001!loopbackSessionValue</ns0:sessionId>" in _Handler.seen[0]


@pytest.mark.parametrize("body,what", [(BOMB, "a DTD"), (EXTERNAL, "a DTD"), (DTD_ONLY, "a DTD")])
def test_unsafe_xml_is_refused(loopback, body, what):
    hook = loopback((200, body))
    with pytest.raises(SalesforceApiError) as err:
        hook.get_server_timestamp()
    assert err.value.error_code == "UNSAFE_XML"
    assert f"declares {what}" in str(err.value) and "getServerTimestamp" in str(err.value)
    assert "aaaa" not in str(err.value) and "root:" not in str(err.value)


def test_unsafe_xml_in_a_fault_is_refused(loopback):
    hook = loopback((500, BOMB))
    with pytest.raises(SalesforceApiError) as err:
        hook.get_server_timestamp()
    assert err.value.error_code == "UNSAFE_XML" and err.value.status == 500


def test_transient_fault_is_retried_then_succeeds(loopback):
    hook = loopback((500, FAULT), (200, OK))
    assert hook.get_server_timestamp().year == 2024
    assert len(_Handler.seen) == 2


def test_persistent_transient_fault_raises_soap_fault(loopback):
    hook = loopback((500, FAULT))
    with pytest.raises(SalesforceSoapFaultError) as err:
        hook.get_server_timestamp()
    assert err.value.error_code == "UNABLE_TO_LOCK_ROW" and err.value.fault_type == "UnexpectedErrorFault"
    assert len(_Handler.seen) == 2  # max_retries=1


def test_non_xml_error_body(loopback):
    hook = loopback((502, b"<html><title>Bad gateway</title></html>"))
    with pytest.raises(SalesforceApiError) as err:
        hook.get_server_timestamp()
    assert err.value.status == 502 and "Bad gateway" in str(err.value)
