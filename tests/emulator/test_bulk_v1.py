"""Bulk API 1.0 over loopback with plain ``requests``: XML/JSON jobs, batches, results, limits,
PK chunking, error shapes, unsafe XML, session expiry."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from sf_emulator_client import EmulatorClient

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
A = "/services/async/62.0"


class V1:
    def __init__(self, client: EmulatorClient) -> None:
        self.client = client
        self.base = client.url + A

    def call(self, method: str, path: str, *, data=None, ctype="application/xml", session=None, **headers):
        headers = {"X-SFDC-Session": session or self.client.token(), "Content-Type": ctype, **headers}
        return requests.request(method, self.base + path, data=data, headers=headers, verify=self.client.verify,
                                timeout=30)

    def job(self, operation: str, sobject: str = "Account", content_type: str = "CSV", **headers) -> str:
        body = (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/'
                f'dataload"><operation>{operation}</operation><object>{sobject}</object>'
                f"<contentType>{content_type}</contentType></jobInfo>")
        reply = self.call("POST", "/job", data=body, **headers)
        assert reply.status_code == 201, reply.text
        return ET.fromstring(reply.content).find(NS + "id").text

    def wait_batch(self, job_id: str, batch_id: str, ctype: str = "application/xml") -> dict:
        deadline = time.monotonic() + 10
        while True:
            info = self.info(self.call("GET", f"/job/{job_id}/batch/{batch_id}", ctype=ctype))
            if info["state"] in ("Completed", "Failed", "NotProcessed") or time.monotonic() > deadline:
                return info
            time.sleep(0.02)

    @staticmethod
    def info(reply: requests.Response) -> dict:
        if reply.headers["Content-Type"].startswith("application/json"):
            return reply.json()
        return {child.tag.replace(NS, ""): child.text for child in ET.fromstring(reply.content)}


@pytest.fixture
def v1(salesforce_emulator_reset) -> V1:
    return V1(EmulatorClient(salesforce_emulator_reset))


def _error(reply: requests.Response) -> tuple[str, str]:
    root = ET.fromstring(reply.content)
    assert root.tag == NS + "error"
    return root.find(NS + "exceptionCode").text, root.find(NS + "exceptionMessage").text


def test_csv_insert_job_lifecycle(v1: V1) -> None:
    job_id = v1.job("insert")
    info = v1.info(v1.call("GET", f"/job/{job_id}"))
    assert info["state"] == "Open" and info["contentType"] == "CSV" and info["numberBatchesTotal"] == "0"
    reply = v1.call("POST", f"/job/{job_id}/batch", data="Name,Industry\nAcme,Tech\n,Energy\n", ctype="text/csv")
    assert reply.status_code == 201
    batch = v1.info(reply)
    assert batch["id"].startswith("751") and batch["jobId"] == job_id and batch["state"] == "Queued"
    done = v1.wait_batch(job_id, batch["id"])
    assert done["state"] == "Completed"
    assert (done["numberRecordsProcessed"], done["numberRecordsFailed"]) == ("2", "1")
    result = v1.call("GET", f"/job/{job_id}/batch/{batch['id']}/result").text.splitlines()
    assert result[0] == '"Id","Success","Created","Error"'
    assert re.fullmatch(r'"001\w{15}","true","true",""', result[1])
    assert result[2] == '"","false","false","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"'
    request = v1.call("GET", f"/job/{job_id}/batch/{batch['id']}/request")
    assert request.text == "Name,Industry\nAcme,Tech\n,Energy\n"
    listing = ET.fromstring(v1.call("GET", f"/job/{job_id}/batch").content)
    assert listing.tag == NS + "batchInfoList" and len(listing) == 1
    closed = v1.info(v1.call("POST", f"/job/{job_id}", data='<jobInfo xmlns="http://www.force.com/2009/06/'
                                                             'asyncapi/dataload"><state>Closed</state></jobInfo>'))
    assert closed["state"] == "Closed" and closed["numberBatchesCompleted"] == "1"
    again = v1.call("POST", f"/job/{job_id}/batch", data="Name\nB\n", ctype="text/csv")
    assert again.status_code == 400 and _error(again)[0] == "InvalidJobState"
    # a Closed job can still be aborted; an Aborted one cannot be closed again
    aborted = v1.info(v1.call("POST", f"/job/{job_id}", data='<jobInfo xmlns="http://www.force.com/2009/06/'
                                                              'asyncapi/dataload"><state>Aborted</state></jobInfo>'))
    assert aborted["state"] == "Aborted"
    reopen = v1.call("POST", f"/job/{job_id}", data='<jobInfo xmlns="http://www.force.com/2009/06/'
                                                     'asyncapi/dataload"><state>Closed</state></jobInfo>')
    assert reopen.status_code == 400 and _error(reopen)[0] == "InvalidJobState"


def test_json_job_results_and_errors(v1: V1) -> None:
    reply = v1.call("POST", "/job", data='{"operation": "insert", "object": "Account", "contentType": "JSON"}',
                    ctype="application/json")
    assert reply.status_code == 201 and reply.json()["contentType"] == "JSON"
    job_id = reply.json()["id"]
    batch = v1.call("POST", f"/job/{job_id}/batch", data='[{"Name": "A", "NumberOfEmployees": 5}, {"Name": null}]',
                    ctype="application/json").json()
    v1.wait_batch(job_id, batch["id"], "application/json")
    results = v1.call("GET", f"/job/{job_id}/batch/{batch['id']}/result", ctype="application/json").json()
    assert results[0]["success"] is True and results[0]["created"] is True and results[0]["errors"] == []
    assert results[1]["success"] is False and results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    missing = v1.call("GET", "/job/750000000000000AAA", ctype="application/json")
    assert missing.status_code == 400
    assert missing.json() == {"exceptionCode": "InvalidJob", "exceptionMessage": "Unable to find job: 750000000000000AAA"}
    bad = v1.call("POST", f"/job/{job_id}/batch", data="{nope", ctype="application/json")
    assert bad.status_code == 400 and bad.json()["exceptionCode"] == "InvalidBatch"


def test_xml_batch_and_unsafe_xml_refused(v1: V1) -> None:
    job_id = v1.job("insert", content_type="XML")
    body = ('<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload"><sObject><Name>X &amp; Co</Name>'
            "</sObject></sObjects>")
    batch = v1.info(v1.call("POST", f"/job/{job_id}/batch", data=body))
    assert v1.wait_batch(job_id, batch["id"])["state"] == "Completed"
    results = ET.fromstring(v1.call("GET", f"/job/{job_id}/batch/{batch['id']}/result").content)
    assert results[0].find(NS + "success").text == "true"
    bomb = ('<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<sObjects><sObject><Name>&b;</Name></sObject></sObjects>")
    refused = v1.call("POST", f"/job/{job_id}/batch", data=bomb)
    assert refused.status_code == 400 and _error(refused)[0] == "InvalidXML"
    job_bomb = v1.call("POST", "/job", data='<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><jobInfo/>')
    assert job_bomb.status_code == 400 and _error(job_bomb)[0] == "InvalidXML"


def test_batch_limits(v1: V1) -> None:
    job_id = v1.job("insert")
    rows = v1.info(v1.call("POST", f"/job/{job_id}/batch", ctype="text/csv",
                           data="Name\n" + "".join(f"n{i}\n" for i in range(10_001))))
    failed = v1.wait_batch(job_id, rows["id"])
    assert failed["state"] == "Failed"
    assert failed["stateMessage"] == ("InvalidBatch : Exceeded number of records : 10001. "
                                      "Number of records should be less than or equal to 10000")
    big = v1.info(v1.call("POST", f"/job/{job_id}/batch", ctype="text/csv",
                          data="Name,Description\n" + "a,"+ "x" * 10_000_001 + "\n"))
    assert big["state"] == "Failed" and "Exceeded max size limit of 10000000" in big["stateMessage"]
    fine = v1.info(v1.call("POST", f"/job/{job_id}/batch", ctype="text/csv",
                           data="Name\n" + "".join(f"n{i}\n" for i in range(10_000))))
    assert v1.wait_batch(job_id, fine["id"])["state"] == "Completed"


def test_query_with_pk_chunking(v1: V1) -> None:
    load = v1.job("insert")
    batch = v1.info(v1.call("POST", f"/job/{load}/batch", ctype="text/csv",
                            data="Name\n" + "".join(f"A{i}\n" for i in range(5))))
    v1.wait_batch(load, batch["id"])
    job_id = v1.job("query", **{"Sforce-Enable-PKChunking": "chunkSize=2"})
    original = v1.info(v1.call("POST", f"/job/{job_id}/batch", data="SELECT Id, Name FROM Account", ctype="text/csv"))
    assert v1.wait_batch(job_id, original["id"])["state"] == "NotProcessed"
    deadline = time.monotonic() + 10
    while True:
        infos = [{c.tag.replace(NS, ""): c.text for c in b}
                 for b in ET.fromstring(v1.call("GET", f"/job/{job_id}/batch").content)]
        if len(infos) == 4 and all(i["state"] == "Completed" for i in infos[1:]) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [i["numberRecordsProcessed"] for i in infos[1:]] == ["2", "2", "1"]
    names = []
    for info in infos[1:]:
        result_list = ET.fromstring(v1.call("GET", f"/job/{job_id}/batch/{info['id']}/result").content)
        assert result_list.tag == NS + "result-list"
        rid = result_list[0].text
        assert rid.startswith("752")
        csv_text = v1.call("GET", f"/job/{job_id}/batch/{info['id']}/result/{rid}").text.splitlines()
        assert csv_text[0] == '"Id","Name"'
        names += [line.split(",")[1] for line in csv_text[1:]]
    assert sorted(names) == [f'"A{i}"' for i in range(5)]
    assert v1.call("POST", "/job", data='<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
                   "<operation>insert</operation><object>Account</object></jobInfo>",
                   **{"Sforce-Enable-PKChunking": "TRUE"}).status_code == 400


def test_bad_query_batch_fails(v1: V1) -> None:
    job_id = v1.job("query")
    batch = v1.info(v1.call("POST", f"/job/{job_id}/batch", data="SELECT Nope FROM Account", ctype="text/csv"))
    failed = v1.wait_batch(job_id, batch["id"])
    assert failed["state"] == "Failed" and failed["stateMessage"].startswith("InvalidBatch : ")
    not_done = v1.call("GET", f"/job/{job_id}/batch/{batch['id']}/result")
    assert _error(not_done)[0] == "InvalidBatch"


def test_errors_sessions_and_faults(v1: V1) -> None:
    expired = v1.call("GET", "/job/750000000000000AAA", session="nope")
    assert expired.status_code == 400
    assert _error(expired) == ("InvalidSessionId", "Invalid session id")
    assert _error(v1.call("POST", "/job", data="<jobInfo><operation>merge</operation></jobInfo>"))[0] == "InvalidJob"
    assert _error(v1.call("GET", "/job/750000000000000AAA"))[0] == "InvalidJob"
    job_id = v1.job("insert")
    assert _error(v1.call("GET", f"/job/{job_id}/batch/751000000000000AAA"))[0] == "InvalidBatch"
    v1.client.admin("POST", "faults", {"status": 503, "count": 1, "path_prefix": "/services/async"})
    fault = v1.call("GET", f"/job/{job_id}")
    assert fault.status_code == 503 and _error(fault)[0] == "SERVER_UNAVAILABLE"
    v1.client.admin("POST", "bulk", {"fail_next_job": "InvalidBatch : injected"})
    batch = v1.info(v1.call("POST", f"/job/{job_id}/batch", data="Name\nA\n", ctype="text/csv"))
    assert v1.wait_batch(job_id, batch["id"])["stateMessage"] == "InvalidBatch : injected"
    aborted = v1.info(v1.call("POST", f"/job/{job_id}", data='<jobInfo xmlns="http://www.force.com/2009/06/'
                                                              'asyncapi/dataload"><state>Aborted</state></jobInfo>'))
    assert aborted["state"] == "Aborted"


def test_reply_format_follows_salesforce_rule(v1: V1) -> None:
    # Created with an XML body: XML answers the create (no job yet), the JSON job answers JSON after.
    job_id = v1.job("insert", content_type="JSON")
    info = v1.call("GET", f"/job/{job_id}")
    assert info.headers["Content-Type"] == "application/json" and info.json()["contentType"] == "JSON"
    # an XML state change to a JSON job is read as XML (salesforce-bulk closes jobs this way)
    closed = v1.call("POST", f"/job/{job_id}", data='<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
                                                    "<state>Closed</state></jobInfo>")
    assert closed.status_code == 200 and closed.json()["state"] == "Closed"
    # and a JSON one to an XML job as JSON, answered in XML
    xml_job = v1.job("insert", content_type="XML")
    aborted = v1.call("POST", f"/job/{xml_job}", data='{"state": "Aborted"}', ctype="application/json")
    assert aborted.headers["Content-Type"] == "application/xml" and v1.info(aborted)["state"] == "Aborted"
    # CSV data with JSON control: the create answers JSON, the CSV job XML from then on
    created = v1.call("POST", "/job", data='{"operation": "insert", "object": "Account", "contentType": "CSV"}',
                      ctype="application/json")
    assert created.status_code == 201 and created.headers["Content-Type"] == "application/json"
    csv_job = created.json()["id"]
    batch = v1.call("POST", f"/job/{csv_job}/batch", data="Name\nA\n", ctype="text/csv")
    assert batch.headers["Content-Type"] == "application/xml"
    assert v1.wait_batch(csv_job, v1.info(batch)["id"], "application/json")["state"] == "Completed"


@pytest.mark.parametrize(("content_type", "sent_as", "body"), [
    ("CSV", "application/json", '[{"Name": "A"}]'),
    ("JSON", "text/csv", "Name\nA\n"),
    ("XML", "text/csv", "Name\nA\n"),
    ("CSV", "application/xml", "<sObjects/>"),
])
def test_batch_in_another_format_refused(v1: V1, content_type: str, sent_as: str, body: str) -> None:
    job_id = v1.job("insert", content_type=content_type)
    refused = v1.call("POST", f"/job/{job_id}/batch", data=body, ctype=sent_as)
    assert refused.status_code == 400
    code, message = (v1.info(refused)[k] for k in ("exceptionCode", "exceptionMessage")) \
        if content_type == "JSON" else _error(refused)
    assert code == "InvalidBatch" and sent_as in message and content_type in message
    assert v1.info(v1.call("GET", f"/job/{job_id}"))["numberBatchesTotal"] in ("0", 0)  # nothing was queued
