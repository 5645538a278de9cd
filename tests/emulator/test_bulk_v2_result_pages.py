"""Bulk API 2.0 "Get Parallel Results for a Query Job" (``/jobs/query/{id}/resultPages``, API
58.0+) over loopback with plain ``requests``: the response shape, page URLs that are exact slices
fetched in any order, gzip, and the errors shared with ``/results``."""

from __future__ import annotations

import gzip

import requests
from sf_emulator_client import V, EmulatorClient
from test_bulk_v2 import QUERY, _wait, client  # noqa: F401  (the client fixture)

from airflow_provider_salesforce_suite.emulator.bulk import service


def _accounts(client: EmulatorClient, n: int) -> None:
    reply = client.post(V + "/composite/sobjects", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Account"}, "Name": f"Acct {i:03d}"} for i in range(n)]})
    assert reply.status_code == 200 and all(r["success"] for r in reply.json())


def _query(client: EmulatorClient, soql: str = "SELECT Name FROM Account ORDER BY Name", version: str = V) -> str:
    reply = client.post(version + "/jobs/query", json={"operation": "query", "query": soql})
    assert reply.status_code == 200, reply.text
    return _wait(client, f"{version}/jobs/query/{reply.json()['id']}")["id"]


def _rows(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    lines = reply.text.splitlines()
    assert lines[0] == '"Name"'  # the header on every page, as /results pages have it
    assert int(reply.headers["Sforce-NumberOfRecords"]) == len(lines) - 1
    return lines[1:]


def test_result_pages_shape_and_next_records_url(client: EmulatorClient) -> None:
    _accounts(client, 23)
    job_id = _query(client)
    first = client.get(f"{QUERY}/{job_id}/resultPages", params={"maxRecords": 4}, headers={"Accept": "application/json"})
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("application/json")
    body = first.json()
    assert list(body) == ["resultPages", "nextRecordsUrl", "done"] and body["done"] is False
    assert len(body["resultPages"]) == 5 and all(list(p) == ["resultUrl"] for p in body["resultPages"])
    assert all(p["resultUrl"].startswith(f"{QUERY}/{job_id}/results?locator=") for p in body["resultPages"])
    assert body["nextRecordsUrl"].startswith(f"{QUERY}/{job_id}/resultPages?locator=")
    last = client.get(body["nextRecordsUrl"]).json()
    assert len(last["resultPages"]) == 1 and last["nextRecordsUrl"] is None and last["done"] is True
    urls = [p["resultUrl"] for p in body["resultPages"] + last["resultPages"]]
    assert len(set(urls)) == 6
    # Any order, any number of times: each URL is the same slice of 4 rows (the last one 3).
    pages = {url: _rows(client.get(url)) for url in reversed(urls)}
    assert all(_rows(client.get(url)) == pages[url] for url in urls)
    assert [len(pages[url]) for url in urls] == [4, 4, 4, 4, 4, 3]
    assert [row for url in urls for row in pages[url]] == [f'"Acct {i:03d}"' for i in range(23)]
    sequential = client.get(f"{QUERY}/{job_id}/results")
    assert [row for url in urls for row in pages[url]] == _rows(sequential)
    assert client.get(urls[-1]).headers["Sforce-Locator"] == "null"
    # A page's Sforce-Locator is an ordinary one: following it reads the rest sequentially.
    rest = client.get(f"{QUERY}/{job_id}/results", params={"locator": client.get(urls[1]).headers["Sforce-Locator"]})
    assert _rows(rest) == [f'"Acct {i:03d}"' for i in range(8, 23)]


def test_page_size_without_max_records_and_an_empty_job(client: EmulatorClient, monkeypatch) -> None:
    _accounts(client, 7)
    job_id = _query(client)
    whole = client.get(f"{QUERY}/{job_id}/resultPages").json()
    assert len(whole["resultPages"]) == 1 and whole["done"] is True
    assert len(_rows(client.get(whole["resultPages"][0]["resultUrl"]))) == 7
    monkeypatch.setattr(service, "RESULT_PAGE_RECORDS", 3)  # the emulator's own page size
    small = client.get(f"{QUERY}/{job_id}/resultPages").json()
    assert [len(_rows(client.get(p["resultUrl"]))) for p in small["resultPages"]] == [3, 3, 1]
    assert "maxRecords" not in (small["nextRecordsUrl"] or "") and small["done"] is True
    empty = _query(client, "SELECT Name FROM Account WHERE Name = 'nobody'")
    pages = client.get(f"{QUERY}/{empty}/resultPages").json()
    assert len(pages["resultPages"]) == 1 and pages["done"] is True  # one header-only page
    assert _rows(client.get(pages["resultPages"][0]["resultUrl"])) == []


def test_result_page_gzip(client: EmulatorClient) -> None:
    _accounts(client, 3)
    job_id = _query(client)
    url = client.get(f"{QUERY}/{job_id}/resultPages", params={"maxRecords": 2}).json()["resultPages"][1]["resultUrl"]
    raw = requests.get(client.url + url, headers={"Authorization": f"Bearer {client.token()}",
                                                  "Accept-Encoding": "gzip"}, verify=client.verify, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()) == b'"Name"\n"Acct 002"\n'


def test_result_pages_errors(client: EmulatorClient) -> None:
    _accounts(client, 3)
    job_id = _query(client)
    old = client.get(f"/services/data/v57.0/jobs/query/{job_id}/resultPages")
    assert old.status_code == 404 and old.json()[0]["errorCode"] == "NOT_FOUND"
    assert client.get(f"/services/data/v58.0/jobs/query/{job_id}/resultPages").status_code == 409  # not its version
    unknown = client.get(f"{QUERY}/750000000000000AAA/resultPages")
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"
    for path in ("resultPages", "results"):  # the job's own API version only, as Salesforce
        other = client.get(f"/services/data/v60.0/jobs/query/{job_id}/{path}")
        assert other.status_code == 409 and other.json()[0]["errorCode"] == "INVALIDJOB"
        assert "API version 62.0" in other.json()[0]["message"]
    for params, code in [({"maxRecords": "0"}, "INVALIDPARAMETER"), ({"maxRecords": "x"}, "INVALIDPARAMETER"),
                         ({"locator": "!!"}, "INVALIDLOCATOR"), ({"locator": "null"}, "INVALIDLOCATOR"),
                         ({"locator": "OTk="}, "INVALIDLOCATOR")]:  # base64("99"): past the end
        bad = client.get(f"{QUERY}/{job_id}/resultPages", params=params)
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == code, params
    slice_locator = client.get(f"{QUERY}/{job_id}/resultPages").json()["resultPages"][0]["resultUrl"].split("=")[1]
    from urllib.parse import unquote

    bad = client.get(f"{QUERY}/{job_id}/resultPages", params={"locator": unquote(slice_locator)})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDLOCATOR"  # a page's, not a cursor
    for forged in ("MS0w", "Mi05"):  # "1-0" (backwards) and "2-9" (past the end)
        assert client.get(f"{QUERY}/{job_id}/results", params={"locator": forged}).status_code == 400
    client.admin("POST", "bulk", {"min_in_progress_seconds": 5})
    running = client.post(QUERY, json={"operation": "query", "query": "SELECT Name FROM Account"}).json()["id"]
    busy = client.get(f"{QUERY}/{running}/resultPages")
    assert busy.status_code == 409 and "not in JobComplete state" in busy.json()[0]["message"]
    client.patch(f"{QUERY}/{running}", json={"state": "Aborted"})
