"""Bulk API 2.0 over loopback with plain ``requests``: job shapes, states over time, results,
partial failures, locator paging, gzip, faults, session expiry."""

from __future__ import annotations

import gzip
import time

import pytest
import requests
from sf_emulator_client import V, EmulatorClient

INGEST = V + "/jobs/ingest"
QUERY = V + "/jobs/query"


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    c = EmulatorClient(salesforce_emulator_reset)
    c.token()
    return c


def _put(client: EmulatorClient, job_id: str, body: bytes | str) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return client.request("PUT", f"{INGEST}/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})


def _wait(client: EmulatorClient, path: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get(path).json()
        if info["state"] in ("JobComplete", "Failed", "Aborted") or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def _ingest(client: EmulatorClient, csv_text: str, operation: str = "insert", **options) -> dict:
    job = client.post(INGEST, json={"object": "Account", "operation": operation, **options}).json()
    assert _put(client, job["id"], csv_text).status_code == 201
    assert client.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"}).status_code == 200
    return _wait(client, f"{INGEST}/{job['id']}")


def test_create_ingest_job_shape(client: EmulatorClient) -> None:
    reply = client.post(INGEST, json={"object": "Account", "operation": "insert", "lineEnding": "CRLF",
                                      "columnDelimiter": "PIPE"})
    assert reply.status_code == 200
    job = reply.json()
    assert list(job) == ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                         "concurrencyMode", "contentType", "apiVersion", "contentUrl", "lineEnding",
                         "columnDelimiter"]
    assert job["id"].startswith("750") and len(job["id"]) == 18
    assert job["state"] == "Open" and job["apiVersion"] == 62.0 and job["concurrencyMode"] == "Parallel"
    assert job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    assert (job["lineEnding"], job["columnDelimiter"]) == ("CRLF", "PIPE")


@pytest.mark.parametrize("body, fragment", [
    ({"object": "Account", "operation": "merge"}, "Invalid operation"),
    ({"object": "Nope__c", "operation": "insert"}, "Unable to find object"),
    ({"object": "Account", "operation": "insert", "columnDelimiter": "DOT"}, "Invalid column delimiter"),
    ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "Invalid line ending"),
    ({"object": "Account", "operation": "upsert"}, "External ID"),
    ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}, "not an External Id"),
])
def test_create_ingest_job_rejects_bad_input(client: EmulatorClient, body: dict, fragment: str) -> None:
    reply = client.post(INGEST, json=body)
    assert reply.status_code == 400
    assert reply.json()[0]["errorCode"] == "INVALIDJOB" and fragment in reply.json()[0]["message"]


def test_insert_with_partial_failures_and_results(client: EmulatorClient) -> None:
    info = _ingest(client, '\ufeffName,Industry\nAcme,Tech\n,Energy\n"Quo""ted, Inc",\n')
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 1)
    for key in ("retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"):
        assert isinstance(info[key], int)
    ok = client.get(f"{INGEST}/{info['id']}/successfulResults")
    assert ok.headers["Content-Type"].startswith("text/csv")
    lines = ok.text.splitlines()
    assert lines[0] == '"sf__Id","sf__Created",Name,Industry'
    assert lines[1].endswith(',"true","Acme","Tech"') and lines[1].startswith('"001')
    assert lines[2].endswith(',"true","Quo""ted, Inc",""')
    failed = client.get(f"{INGEST}/{info['id']}/failedResults").text.splitlines()
    assert failed == ['"sf__Id","sf__Error",Name,Industry',
                      '"","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --","","Energy"']
    assert client.get(f"{INGEST}/{info['id']}/unprocessedrecords").text == "Name,Industry\n"
    names = client.get(V + "/query", params={"q": "SELECT Name FROM Account ORDER BY Name"}).json()["records"]
    assert [r["Name"] for r in names] == ["Acme", 'Quo"ted, Inc']


def test_one_upload_per_job_delimiter_and_crlf(client: EmulatorClient) -> None:
    job = client.post(INGEST, json={"object": "Account", "operation": "insert", "columnDelimiter": "SEMICOLON",
                                    "lineEnding": "CRLF"}).json()
    assert _put(client, job["id"], "Name;NumberOfEmployees\r\nA;1\r\nB;x\r\n").status_code == 201
    second = _put(client, job["id"], "Name;NumberOfEmployees\r\nC;2\r\n")
    assert second.status_code == 400
    assert second.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    assert "Found multiple contents for job" in second.json()[0]["message"]
    client.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"})
    info = _wait(client, f"{INGEST}/{job['id']}")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    ok = client.get(f"{INGEST}/{job['id']}/successfulResults").text
    assert ok.startswith('"sf__Id";"sf__Created";Name;NumberOfEmployees\r\n')
    failed = client.get(f"{INGEST}/{job['id']}/failedResults").text
    assert failed.count("\r\n") == 2 and '"B";"x"' in failed


def test_unknown_column_fails_the_job(client: EmulatorClient) -> None:
    info = _ingest(client, "Name,Foo\nA,1\n")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Foo"
    assert client.get(f"{INGEST}/{info['id']}/unprocessedrecords").text.splitlines() == ["Name,Foo", '"A","1"']


def test_update_upsert_delete_hard_delete(custom_emulator) -> None:
    client = EmulatorClient(custom_emulator)
    ingest = lambda text, op, **kw: _ingest(client, text, op, **kw)  # noqa: E731
    first = ingest("Name,External_Id__c\nA,ext-1\nB,ext-2\n", "upsert", externalIdFieldName="External_Id__c")
    assert (first["numberRecordsProcessed"], first["numberRecordsFailed"]) == (2, 0)
    second = ingest("Name,External_Id__c\nA2,ext-1\nC,ext-3\nD,ext-3\n,\n", "upsert",
                    externalIdFieldName="External_Id__c")
    ok = client.get(f"{INGEST}/{second['id']}/successfulResults").text.splitlines()[1:]
    assert [line.split(",")[1] for line in ok] == ['"false"']
    failed = client.get(f"{INGEST}/{second['id']}/failedResults").text
    assert failed.count("DUPLICATE_EXTERNAL_ID") == 2 and "MISSING_ARGUMENT" in failed
    ids = [r["Id"] for r in client.get(V + "/query", params={"q": "SELECT Id FROM Account ORDER BY Name"}).json()["records"]]
    upd = ingest(f"Id,Industry\n{ids[0]},Energy\n001000000000000AAA,Energy\n", "update")
    assert upd["numberRecordsFailed"] == 1
    # a relationship column resolves the parent by its external id
    job = client.post(INGEST, json={"object": "Contact", "operation": "insert"}).json()
    _put(client, job["id"], "LastName,Account.External_Id__c\nSmith,ext-2\nJones,nope\n")
    client.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"})
    contacts = _wait(client, f"{INGEST}/{job['id']}")
    assert contacts["numberRecordsFailed"] == 1
    assert "Foreign key external ID: nope not found" in client.get(f"{INGEST}/{job['id']}/failedResults").text
    dele = ingest(f"Id\n{ids[0]}\n{ids[0]}\n", "delete")
    assert (dele["numberRecordsProcessed"], dele["numberRecordsFailed"]) == (2, 1)
    hard = ingest(f"Id\n{ids[1]}\n", "hardDelete")
    assert hard["numberRecordsFailed"] == 0
    gone = client.get(V + "/queryAll", params={"q": f"SELECT Id FROM Account WHERE Id = '{ids[1]}'"}).json()
    assert gone["totalSize"] == 0


def test_states_over_time_abort_and_delete(client: EmulatorClient) -> None:
    client.admin("POST", "bulk", {"min_in_progress_seconds": 0.4})
    job = client.post(INGEST, json={"object": "Account", "operation": "insert"}).json()
    assert client.delete(f"{INGEST}/{job['id']}").status_code == 400  # not terminal
    _put(client, job["id"], "Name\nA\n")
    client.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"})
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = client.get(f"{INGEST}/{job['id']}").json()["state"]
        seen.add(state)
        if state == "JobComplete":
            break
        time.sleep(0.03)
    assert {"InProgress", "JobComplete"} <= seen
    assert _put(client, job["id"], "Name\nB\n").status_code == 409  # no uploads once closed
    bad = client.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"})
    assert bad.status_code == 409
    assert client.delete(f"{INGEST}/{job['id']}").status_code == 204
    assert client.get(f"{INGEST}/{job['id']}").status_code == 404
    other = client.post(INGEST, json={"object": "Account", "operation": "insert"}).json()
    _put(client, other["id"], "Name\nX\n")
    aborted = client.patch(f"{INGEST}/{other['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert client.get(f"{INGEST}/{other['id']}/unprocessedrecords").text == 'Name\n"X"\n'
    assert client.patch(f"{INGEST}/{other['id']}", json={"state": "Bogus"}).status_code == 400


def test_fail_next_job_knob(client: EmulatorClient) -> None:
    client.admin("POST", "bulk", {"fail_next_job": "InternalServerError : retries exhausted"})
    info = _ingest(client, "Name\nA\n")
    assert info["state"] == "Failed" and info["errorMessage"] == "InternalServerError : retries exhausted"
    assert _ingest(client, "Name\nB\n")["state"] == "JobComplete"


def test_list_jobs(client: EmulatorClient) -> None:
    for _ in range(2):
        client.post(INGEST, json={"object": "Account", "operation": "insert"})
    listing = client.get(INGEST).json()
    assert listing["done"] is True and listing["nextRecordsUrl"] is None
    assert len(listing["records"]) == 2 and listing["records"][0]["jobType"] == "V2Ingest"
    assert client.get(INGEST, params={"jobType": "Classic"}).json()["records"] == []


def test_upload_errors(client: EmulatorClient) -> None:
    job = client.post(INGEST, json={"object": "Account", "operation": "insert"}).json()
    assert _put(client, job["id"], b"").status_code == 400
    assert _put(client, "750000000000000AAA", "Name\nA\n").status_code == 404
    too_big = client.request("PUT", f"{INGEST}/{job['id']}/batches", data=b"x" * (113 * 1024 * 1024),
                             headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 413


def _query(client: EmulatorClient, soql: str, **options) -> dict:
    reply = client.post(QUERY, json={"operation": "query", "query": soql, **options})
    assert reply.status_code == 200, reply.text
    return _wait(client, f"{QUERY}/{reply.json()['id']}")


def test_query_paging_with_locator_and_null(client: EmulatorClient) -> None:
    _ingest(client, "Name\n" + "".join(f"Acct {i:02d}\n" for i in range(5)))
    info = _query(client, "SELECT Id, Name, Owner.Name FROM Account")
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 5
    assert info["jobType"] == "V2Query"
    pages, locator = [], None
    while True:
        params = {"maxRecords": 2, **({"locator": locator} if locator else {})}
        page = client.get(f"{QUERY}/{info['id']}/results", params=params)
        assert page.status_code == 200
        lines = page.text.splitlines()
        assert lines[0] == '"Id","Name","Owner.Name"'  # header on every page
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(lines) - 1
        pages.append(lines[1:])
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert pages[0][0].endswith('"Acct 00","Emulator Admin"') or "Acct" in pages[0][0]
    bad = client.get(f"{QUERY}/{info['id']}/results", params={"locator": "!!"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDLOCATOR"


def test_query_results_gzip_and_delimiter(client: EmulatorClient) -> None:
    _ingest(client, "Name\nA\n")
    info = _query(client, "SELECT Name FROM Account", columnDelimiter="TAB", lineEnding="CRLF")
    url = client.url + f"{QUERY}/{info['id']}/results"
    raw = requests.get(url, headers={"Authorization": f"Bearer {client.token()}", "Accept-Encoding": "gzip"},
                       verify=client.verify, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()) == b'"Name"\r\n"A"\r\n'
    plain = requests.get(url, headers={"Authorization": f"Bearer {client.token()}", "Accept-Encoding": "identity"},
                         verify=client.verify)
    assert "Content-Encoding" not in plain.headers and plain.text == '"Name"\r\n"A"\r\n'


def test_query_errors_and_query_all(client: EmulatorClient) -> None:
    bad = client.post(QUERY, json={"operation": "query", "query": "SELECT Nope FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    agg = client.post(QUERY, json={"operation": "query", "query": "SELECT COUNT() FROM Account"})
    assert agg.status_code == 400
    assert client.post(QUERY, json={"operation": "select", "query": "SELECT Id FROM Account"}).status_code == 400
    done = _ingest(client, "Name\nGone\n")
    record_id = client.get(f"{INGEST}/{done['id']}/successfulResults").text.splitlines()[1].split(",")[0].strip('"')
    client.delete(V + f"/sobjects/Account/{record_id}")
    assert _query(client, "SELECT Id FROM Account")["numberRecordsProcessed"] == 0
    all_info = client.post(QUERY, json={"operation": "queryAll", "query": "SELECT Id, IsDeleted FROM Account"}).json()
    assert _wait(client, f"{QUERY}/{all_info['id']}")["numberRecordsProcessed"] == 1
    client.admin("POST", "bulk", {"min_in_progress_seconds": 1})
    slow = client.post(QUERY, json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    assert client.get(f"{QUERY}/{slow['id']}/results").status_code == 409
    assert client.patch(f"{QUERY}/{slow['id']}", json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert client.delete(f"{QUERY}/{slow['id']}").status_code == 204
    assert client.get(QUERY).json()["records"][0]["jobType"] == "V2Query"


def test_session_expiry_and_faults(client: EmulatorClient) -> None:
    reply = client.get(INGEST, token="not-a-token")
    assert reply.status_code == 401 and reply.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    client.admin("POST", "faults", {"status": 503, "count": 1, "path_prefix": V + "/jobs"})
    assert client.get(INGEST).status_code == 503
    assert client.get(INGEST).status_code == 200


def test_reset_forgets_jobs(client: EmulatorClient) -> None:
    client.post(INGEST, json={"object": "Account", "operation": "insert"})
    client.admin("POST", "reset", {})
    assert client.get(INGEST).json()["records"] == []


def test_values_salesforce_refuses_fail_their_rows(client: EmulatorClient) -> None:
    """Over Bulk 2.0's 131,072 characters per field, or holding NUL: the row fails, the rest loads."""
    long = "x" * 131_073
    info = _ingest(client, f'Name,Description\nKept,ok\nToo long,{long}\nNul,"a\x00b"\n')
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 2)
    failed = client.get(f"{INGEST}/{info['id']}/failedResults").text.splitlines()[1:]
    errors = {line.split('","')[2]: line.split('","')[1] for line in failed}
    assert errors["Too long"] == ("STRING_TOO_LONG:Description: data value too large: 131073 characters "
                                  "(max length=131072):Description --")
    assert errors["Nul"] == ("FIELD_INTEGRITY_EXCEPTION:Description: value contains the invalid character NUL "
                             "(U+0000) at position 2:Description --")
    names = client.get(V + "/query", params={"q": "SELECT Name FROM Account"}).json()["records"]
    assert [r["Name"] for r in names] == ["Kept"]
