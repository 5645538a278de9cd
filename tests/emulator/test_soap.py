"""Partner SOAP API over loopback with raw envelopes and ``requests``: exact shapes, faults, safe
parsing, login and its version gate, and every operation over the shared store."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
import xml.etree.ElementTree as ET

import pytest
import requests
from sf_emulator_client import PASSWORD, USERNAME, EmulatorClient

P = "{urn:partner.soap.sforce.com}"
S = "{urn:sobject.partner.soap.sforce.com}"
F = "{urn:fault.partner.soap.sforce.com}"
ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


WSDL = Path(__file__).resolve().parents[2] / "airflow_provider_salesforce_suite" / "wsdl" / "partner.wsdl"


@functools.lru_cache(maxsize=1)
def _zeep_client():
    import zeep

    return zeep.Client(str(WSDL))


def zeep_parse(operation: str, reply: requests.Response):
    """Parse a reply strictly against the project's partner WSDL, as the zeep hook does."""
    client = _zeep_client()
    binding = client.service._binding
    return binding.process_reply(client, binding.get(operation), reply)


class Soap:
    def __init__(self, server) -> None:
        self.client = EmulatorClient(server)
        self.server = server

    def post(self, op_xml: str, *, version: str = "62.0", session: str | None = "auto", headers: str = "",
             raw: bytes | None = None) -> requests.Response:
        if session == "auto":
            session = self.client.token()
        head = (f"<urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader>" if session else "")
        body = raw if raw is not None else (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
            'envelope/" xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Header>{head}{headers}</soapenv:Header><soapenv:Body>{op_xml}</soapenv:Body></soapenv:Envelope>"
        ).encode("utf-8")
        return requests.post(f"{self.server.url}/services/Soap/u/{version}", data=body, verify=self.client.verify,
                             headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}, timeout=30)

    def ok(self, op_xml: str, **kwargs) -> ET.Element:
        reply = self.post(op_xml, **kwargs)
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"].startswith("text/xml")
        body = ET.fromstring(reply.content).find(ENV + "Body")
        operation = body[0].tag.replace(P, "")[: -len("Response")]
        zeep_parse(operation, reply)  # must validate against the WSDL
        return body[0]

    def fault(self, op_xml: str, **kwargs) -> tuple[str, str, ET.Element | None]:
        reply = self.post(op_xml, **kwargs)
        assert reply.status_code == 500, reply.text
        fault = ET.fromstring(reply.content).find(f"{ENV}Body/{ENV}Fault")
        detail = fault.find("detail")
        if detail is not None:  # zeep (the hook's parser) reads the same fault from the WSDL
            from zeep.exceptions import Fault

            with pytest.raises(Fault) as parsed:
                zeep_parse(op_xml.split(">", 1)[0].split(":", 1)[1].split(" ")[0].rstrip("/"), reply)
            assert parsed.value.code == fault.findtext("faultcode")
        return fault.findtext("faultcode"), fault.findtext("faultstring"), (detail[0] if detail is not None else None)


@pytest.fixture
def soap(salesforce_emulator_reset) -> Soap:
    return Soap(salesforce_emulator_reset)


def sobj(sobject_type: str, **fields) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items() if k != "fieldsToNull")
    nulls = "".join(f"<urn1:fieldsToNull>{f}</urn1:fieldsToNull>" for f in fields.get("fieldsToNull", []))
    return f"<urn:sObjects><urn1:type>{sobject_type}</urn1:type>{nulls}{inner}</urn:sObjects>"


def create(soap: Soap, sobject_type: str, **fields) -> str:
    result = soap.ok(f"<urn:create>{sobj(sobject_type, **fields)}</urn:create>")[0]
    assert result.findtext(P + "success") == "true", ET.tostring(result)
    return result.findtext(P + "id")


# -- login and the version gate ------------------------------------------------------------------


def test_login_result_shape_and_session_works_for_rest(soap: Soap) -> None:
    op = f"<urn:login><urn:username>{USERNAME}</urn:username><urn:password>{PASSWORD}</urn:password></urn:login>"
    response = soap.ok(op, session=None, version="64.0")
    assert response.tag == P + "loginResponse"
    result = response.find(P + "result")
    names = [c.tag.replace(P, "") for c in result]
    assert names == ["metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId", "userInfo"]
    assert result.findtext(P + "serverUrl") == f"{soap.server.url}/services/Soap/u/64.0/{result.findtext(f'{P}userInfo/{P}organizationId')[:15]}"
    assert result.findtext(P + "passwordExpired") == "false"
    assert result.findtext(f"{P}userInfo/{P}userName") == USERNAME
    session = result.findtext(P + "sessionId")
    rest = requests.get(f"{soap.server.url}/services/data/v62.0/sobjects/", verify=soap.client.verify,
                        headers={"Authorization": f"Bearer {session}"}, timeout=10)
    assert rest.status_code == 200
    # ... and for SOAP itself, at the serverUrl the login answered
    assert soap.ok("<urn:getUserInfo/>", session=session).find(f"{P}result/{P}userName").text == USERNAME


def test_login_bad_password_is_login_fault(soap: Soap) -> None:
    op = f"<urn:login><urn:username>{USERNAME}</urn:username><urn:password>nope</urn:password></urn:login>"
    code, text, detail = soap.fault(op, session=None)
    assert code == "sf:INVALID_LOGIN"
    assert text == "INVALID_LOGIN: Invalid username, password, security token; or user locked out."
    assert detail.tag == F + "LoginFault" and detail.get(XSI + "type") == "sf:LoginFault"
    assert detail.findtext(F + "exceptionCode") == "INVALID_LOGIN"


@pytest.mark.parametrize("version", ["65.0", "66.0"])
def test_login_removed_from_65(soap: Soap, version: str) -> None:
    op = f"<urn:login><urn:username>{USERNAME}</urn:username><urn:password>{PASSWORD}</urn:password></urn:login>"
    code, text, detail = soap.fault(op, session=None, version=version)
    assert code == "sf:UNSUPPORTED_API_VERSION" and "login() is not supported" in text
    assert detail.tag == F + "UnexpectedErrorFault"


def test_unknown_api_version(soap: Soap) -> None:
    code, _, _ = soap.fault("<urn:getServerTimestamp/>", version="30.0")
    assert code == "sf:UNSUPPORTED_API_VERSION"


def test_simple_salesforce_soap_login_unchanged(soap: Soap, monkeypatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # it would override Session.verify
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed
    from simple_salesforce.login import soap_login

    body = ('<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>x</urn:client>'
            '<urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></env:Header><env:Body>'
            '<n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{u}</n1:username>'
            "<n1:password>{p}</n1:password></n1:login></env:Body></env:Envelope>")
    http = requests.Session()
    http.verify = soap.client.verify
    url = f"{soap.server.url}/services/Soap/u/59.0"
    headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
    session_id, instance = soap_login(url, body.format(u=USERNAME, p=PASSWORD), headers, None, http)
    assert session_id and instance == soap.server.url.split("//", 1)[1]
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        soap_login(url, body.format(u=USERNAME, p="bad"), headers, None, http)
    assert failed.value.code == "INVALID_LOGIN"


# -- sessions and envelopes ---------------------------------------------------------------------------


def test_invalid_and_expired_session(soap: Soap, emulator_admin) -> None:
    for session in ("bogus", None):
        code, text, detail = soap.fault("<urn:getServerTimestamp/>", session=session)
        assert code == "sf:INVALID_SESSION_ID"
        assert text == "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session"
        assert detail.tag == F + "InvalidSessionIdFault"
    token = soap.client.token()
    emulator_admin.expire_sessions()
    assert soap.fault("<urn:getServerTimestamp/>", session=token)[0] == "sf:INVALID_SESSION_ID"


@pytest.mark.parametrize("raw", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b"<soapenv:Envelope", b"not xml", b"",
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>',
    b"<other/>",
])
def test_unsafe_or_bad_xml_is_client_fault(soap: Soap, raw: bytes) -> None:
    reply = soap.post("", raw=raw)
    assert reply.status_code == 500
    fault = ET.fromstring(reply.content).find(f"{ENV}Body/{ENV}Fault")
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert "passwd" not in reply.text and "root:" not in reply.text


@pytest.mark.parametrize("value", ["Acme&#0;Corp", "Acme\x00Corp"])
def test_a_nul_character_cannot_travel_in_soap(soap: Soap, value: str) -> None:
    # XML 1.0 has no NUL, escaped or raw: the envelope is refused as a whole, nothing is created.
    code, text, _ = soap.fault(f"<urn:create>{sobj('Account', Name=value)}</urn:create>")
    assert code == "soapenv:Client"
    assert soap.client.get("/services/data/v62.0/query", params={"q": "SELECT COUNT() FROM Account"}
                           ).json()["totalSize"] == 0


def test_unknown_operation(soap: Soap) -> None:
    code, text, _ = soap.fault("<urn:frobnicate/>")
    assert code == "soapenv:Client" and "frobnicate" in text


def test_limit_info_header(soap: Soap) -> None:
    reply = soap.post("<urn:getServerTimestamp/>")
    header = ET.fromstring(reply.content).find(f"{ENV}Header/{P}LimitInfoHeader/{P}limitInfo")
    assert header.findtext(P + "type") == "API REQUESTS" and int(header.findtext(P + "current")) >= 1


# -- CRUD ------------------------------------------------------------------------------------------------


def test_create_retrieve_update_fields_to_null_and_rest_visibility(soap: Soap) -> None:
    account_id = create(soap, "Account", Name="A &amp; B &lt;Ünïcode&gt;", Phone="123", NumberOfEmployees="42")
    rest = soap.client.get(f"/services/data/v62.0/sobjects/Account/{account_id}").json()
    assert rest["Name"] == "A & B <Ünïcode>" and rest["NumberOfEmployees"] == 42
    result = soap.ok(f"<urn:update>{sobj('Account', Id=account_id, fieldsToNull=['Phone'], Industry='Energy')}</urn:update>")[0]
    assert [c.tag.replace(P, "") for c in result] == ["id", "success"]
    record = soap.ok("<urn:retrieve><urn:fieldList>Name, Phone, NumberOfEmployees, IsDeleted, CreatedDate, Industry</urn:fieldList>"
                     f"<urn:sObjectType>Account</urn:sObjectType><urn:ids>{account_id}</urn:ids>"
                     "<urn:ids>001000000000000AAA</urn:ids></urn:retrieve>")
    first, missing = list(record)
    assert first.get(XSI + "type") == "sf:sObject"
    assert [c.tag.replace(S, "") for c in first][:3] == ["type", "Id", "Name"]
    assert first.findtext(S + "Name") == "A & B <Ünïcode>"
    assert first.find(S + "Phone").get(XSI + "nil") == "true"
    assert first.find(S + "NumberOfEmployees").get(XSI + "type") == "xsd:int"
    assert first.find(S + "IsDeleted").get(XSI + "type") == "xsd:boolean" and first.findtext(S + "IsDeleted") == "false"
    assert first.find(S + "CreatedDate").get(XSI + "type") == "xsd:dateTime"
    assert first.findtext(S + "Industry") == "Energy"
    assert missing.get(XSI + "nil") == "true"


def test_create_per_record_errors_and_all_or_none(soap: Soap) -> None:
    ops = f"<urn:create>{sobj('Account', Name='ok')}{sobj('Account', Phone='no name')}</urn:create>"
    good, bad = list(soap.ok(ops))
    assert good.findtext(P + "success") == "true"
    assert bad.findtext(P + "success") == "false" and bad.find(P + "id").get(XSI + "nil") == "true"
    assert bad.findtext(f"{P}errors/{P}statusCode") == "REQUIRED_FIELD_MISSING"
    assert bad.findtext(f"{P}errors/{P}fields") == "Name"
    header = "<urn:AllOrNoneHeader><urn:allOrNone>true</urn:allOrNone></urn:AllOrNoneHeader>"
    ops = f"<urn:create>{sobj('Account', Name='rolled')}{sobj('Account', Phone='x')}</urn:create>"
    first, _ = list(soap.ok(ops, headers=header))
    assert first.findtext(f"{P}errors/{P}statusCode") == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    count = soap.client.get("/services/data/v62.0/query", params={"q": "SELECT COUNT() FROM Account WHERE Name = 'rolled'"})
    assert count.json()["totalSize"] == 0


def test_invalid_type_fault_and_too_many(soap: Soap) -> None:
    code, _, detail = soap.fault(f"<urn:create>{sobj('Nope__c', Name='x')}</urn:create>")
    assert code == "sf:INVALID_TYPE" and detail.tag == F + "InvalidSObjectFault"
    assert detail.findtext(F + "row") == "-1"
    code, text, _ = soap.fault("<urn:create>" + sobj("Account", Name="x") * 201 + "</urn:create>")
    assert code == "sf:EXCEEDED_ID_LIMIT" and "200" in text


def test_upsert_delete_undelete_empty_recycle_bin(soap: Soap, salesforce_emulator_reset) -> None:
    op = ("<urn:upsert><urn:externalIDFieldName>Id</urn:externalIDFieldName>"
          f"{sobj('Account', Name='no id')}</urn:upsert>")
    result = soap.ok(op)[0]
    assert [c.tag.replace(P, "") for c in result][:2] == ["created", "errors"]  # Salesforce's (and our WSDL's) order
    assert result.findtext(f"{P}errors/{P}statusCode") == "MISSING_ARGUMENT"
    account_id = create(soap, "Account", Name="Up")
    op = ("<urn:upsert><urn:externalIDFieldName>Id</urn:externalIDFieldName>"
          f"{sobj('Account', Id=account_id, Name='Up2')}</urn:upsert>")
    result = soap.ok(op)[0]
    assert result.findtext(P + "created") == "false" and result.findtext(P + "success") == "true"
    deleted = soap.ok(f"<urn:delete><urn:ids>{account_id}</urn:ids><urn:ids>001000000000000AAA</urn:ids></urn:delete>")
    assert deleted[0].findtext(P + "success") == "true"
    assert deleted[1].findtext(f"{P}errors/{P}statusCode") == "INVALID_CROSS_REFERENCE_KEY"
    rows = soap.ok(f"<urn:queryAll><urn:queryString>SELECT Id, IsDeleted FROM Account WHERE Id = '{account_id}'</urn:queryString></urn:queryAll>")
    assert rows.find(f"{P}result/{P}records/{S}IsDeleted").text == "true"
    assert soap.ok(f"<urn:undelete><urn:ids>{account_id}</urn:ids></urn:undelete>")[0].findtext(P + "success") == "true"
    assert soap.client.get(f"/services/data/v62.0/sobjects/Account/{account_id}").status_code == 200
    soap.ok(f"<urn:delete><urn:ids>{account_id}</urn:ids></urn:delete>")
    emptied = soap.ok(f"<urn:emptyRecycleBin><urn:ids>{account_id}</urn:ids></urn:emptyRecycleBin>")[0]
    assert emptied.findtext(P + "success") == "true"
    again = soap.ok(f"<urn:undelete><urn:ids>{account_id}</urn:ids></urn:undelete>")[0]
    assert again.findtext(P + "success") == "false"


def test_upsert_fails_every_record_repeating_a_key_of_the_call(soap: Soap) -> None:
    account_id = create(soap, "Account", Name="Twice")
    op = ("<urn:upsert><urn:externalIDFieldName>Id</urn:externalIDFieldName>"
          f"{sobj('Account', Id=account_id, Name='A')}{sobj('Account', Name='new')}"
          f"{sobj('Account', Id=account_id, Name='B')}</urn:upsert>")
    first, other, last = soap.ok(op)
    for result in (first, last):
        assert result.findtext(P + "success") == "false"
        assert result.findtext(f"{P}errors/{P}statusCode") == "DUPLICATE_EXTERNAL_ID"
        assert result.findtext(f"{P}errors/{P}message") == f"Duplicate external id specified: {account_id}"
    assert other.findtext(f"{P}errors/{P}statusCode") == "MISSING_ARGUMENT"  # a key-less record fails on its own
    name = soap.client.get(f"/services/data/v62.0/sobjects/Account/{account_id}").json()["Name"]
    assert name == "Twice"


# -- query -------------------------------------------------------------------------------------------


def test_query_shape_relationships_and_query_more(soap: Soap) -> None:
    account_id = create(soap, "Account", Name="Parent")
    for i in range(3):
        create(soap, "Contact", LastName=f"C{i}", AccountId=account_id)
    result = soap.ok("<urn:query><urn:queryString>SELECT Id, LastName, Email, Account.Name FROM Contact ORDER BY LastName"
                     "</urn:queryString></urn:query>").find(P + "result")
    assert result.get(XSI + "type") == "QueryResult"
    assert [c.tag.replace(P, "") for c in result] == ["done", "queryLocator", "records", "records", "records", "size"]
    assert result.findtext(P + "size") == "3" and result.find(P + "queryLocator").get(XSI + "nil") == "true"
    record = result.find(P + "records")
    ids_ = record.findall(S + "Id")
    assert len(ids_) == 2 and ids_[0].text == ids_[1].text  # Salesforce repeats the selected Id
    assert record.find(S + "Email").get(XSI + "nil") == "true"
    parent = record.find(S + "Account")
    assert parent.get(XSI + "type") == "sf:sObject" and parent.findtext(S + "type") == "Account"
    assert parent.find(S + "Id").get(XSI + "nil") == "true" and parent.findtext(S + "Name") == "Parent"
    children = soap.ok("<urn:query><urn:queryString>SELECT Name, (SELECT LastName FROM Contacts) FROM Account"
                       "</urn:queryString></urn:query>").find(f"{P}result/{P}records/{S}Contacts")
    assert children.get(XSI + "type") == "QueryResult" and children.findtext(P + "size") == "3"
    create_ops = "".join(sobj("Account", Name=f"Bulk{i}") for i in range(200))
    soap.ok(f"<urn:create>{create_ops}</urn:create>")
    options = "<urn:QueryOptions><urn:batchSize>200</urn:batchSize></urn:QueryOptions>"
    first = soap.ok("<urn:query><urn:queryString>SELECT Id FROM Account</urn:queryString></urn:query>",
                    headers=options).find(P + "result")
    assert first.findtext(P + "done") == "false" and len(first.findall(P + "records")) == 200
    locator = first.findtext(P + "queryLocator")
    more = soap.ok(f"<urn:queryMore><urn:queryLocator>{locator}</urn:queryLocator></urn:queryMore>").find(P + "result")
    assert more.findtext(P + "done") == "true" and len(more.findall(P + "records")) == 1
    code, _, detail = soap.fault("<urn:queryMore><urn:queryLocator>bogus-1</urn:queryLocator></urn:queryMore>")
    assert code == "sf:INVALID_QUERY_LOCATOR" and detail.tag == F + "InvalidQueryLocatorFault"


def test_query_faults_carry_row_and_column(soap: Soap) -> None:
    code, text, detail = soap.fault("<urn:query><urn:queryString>SELECT Id FROM Account WHERE</urn:queryString></urn:query>")
    assert code == "sf:MALFORMED_QUERY" and detail.tag == F + "MalformedQueryFault"
    assert detail.findtext(F + "row") == "1" and int(detail.findtext(F + "column")) > 1
    code, _, detail = soap.fault("<urn:query><urn:queryString>SELECT Bogus FROM Account</urn:queryString></urn:query>")
    assert code == "sf:INVALID_FIELD" and detail.tag == F + "InvalidFieldFault"
    code, _, detail = soap.fault("<urn:query><urn:queryString>SELECT Id FROM Bogus</urn:queryString></urn:query>")
    assert code == "sf:INVALID_TYPE" and detail.tag == F + "InvalidSObjectFault"


def test_aggregate_query_values_are_typed(soap: Soap) -> None:
    create(soap, "Account", Name="X")
    record = soap.ok("<urn:query><urn:queryString>SELECT COUNT(Id) n FROM Account</urn:queryString></urn:query>"
                     ).find(f"{P}result/{P}records")
    assert record.findtext(S + "type") == "AggregateResult"
    assert record.find(S + "n").get(XSI + "type") == "xsd:int" and record.findtext(S + "n") == "1"


def test_search(soap: Soap) -> None:
    create(soap, "Account", Name="Findable Corp")
    result = soap.ok("<urn:search><urn:searchString>FIND {Findable} RETURNING Account(Name)</urn:searchString></urn:search>")
    record = result.find(f"{P}result/{P}searchRecords/{P}record")
    assert record.findtext(S + "type") == "Account" and record.findtext(S + "Name") == "Findable Corp"
    code, _, _ = soap.fault("<urn:search><urn:searchString> </urn:searchString></urn:search>")
    assert code == "sf:MALFORMED_SEARCH"


# -- describe --------------------------------------------------------------------------------------


def test_describe_calls(soap: Soap) -> None:
    result = soap.ok("<urn:describeGlobal/>").find(P + "result")
    assert result.findtext(P + "encoding") == "UTF-8"
    names = [s.findtext(P + "name") for s in result.findall(P + "sobjects")]
    assert "Account" in names and result.find(f"{P}sobjects/{P}urls") is None
    account = soap.ok("<urn:describeSObject><urn:sObjectType>Account</urn:sObjectType></urn:describeSObject>").find(P + "result")
    assert account.findtext(P + "name") == "Account"
    assert "Name" in [f.findtext(P + "name") for f in account.findall(P + "fields")]
    many = soap.ok("<urn:describeSObjects><urn:sObjectType>Account</urn:sObjectType>"
                   "<urn:sObjectType>Contact</urn:sObjectType></urn:describeSObjects>")
    assert [r.findtext(P + "name") for r in many] == ["Account", "Contact"]
    code, _, _ = soap.fault("<urn:describeSObject><urn:sObjectType>Nope</urn:sObjectType></urn:describeSObject>")
    assert code == "sf:INVALID_TYPE"


# -- org calls ---------------------------------------------------------------------------------------


def test_server_timestamp_user_info_updated_deleted(soap: Soap) -> None:
    stamp = soap.ok("<urn:getServerTimestamp/>").findtext(f"{P}result/{P}timestamp")
    assert stamp.endswith("Z") and stamp.startswith(str(dt.date.today().year))
    info = soap.ok("<urn:getUserInfo/>").find(P + "result")
    assert info.findtext(P + "userName") == USERNAME and info.findtext(P + "userId").startswith("005")
    account_id = create(soap, "Account", Name="Repl")
    gone_id = create(soap, "Account", Name="Gone")
    soap.ok(f"<urn:delete><urn:ids>{gone_id}</urn:ids></urn:delete>")
    now = dt.datetime.now(dt.timezone.utc)
    window = (f"<urn:sObjectType>Account</urn:sObjectType><urn:startDate>{(now - dt.timedelta(hours=1)).isoformat()}"
              f"</urn:startDate><urn:endDate>{(now + dt.timedelta(hours=1)).isoformat()}</urn:endDate>")
    updated = soap.ok(f"<urn:getUpdated>{window}</urn:getUpdated>").find(P + "result")
    assert account_id in [i.text for i in updated.findall(P + "ids")] and updated.findtext(P + "latestDateCovered")
    deleted = soap.ok(f"<urn:getDeleted>{window}</urn:getDeleted>").find(P + "result")
    assert [d.findtext(P + "id") for d in deleted.findall(P + "deletedRecords")] == [gone_id]
    code, _, _ = soap.fault("<urn:getUpdated><urn:sObjectType>Account</urn:sObjectType>"
                            "<urn:startDate>garbage</urn:startDate><urn:endDate>x</urn:endDate></urn:getUpdated>")
    assert code == "sf:INVALID_REPLICATION_DATE"


def test_set_and_reset_password(soap: Soap) -> None:
    user_id = soap.ok("<urn:getUserInfo/>").findtext(f"{P}result/{P}userId")
    reset = soap.ok(f"<urn:resetPassword><urn:userId>{user_id}</urn:userId></urn:resetPassword>")
    assert len(reset.findtext(f"{P}result/{P}password")) >= 8
    expired = soap.client.get(f"/services/data/v62.0/sobjects/User/{user_id}/password").json()
    assert expired == {"isExpired": True}
    soap.ok(f"<urn:setPassword><urn:userId>{user_id}</urn:userId><urn:password>Secret123</urn:password></urn:setPassword>")
    assert soap.client.get(f"/services/data/v62.0/sobjects/User/{user_id}/password").json() == {"isExpired": False}
    code, _, detail = soap.fault(f"<urn:setPassword><urn:userId>{user_id}</urn:userId><urn:password>short</urn:password></urn:setPassword>")
    assert code == "sf:INVALID_NEW_PASSWORD" and detail.tag == F + "InvalidNewPasswordFault"
    code, _, _ = soap.fault("<urn:resetPassword><urn:userId>001000000000000AAA</urn:userId></urn:resetPassword>")
    assert code == "sf:INVALID_ID_FIELD"


def test_send_email_records_email_messages(soap: Soap) -> None:
    message = ('<urn:messages xsi:type="urn:SingleEmailMessage"><urn:subject>Hi &amp; bye</urn:subject>'
               "<urn:plainTextBody>Body</urn:plainTextBody><urn:toAddresses>a@example.com</urn:toAddresses>"
               "<urn:toAddresses>b@example.com</urn:toAddresses></urn:messages>")
    empty = '<urn:messages xsi:type="urn:SingleEmailMessage"><urn:subject>none</urn:subject></urn:messages>'
    ok, bad = list(soap.ok(f"<urn:sendEmail>{message}{empty}</urn:sendEmail>"))
    assert ok.findtext(P + "success") == "true"
    assert bad.findtext(P + "success") == "false" and bad.findtext(f"{P}errors/{P}statusCode") == "REQUIRED_FIELD_MISSING"
    rows = soap.client.get("/services/data/v62.0/query",
                           params={"q": "SELECT Subject, ToAddress, Status FROM EmailMessage"}).json()["records"]
    assert [(r["Subject"], r["ToAddress"], r["Status"]) for r in rows] == [("Hi & bye", "a@example.com; b@example.com", "3")]
    draft = soap.client.post("/services/data/v62.0/sobjects/EmailMessage",
                             json={"Subject": "Draft", "Status": "5", "ToAddress": "c@example.com"}).json()["id"]
    sent = soap.ok(f"<urn:sendEmailMessage><urn:ids>{draft}</urn:ids><urn:ids>{draft}</urn:ids></urn:sendEmailMessage>")
    assert [r.findtext(P + "success") for r in sent] == ["true", "false"]


def test_process_submit_and_approve(soap: Soap) -> None:
    account_id = create(soap, "Account", Name="Approve me")
    submit = (f'<urn:process><urn:actions xsi:type="urn:ProcessSubmitRequest"><urn:comments>pls</urn:comments>'
              f"<urn:objectId>{account_id}</urn:objectId></urn:actions></urn:process>")
    result = soap.ok(submit).find(P + "result")
    assert result.findtext(P + "instanceStatus") == "Pending" and result.findtext(P + "entityId") == account_id
    workitem = result.findtext(P + "newWorkitemIds")
    again = soap.ok(submit).find(P + "result")
    assert again.findtext(P + "success") == "false" and again.findtext(f"{P}errors/{P}statusCode") == "ALREADY_IN_PROCESS"
    approve = (f'<urn:process><urn:actions xsi:type="urn:ProcessWorkitemRequest"><urn:action>Approve</urn:action>'
               f"<urn:workitemId>{workitem}</urn:workitemId></urn:actions></urn:process>")
    assert soap.ok(approve).findtext(f"{P}result/{P}instanceStatus") == "Approved"


# -- merge, convertLead, duplicates --------------------------------------------------------------------


def test_merge_reparents_children_and_deletes_others(soap: Soap) -> None:
    master = create(soap, "Account", Name="Master")
    other = create(soap, "Account", Name="Other")
    contact = create(soap, "Contact", LastName="Kid", AccountId=other)
    op = (f"<urn:merge><urn:request><urn:masterRecord><urn1:type>Account</urn1:type><urn1:Id>{master}</urn1:Id>"
          f"<Industry>Energy</Industry></urn:masterRecord><urn:recordToMergeIds>{other}</urn:recordToMergeIds>"
          "</urn:request></urn:merge>")
    result = soap.ok(op).find(P + "result")
    assert result.findtext(P + "success") == "true" and result.findtext(P + "mergedRecordIds") == other
    assert result.findtext(P + "updatedRelatedIds") == contact
    assert soap.client.get(f"/services/data/v62.0/sobjects/Contact/{contact}").json()["AccountId"] == master
    assert soap.client.get(f"/services/data/v62.0/sobjects/Account/{other}").status_code == 404
    assert soap.client.get(f"/services/data/v62.0/sobjects/Account/{master}").json()["Industry"] == "Energy"
    three = "".join(f"<urn:recordToMergeIds>{create(soap, 'Account', Name=str(i))}</urn:recordToMergeIds>" for i in range(3))
    op = (f"<urn:merge><urn:request><urn:masterRecord><urn1:type>Account</urn1:type><urn1:Id>{master}</urn1:Id>"
          f"</urn:masterRecord>{three}</urn:request></urn:merge>")
    assert soap.ok(op).findtext(f"{P}result/{P}success") == "false"


def test_convert_lead(soap: Soap) -> None:
    lead = create(soap, "Lead", LastName="Lee", Company="Leadco", Email="lee@example.com")
    op = (f"<urn:convertLead><urn:leadConverts><urn:convertedStatus>Closed - Converted</urn:convertedStatus>"
          f"<urn:leadId>{lead}</urn:leadId><urn:opportunityName>Deal</urn:opportunityName></urn:leadConverts></urn:convertLead>")
    result = soap.ok(op).find(P + "result")
    assert result.findtext(P + "success") == "true"
    account, contact, opp = (result.findtext(P + k) for k in ("accountId", "contactId", "opportunityId"))
    row = soap.client.get(f"/services/data/v62.0/sobjects/Lead/{lead}").json()
    assert row["IsConverted"] is True and row["ConvertedAccountId"] == account
    assert row["ConvertedContactId"] == contact and row["ConvertedOpportunityId"] == opp
    assert soap.client.get(f"/services/data/v62.0/sobjects/Account/{account}").json()["Name"] == "Leadco"
    assert soap.client.get(f"/services/data/v62.0/sobjects/Opportunity/{opp}").json()["Name"] == "Deal"
    again = soap.ok(op).find(P + "result")
    assert again.findtext(P + "success") == "false" and again.findtext(f"{P}errors/{P}statusCode") == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_find_duplicates(soap: Soap) -> None:
    first = create(soap, "Account", Name="Twin")
    second = create(soap, "Account", Name="twin")
    result = soap.ok(f"<urn:findDuplicates>{sobj('Account', Name='TWIN')}</urn:findDuplicates>").find(P + "result")
    matches = result.findall(f"{P}duplicateResults/{P}matchResults/{P}matchRecords/{P}record/{S}Id")
    assert sorted({m.text for m in matches}) == sorted([first, second])
    by_id = soap.ok(f"<urn:findDuplicatesByIds><urn:ids>{first}</urn:ids></urn:findDuplicatesByIds>").find(P + "result")
    assert {m.text for m in by_id.findall(f"{P}duplicateResults/{P}matchResults/{P}matchRecords/{P}record/{S}Id")} == {second}
    none = soap.ok(f"<urn:findDuplicates>{sobj('Opportunity', Name='x')}</urn:findDuplicates>").find(P + "result")
    assert none.find(P + "duplicateResults") is None and none.findtext(P + "success") == "true"
