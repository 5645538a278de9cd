"""Bulk API 2.0 (ingest results, query paging with Sforce-Locator) and Bulk API 1.0 (job, CSV batch,
results)."""

from __future__ import annotations

import csv
import io
from contextlib import suppress

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from tests.contract.contract_org import Org

POLL = {"poll_interval": 2.0, "timeout": 600.0}


def _rows(stream) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(stream).decode("utf-8"))))


def _header(stream) -> list[str]:
    return next(csv.reader(io.StringIO(b"".join(stream).decode("utf-8"))), [])


def test_bulk2_ingest_results(org: Org) -> None:
    bulk = SalesforceBulkHook(org.conn_id)
    job = bulk.create_ingest_job("Account", "insert")
    org.on_teardown(lambda: _delete_job(bulk, job["id"], "ingest"))
    assert (job["object"], job["operation"], job["state"], job["contentType"]) == ("Account", "insert", "Open", "CSV")
    good = [org.name("bulk2 a"), org.name("bulk2 b")]
    bulk.upload_job_data(job["id"], ("Name\n" + "\n".join(f'"{n}"' for n in good) + '\n""\n').encode())
    assert bulk.close_job(job["id"])["state"] == "UploadComplete"
    info = bulk.wait_for_job(job["id"], **POLL)
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 3, 1)

    successful = _rows(bulk.stream_ingest_results(job["id"], "successful"))
    assert list(successful[0]) == ["sf__Id", "sf__Created", "Name"]
    assert sorted(r["Name"] for r in successful) == good
    assert all(r["sf__Id"].startswith("001") and r["sf__Created"] == "true" for r in successful)
    (failed,) = _rows(bulk.stream_ingest_results(job["id"], "failed"))
    assert list(failed) == ["sf__Id", "sf__Error", "Name"]
    assert failed["sf__Id"] == "" and failed["sf__Error"].startswith("REQUIRED_FIELD_MISSING:")
    # nothing was left unprocessed: the header alone (or, should an org send nothing, an empty body)
    assert _header(bulk.stream_ingest_results(job["id"], "unprocessed")) in (["Name"], [])


def test_bulk2_query_pages_by_locator(org: Org) -> None:
    names = sorted(org.name(f"loc{i}") for i in range(3))
    org.create_accounts(*(n.rsplit(" ", 1)[1] for n in names))
    bulk = SalesforceBulkHook(org.conn_id)
    job = bulk.create_query_job(f"SELECT Name FROM Account WHERE Name LIKE '{org.prefix}%'")
    org.on_teardown(lambda: _delete_job(bulk, job["id"], "query"))
    assert (job["operation"], job["state"]) == ("query", "UploadComplete")
    bulk.wait_for_job(job["id"], kind="query", **POLL)

    path = org.data_path(f"jobs/query/{job['id']}/results")
    first = org.raw("GET", path, params={"maxRecords": 2})
    assert first.status_code == 200
    assert first.headers["Content-Type"].split(";")[0] == "text/csv"
    assert first.headers["Sforce-NumberOfRecords"] == "2"
    locator = first.headers["Sforce-Locator"]
    assert locator and locator != "null"
    second = org.raw("GET", path, params={"maxRecords": 2, "locator": locator})
    assert second.headers["Sforce-NumberOfRecords"] == "1" and second.headers["Sforce-Locator"] == "null"
    rows = _rows([first.content]) + _rows([second.content])
    assert sorted(r["Name"] for r in rows) == names


def test_bulk1_csv_batch_results(org: Org) -> None:
    bulk = SalesforceBulkHook(org.conn_id)
    job = bulk.v1_create_job("Account", "insert", content_type="CSV")
    org.on_teardown(lambda: _close_v1(bulk, job["id"]))
    assert (job["object"], job["operation"], job["state"], job["contentType"]) == ("Account", "insert", "Open", "CSV")
    batch = bulk.v1_add_batch(job["id"], f'Name\n"{org.name("bulk1")}"\n""\n'.encode())
    assert batch["jobId"] == job["id"] and batch["state"] in {"Queued", "InProgress", "Completed"}
    assert bulk.v1_close_job(job["id"])["state"] == "Closed"
    info = bulk.wait_for_job(job["id"], api="1.0", **POLL)
    assert (info["numberBatchesCompleted"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (1, 2, 1)

    ok, failed = _rows(bulk.v1_batch_results(job["id"], batch["id"]))
    assert list(ok) == ["Id", "Success", "Created", "Error"]
    assert ok["Id"].startswith("001") and (ok["Success"], ok["Created"], ok["Error"]) == ("true", "true", "")
    assert (failed["Id"], failed["Success"], failed["Created"]) == ("", "false", "false")
    assert failed["Error"].startswith("REQUIRED_FIELD_MISSING:")


def _delete_job(bulk: SalesforceBulkHook, job_id: str, kind: str) -> None:
    try:
        bulk.delete_job(job_id, kind=kind)
    except SalesforceApiError:  # a job still open or running cannot be deleted: abort it first
        with suppress(SalesforceApiError):
            bulk.abort_job(job_id, kind=kind)
        bulk.delete_job(job_id, kind=kind)


def _close_v1(bulk: SalesforceBulkHook, job_id: str) -> None:
    if bulk.v1_get_job(job_id)["state"] == "Open":
        bulk.v1_abort_job(job_id)
