"""The SOAP hook refuses unsafe XML (DTD, entity bomb, external entity) from a loopback server."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from decimal import Decimal
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

    def serve(*bodies: tuple[int, bytes], type_fields: bool = True) -> SalesforceSoapHook:
        _Handler.bodies = list(bodies)
        return SalesforceSoapHook("sf_soap_loop", type_fields=type_fields)

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


# -- query pages: the direct reader refuses what zeep refuses, and leaves unusual shapes to zeep -------
PAGE = ('<?xml version="1.0" encoding="UTF-8"?>{dtd}<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:sf="urn:sobject.partner.soap.sforce.com"><soapenv:Body><queryResponse><result xsi:type="QueryResult">'
        "<done>true</done><queryLocator xsi:nil=\"true\"/>{records}<size>{size}</size></result></queryResponse>"
        "</soapenv:Body></soapenv:Envelope>")
# Salesforce's own shapes: Id twice, an aggregate row (nil Id, typed expressions), fieldsToNull,
# a nested parent, a child QueryResult, pretty-printing whitespace.
SALESFORCE_RECORDS = (
    '<records xsi:type="sf:sObject"><sf:type>Contact</sf:type><sf:Id>003000000000001AAA</sf:Id>'
    '<sf:Id>003000000000001AAA</sf:Id><sf:LastName>O&apos;Hara &amp; Sons</sf:LastName>'
    '<sf:Age__c xsi:type="xsd:double">4.5</sf:Age__c><sf:Active__c xsi:type="xsd:boolean">true</sf:Active__c>'
    '<sf:Born__c xsi:type="xsd:date">1990-02-03</sf:Born__c><sf:Email xsi:nil="true"/>'
    '<sf:Account xsi:type="sf:sObject"><sf:type>Account</sf:type><sf:Id xsi:nil="true"/><sf:Name>Acme</sf:Name>'
    '</sf:Account><sf:Cases xsi:type="QueryResult"><done>true</done><queryLocator xsi:nil="true"/>'
    '<records xsi:type="sf:sObject"><sf:type>Case</sf:type><sf:Id xsi:nil="true"/><sf:Subject>S</sf:Subject>'
    "</records><size>1</size></sf:Cases></records>\n  "
    '<records xsi:type="sf:sObject"><sf:type>AggregateResult</sf:type><sf:Id xsi:nil="true"/>'
    '<sf:expr0 xsi:type="xsd:int">42</sf:expr0><sf:latest xsi:type="xsd:dateTime">2024-05-06T07:08:09.000Z'
    "</sf:latest></records>\n  "
    '<records xsi:type="sf:sObject"><sf:type>Lead</sf:type><sf:fieldsToNull>Phone</sf:fieldsToNull>'
    "<sf:Id>00Q000000000001AAA</sf:Id><sf:Company>C</sf:Company></records>")
# Shapes the direct reader does not vouch for (zeep reads them): Id after a field, a field outside
# the sObject namespace, a nil record.
ODD_RECORDS = (
    '<records xsi:type="sf:sObject"><sf:type>Contact</sf:type><sf:LastName>Late Id</sf:LastName>'
    "<sf:Id>003000000000002AAA</sf:Id></records>"
    '<records xsi:type="sf:sObject"><sf:type>Contact</sf:type><sf:Id>003000000000003AAA</sf:Id>'
    "<Other>not an sObject field</Other></records>"
    '<records xsi:nil="true"/>')


def _page(records: str, dtd: str = "", size: int = 3) -> bytes:
    return PAGE.format(dtd=dtd, records=records, size=size).encode()


@pytest.mark.parametrize("records,direct", [(SALESFORCE_RECORDS, True), (ODD_RECORDS, False)])
def test_query_pages_match_zeep_on_salesforce_and_odd_shapes(loopback, records, direct):
    from airflow_provider_salesforce_suite.hooks._soap.pages import read_query_page

    hook = loopback((200, _page(records)), type_fields=False)
    [page] = list(hook.query_pages("SELECT Id FROM Contact"))
    zeep_records = hook.call("query", queryString="SELECT Id FROM Contact")["records"]
    assert repr(page) == repr(zeep_records)
    assert (read_query_page(200, _page(records), "query", hook._reader) is not None) is direct
    if direct:
        contact, aggregate, lead = page
        assert contact["LastName"] == "O'Hara & Sons" and contact["Age__c"] == 4.5 and contact["Email"] is None
        assert contact["Account"] == {"type": "Account", "Id": None, "Name": "Acme"}
        assert contact["Cases"]["records"] == [{"type": "Case", "Id": None, "Subject": "S"}]
        assert aggregate == {"type": "AggregateResult", "expr0": 42, "latest": aggregate["latest"]}
        assert aggregate["latest"].year == 2024 and lead == {"type": "Lead", "Id": "00Q000000000001AAA",
                                                             "Company": "C"}


@pytest.mark.parametrize("dtd", [
    '<!DOCTYPE soapenv:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE soapenv:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">',
])
def test_query_page_with_a_dtd_is_refused(loopback, dtd):
    name = "&b;" if "&a;" in dtd else "&x;" if "passwd" in dtd else "n"
    body = _page(f'<records xsi:type="sf:sObject"><sf:type>Contact</sf:type><sf:Name>{name}</sf:Name></records>', dtd)
    hook = loopback((200, body), type_fields=False)
    with pytest.raises(SalesforceApiError) as err:
        next(hook.query_pages("SELECT Name FROM Contact"))
    assert err.value.error_code == "UNSAFE_XML" and "declares a DTD" in str(err.value)
    assert "query" in str(err.value) and "aaaa" not in str(err.value) and "root:" not in str(err.value)
    with pytest.raises(SalesforceApiError, match="UNSAFE_XML"):
        hook.query_more("01g000000000001-200")


def test_query_page_transient_fault_is_retried(loopback):
    hook = loopback((500, FAULT), (200, _page(SALESFORCE_RECORDS)), type_fields=False)
    assert [r["type"] for r in next(hook.query_pages("SELECT Id FROM Contact"))] == ["Contact", "AggregateResult",
                                                                                    "Lead"]
    assert len(_Handler.seen) == 2


def test_query_page_that_is_not_xml(loopback):
    hook = loopback((200, b"<html>oops"), type_fields=False)
    with pytest.raises(SalesforceApiError) as err:
        next(hook.query_pages("SELECT Id FROM Contact"))
    assert err.value.status == 200


# -- create/update/upsert: sObjects built as XML, results read directly; both as zeep does them ------
SID = "00D000000000001!loopbackSessionValue"
SAVE = ('<?xml version="1.0" encoding="UTF-8"?>{dtd}<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><{op}Response>{results}</{op}Response></soapenv:Body></soapenv:Envelope>")
SAVED = ("<result><id>001000000000001AAA</id><success>true</success></result>"
         "<result><errors><fields>Name</fields><fields>Site</fields><message>Required fields are missing: "
         "[Name] &amp; &lt;more&gt;</message><statusCode>REQUIRED_FIELD_MISSING</statusCode></errors>"
         '<errors><message>second</message><statusCode xsi:nil="true"/></errors><id xsi:nil="true"/>'
         "<success>false</success></result>\n  <result><errors><statusCode>X</statusCode></errors>"
         "<success>0</success></result>")
UPSERTED = ("<result><created>true</created><id>001000000000001AAA</id><success>true</success></result>"
            "<result><created>false</created><id>001000000000002AAA</id><success>1</success></result>"
            "<result><created>false</created><errors><fields>Ext__c</fields><message>dup</message><statusCode>DUPLICATE_EXTERNAL_ID"
            '</statusCode></errors><id xsi:nil="true"/><success>false</success></result>')
# Shapes the direct reader leaves to zeep: an empty id, out of sequence, an xsi:type'd error, an unknown element.
ODD_SAVED = ["<result><id></id><success>true</success></result>", "<result/>",
             "<result><success>true</success><id>001000000000001AAA</id></result>",
             '<result><errors xsi:type="DuplicateError"><message>m</message></errors><success>false</success></result>',
             "<result><id>001000000000001AAA</id><success>true</success><extra>x</extra></result>",
             "<result><success>yes</success></result>"]
TRICKY = "Smith & Sons <Ltd> — Zoë, 東京 \"q\" 'a' ]]> \t\r\n"
RECORDS = [
    {"type": "Account", "Name": TRICKY,
     "Site": None, "Active__c": True, "Closed__c": False, "Employees": 12, "Rate__c": 0.1, "Big__c": 10**20,
     "Founded__c": date(1999, 12, 31), "Tags__c": ["a", "b"],
     "Seen__c": datetime(2024, 5, 6, 7, 8, 9, 123456),
     "Amount__c": Decimal("1234.500"), "Description": None, "Empty__c": ""},
    {"attributes": {"type": "Contact"}, "Id": "003000000000001AAA", "LastName": "x", "Email": None,
     "Account": {"type": "Account", "Ext_Id__c": "A-1 & <2>", "Ignored__c": None}},
    {"Id": "", "Name": "no type: sobject="},
]


def _tree(element) -> tuple:
    """An element as (namespaced tag, attributes, text, children): prefixes and declarations aside."""
    return (element.tag, sorted(element.attrib.items()), element.text,
            [_tree(child) for child in element], element.tail)


def _zeep_envelope(hook, operation: str, records, **arguments) -> bytes:
    """The envelope zeep rendered before (zeep's sObject per record)."""
    from lxml import etree

    client, service = hook._zeep
    objects = hook._sobjects(records, "Lead")
    envelope = client.create_message(service, operation, sObjects=objects, _soapheaders={"SessionHeader": {"sessionId": SID}},
                                     **arguments)
    return etree.tostring(envelope)


def _outcome(call) -> str:
    """The repr of a call's result, or its error's type and text (zeep raises for some shapes)."""
    try:
        return repr(call())
    except SalesforceApiError as exc:
        return f"{type(exc).__name__}: {exc}"


def _save(op: str, results: str, dtd: str = "") -> bytes:
    return SAVE.format(op=op, results=results, dtd=dtd).encode()


@pytest.mark.parametrize("operation,arguments", [("create", {}), ("update", {}),
                                                 ("upsert", {"external_id_field": "Ext_Id__c"})])
def test_save_request_is_the_envelope_zeep_renders(loopback, operation, arguments):
    from lxml import etree

    hook = loopback((200, _save(operation, UPSERTED if operation == "upsert" else SAVED)))
    getattr(hook, operation)(*arguments.values(), RECORDS, sobject="Lead")
    zeep_arguments = {"externalIDFieldName": arguments["external_id_field"]} if arguments else {}
    expected = _zeep_envelope(hook, operation, RECORDS, **zeep_arguments)
    sent = etree.fromstring(_Handler.seen[0])
    assert _tree(sent) == _tree(etree.fromstring(expected))
    first, contact, lead = sent[1][0].findall("{urn:partner.soap.sforce.com}sObjects")
    assert [etree.QName(e).localname for e in first][:4] == ["type", "fieldsToNull", "fieldsToNull", "Name"]
    assert first[3].text == TRICKY and b"Smith &amp; Sons &lt;Ltd&gt;" in _Handler.seen[0]
    assert [etree.QName(e).localname for e in contact] == ["type", "fieldsToNull", "Id", "LastName", "Account"]
    assert contact[4][1].text == "A-1 & <2>" and len(contact[4]) == 2
    assert [e.text for e in lead] == ["Lead", "no type: sobject="]


@pytest.mark.parametrize("operation,results,direct", [
    ("create", SAVED, True), ("update", SAVED, True), ("upsert", UPSERTED, True),
    ("upsert", SAVED, True), *[("create", odd, False) for odd in ODD_SAVED], ("create", UPSERTED, False)])
def test_save_results_match_zeep(loopback, operation, results, direct):
    from airflow_provider_salesforce_suite.hooks._soap.saves import read_save_results

    body = _save(operation, results)
    hook = loopback((200, body))
    records = [{"type": "Account", "Name": f"n{i}"} for i in range(body.count(b"<result>") + body.count(b"<result/>"))]
    arguments = {"externalIDFieldName": "Ext__c"} if operation == "upsert" else {}
    got = _outcome(lambda: hook.upsert("Ext__c", records) if operation == "upsert" else
                   getattr(hook, operation)(records))
    assert got == _outcome(lambda: hook.call(operation, sObjects=[], **arguments))  # zeep's reading
    assert (read_save_results(200, body, operation) is not None) is direct
    if operation == "create" and direct:
        got = hook.create(records)  # the same body again
        assert got[0] == {"errors": [], "id": "001000000000001AAA", "success": True}
        assert got[1]["errors"] == [
            {"fields": ["Name", "Site"], "message": "Required fields are missing: [Name] & <more>",
             "statusCode": "REQUIRED_FIELD_MISSING"}, {"fields": [], "message": "second", "statusCode": None}]
        assert got[2] == {"errors": [{"fields": [], "message": None, "statusCode": "X"}], "id": None,
                          "success": False}


@pytest.mark.parametrize("dtd", [
    '<!DOCTYPE soapenv:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
])
def test_save_response_with_a_dtd_is_refused(loopback, dtd):
    entity = "&b;" if "&a;" in dtd else "&x;"
    hook = loopback((200, _save("create", f"<result><id>{entity}</id><success>true</success></result>", dtd)))
    with pytest.raises(SalesforceApiError) as err:
        hook.create([{"type": "Account", "Name": "n"}])
    assert err.value.error_code == "UNSAFE_XML" and "create" in str(err.value) and "aaaa" not in str(err.value)


def test_save_fault_and_non_xml_are_raised_as_before(loopback):
    hook = loopback((500, FAULT))
    with pytest.raises(SalesforceSoapFaultError) as err:
        hook.update([{"type": "Account", "Id": "001000000000001AAA", "Name": "n"}])
    assert err.value.error_code == "UNABLE_TO_LOCK_ROW"
    hook = loopback((200, b"<html>oops"))
    got = _outcome(lambda: hook.create([{"type": "Account", "Name": "n"}]))
    assert got == _outcome(lambda: hook.call("create", sObjects=[])) and "HTTP 200" in got


def test_save_with_another_wsdl_reads_results_through_zeep(loopback, tmp_path):
    from airflow_provider_salesforce_suite.hooks._soap import client as soap_client

    wsdl = open(soap_client.partner_wsdl_path(), encoding="utf-8").read()
    marker = '<element name="statusCode" type="xsd:string" minOccurs="0" maxOccurs="1" nillable="true"/>'
    assert marker in wsdl
    path = tmp_path / "partner.wsdl"
    path.write_text(wsdl.replace(marker, marker + '<element name="extendedErrorDetails" type="xsd:string" '
                                                  'minOccurs="0" maxOccurs="unbounded"/>'), encoding="utf-8")
    loopback((200, _save("create", SAVED)))
    hook = SalesforceSoapHook("sf_soap_loop", wsdl_path=str(path))
    results = hook.create([{"type": "Account", "Name": f"n{i}"} for i in range(4)])
    assert hook._saves[1] is False
    assert results[1]["errors"][0]["extendedErrorDetails"] == [] and results[0]["success"] is True
