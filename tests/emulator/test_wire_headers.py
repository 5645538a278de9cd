"""Response headers of every API, byte for byte, as Salesforce sends them (sources in
``emulator/wire.py``; what is not confirmed is listed in docs/emulator.md, "Wire details")."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sf_emulator_client import USERNAME, PASSWORD, V, EmulatorClient

NO_CACHE = "no-cache,must-revalidate,max-age=0,no-store,private"
REST_JSON = "application/json;charset=UTF-8"
LIMIT_INFO = re.compile(r"api-usage=\d+/\d+(; per-app-api-usage=\d+/\d+\(appName=[^)]+\))?")
BU = {"Pardot-Business-Unit-Id": "0Uv000000000001AAA"}
JOB_XML = ('<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
           "<operation>{op}</operation><object>Account</object><contentType>{ct}</contentType></jobInfo>")


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    return EmulatorClient(salesforce_emulator_reset)


def _rest_api_call(reply: requests.Response) -> None:
    assert reply.headers["Content-Type"] == REST_JSON
    assert reply.headers["Cache-Control"] == NO_CACHE
    assert LIMIT_INFO.fullmatch(reply.headers["Sforce-Limit-Info"]), reply.headers["Sforce-Limit-Info"]


def test_rest(client: EmulatorClient) -> None:
    created = client.post(f"{V}/sobjects/Account/", json={"Name": "Wire"})
    assert created.status_code == 201
    _rest_api_call(created)
    # the record's own URL, relative to the instance, usable as is
    assert created.headers["Location"] == f"{V}/sobjects/Account/{created.json()['id']}"
    assert client.get(created.headers["Location"]).json()["Name"] == "Wire"
    _rest_api_call(client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"}))
    missing = client.get(f"{V}/sobjects/Account/001000000000000AAA")
    assert missing.status_code == 404 and "Location" not in missing.headers
    _rest_api_call(missing)
    # PATCH/DELETE: 204 with no body and no Content-Type, still the standing headers
    updated = client.patch(created.headers["Location"], json={"Name": "Wire 2"})
    assert updated.status_code == 204 and "Content-Type" not in updated.headers
    assert updated.headers["Cache-Control"] == NO_CACHE and "Sforce-Limit-Info" in updated.headers
    # the Versions URI does not count toward the limit: no usage header (REST API Developer Guide)
    versions = client.get("/services/data/", auth=False)
    assert versions.headers["Content-Type"] == REST_JSON and "Sforce-Limit-Info" not in versions.headers
    expired = client.get(f"{V}/limits", token="not-a-session")
    assert expired.status_code == 401
    assert (expired.headers["Content-Type"], expired.headers["Cache-Control"], expired.headers["WWW-Authenticate"]) \
        == (REST_JSON, NO_CACHE, "Token")


def test_rest_composite_and_bulk_v2_and_analytics(client: EmulatorClient) -> None:
    composite = client.post(f"{V}/composite", json={"compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acct", "body": {"Name": "C"}}]})
    _rest_api_call(composite)
    [sub] = composite.json()["compositeResponse"]
    assert sub["httpHeaders"] == {"Location": f"{V}/sobjects/Account/{sub['body']['id']}"}
    job = client.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Account"})
    _rest_api_call(job)
    deadline = time.monotonic() + 10
    while client.get(f"{V}/jobs/query/{job.json()['id']}").json()["state"] != "JobComplete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    results = client.get(f"{V}/jobs/query/{job.json()['id']}/results")
    assert results.headers["Content-Type"] == "text/csv" and results.headers["Cache-Control"] == NO_CACHE
    _rest_api_call(client.get(f"{V}/wave/datasets"))


def test_oauth(client: EmulatorClient) -> None:
    token = client.password_login(USERNAME, PASSWORD)
    assert token.headers["Content-Type"] == REST_JSON and token.headers["Cache-Control"] == NO_CACHE
    assert "Sforce-Limit-Info" not in token.headers  # logging in is not an API call
    refused = client.token_request(grant_type="password", client_id="nobody")
    assert refused.status_code == 400
    assert (refused.headers["Content-Type"], refused.headers["Cache-Control"]) == (REST_JSON, NO_CACHE)


def test_soap(client: EmulatorClient) -> None:
    envelope = ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>'
                f"{client.token()}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body>"
                "<urn:getUserInfo/></soapenv:Body></soapenv:Envelope>")
    reply = requests.post(client.url + "/services/Soap/u/62.0", data=envelope, verify=client.verify, timeout=10,
                          headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "getUserInfo"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "text/xml; charset=utf-8" and reply.headers["Cache-Control"] == NO_CACHE
    fault = requests.post(client.url + "/services/Soap/u/62.0", data="<nope/>", verify=client.verify, timeout=10,
                          headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})
    assert fault.status_code == 500 and fault.headers["Content-Type"] == "text/xml; charset=utf-8"


def _bulk_v1(client: EmulatorClient, method: str, path: str, ctype: str = "application/xml; charset=UTF-8",
             data: str | None = None) -> requests.Response:
    return requests.request(method, f"{client.url}/services/async/62.0{path}", data=data, verify=client.verify,
                            headers={"X-SFDC-Session": client.token(), "Content-Type": ctype}, timeout=10)


def _wait(client: EmulatorClient, job: str, batch: str, ctype: str) -> None:
    deadline = time.monotonic() + 10
    while "Completed" not in _bulk_v1(client, "GET", f"/job/{job}/batch/{batch}", ctype).text:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(("content_type", "batch_type", "info_type", "rows"), [
    ("CSV", "text/csv", "application/xml", "Name\nW1\n"),
    ("XML", "application/xml", "application/xml",
     '<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload"><sObject><Name>W1</Name></sObject></sObjects>'),
    ("JSON", "application/json", "application/json", '[{"Name": "W1"}]'),
])
def test_bulk_v1(client: EmulatorClient, content_type: str, batch_type: str, info_type: str, rows: str) -> None:
    created = _bulk_v1(client, "POST", "/job", data=JOB_XML.format(op="insert", ct=content_type))
    assert created.status_code == 201
    # no job when the request came: the reply follows the request's Content-Type (XML here)
    assert created.headers["Content-Type"] == "application/xml"
    assert LIMIT_INFO.fullmatch(created.headers["Sforce-Limit-Info"])
    job = re.search(r"<id>(\w+)</id>", created.text).group(1)
    batch = _bulk_v1(client, "POST", f"/job/{job}/batch", batch_type, rows)
    assert batch.status_code == 201 and batch.headers["Content-Type"] == info_type
    batch_id = re.search(r'(?:<id>|"id": ")(\w+)', batch.text).group(1)
    _wait(client, job, batch_id, batch_type)
    # from here on the job decides, whatever the request says
    for path in (f"/job/{job}", f"/job/{job}/batch", f"/job/{job}/batch/{batch_id}"):
        assert _bulk_v1(client, "GET", path).headers["Content-Type"] == info_type, path
    assert _bulk_v1(client, "GET", f"/job/{job}/batch/{batch_id}/result").headers["Content-Type"] == batch_type
    assert _bulk_v1(client, "GET", f"/job/{job}/batch/{batch_id}/request").headers["Content-Type"] == batch_type
    missing = _bulk_v1(client, "GET", f"/job/{job}/batch/751000000000000AAA")
    assert missing.status_code == 400 and missing.headers["Content-Type"] == info_type

    query = _bulk_v1(client, "POST", "/job", data=JOB_XML.format(op="query", ct=content_type))
    query_job = re.search(r"<id>(\w+)</id>", query.text).group(1)
    qbatch = _bulk_v1(client, "POST", f"/job/{query_job}/batch", batch_type, "SELECT Name FROM Account")
    qbatch_id = re.search(r'(?:<id>|"id": ")(\w+)', qbatch.text).group(1)
    _wait(client, query_job, qbatch_id, batch_type)
    result_list = _bulk_v1(client, "GET", f"/job/{query_job}/batch/{qbatch_id}/result")
    assert result_list.headers["Content-Type"] == info_type
    result_id = re.search(r"752\w{15}", result_list.text).group(0)
    result = _bulk_v1(client, "GET", f"/job/{query_job}/batch/{qbatch_id}/result/{result_id}")
    assert result.headers["Content-Type"] == batch_type and "W1" in result.text


def test_bulk_v1_errors_before_a_job_follow_the_request(client: EmulatorClient) -> None:
    as_json = _bulk_v1(client, "GET", "/job/750000000000000AAA", "application/json")
    assert as_json.headers["Content-Type"] == "application/json" and as_json.json()["exceptionCode"] == "InvalidJob"
    as_xml = _bulk_v1(client, "GET", "/job/750000000000000AAA", "application/xml; charset=UTF-8")
    assert as_xml.headers["Content-Type"] == "application/xml" and "<exceptionCode>InvalidJob<" in as_xml.text
    bad_session = requests.get(f"{client.url}/services/async/62.0/job/750000000000000AAA", verify=client.verify,
                               headers={"X-SFDC-Session": "nope"}, timeout=10)
    assert bad_session.status_code == 400 and bad_session.headers["Content-Type"] == "application/xml"


def test_streaming_pardot_desk(client: EmulatorClient) -> None:
    # Not confirmed from Salesforce's documentation (docs/emulator.md lists them): pinned as sent.
    handshake = requests.post(f"{client.url}/cometd/62.0", json=[{
        "channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}],
        headers={"Authorization": f"Bearer {client.token()}"}, verify=client.verify, timeout=10)
    assert handshake.headers["Content-Type"] == REST_JSON and "Cache-Control" not in handshake.headers
    prospects = client.get("/api/v5/objects/prospects?fields=id", headers=BU)
    assert prospects.status_code == 200 and prospects.headers["Content-Type"] == REST_JSON
    cases = requests.get(f"{client.url}/api/v2/cases", auth=(USERNAME, PASSWORD), verify=client.verify, timeout=10)
    assert cases.headers["Content-Type"] == "application/json; charset=utf-8" and cases.headers["ETag"]
    assert "Sforce-Limit-Info" not in cases.headers and "Cache-Control" not in cases.headers
