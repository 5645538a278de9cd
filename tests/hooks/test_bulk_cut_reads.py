"""A streamed Bulk result whose connection is cut mid-body is read again from the start: the
output holds every row once (never twice, never half of one); past the connection's retry bound
the error names the job and the path."""

from __future__ import annotations

import json

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceTransportError
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from tests.hooks.bulk_support import FAST, calls, read_csv

V2 = "/services/data/v64.0/jobs"
V1 = "/services/async/64.0/job"


def _submit(hook: SalesforceBulkHook, tmp_path, api: str) -> dict:
    """Submit 300 rows without waiting; the manifest (job and batch ids) the collection reads."""
    rows = ({"Name": f"Cut {i:04d}", "Description": "d" * 50} for i in range(300))
    hook.ingest("Account", "insert", rows, api=api, results_dir=tmp_path / "res", wait=False,
                resume_key="dag/run/task", **FAST)
    with open(tmp_path / "res" / "_chunks" / "manifest.json") as manifest:
        return json.load(manifest)


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_cut_result_download_is_read_again(sf_conn, emulator_admin, tmp_path, api) -> None:
    hook = SalesforceBulkHook(sf_conn())
    entry = _submit(hook, tmp_path, api)["chunks"][0]
    hook.wait_for_job(entry["job_id"], api=api, **FAST)
    path = (f"{V2}/ingest/{entry['job_id']}/successfulResults" if api == "2.0"
            else f"{V1}/{entry['job_id']}/batch/{entry['batch_id']}/result")
    emulator_admin.fault(truncate_body=True, method="GET", path_prefix=path, count=1)
    summary = hook.collect_ingest_results(str(tmp_path / "res"), **FAST)
    assert calls(emulator_admin, "GET", "successfulResults" if api == "2.0" else "/result") == 2  # cut, then whole
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (300, 300, 0, 0)
    rows = read_csv(summary.successful_uri)
    assert sorted(int(r["sf__InputRow"]) for r in rows) == list(range(1, 301))
    assert all(r["Name"] == f"Cut {int(r['sf__InputRow']) - 1:04d}" and r["sf__Id"] for r in rows)


@pytest.mark.parametrize("parallel", [1, 2])
def test_cut_query_page_is_read_again(sf_conn, emulator_admin, tmp_path, parallel) -> None:
    hook = SalesforceBulkHook(sf_conn())
    hook.ingest("Account", "insert", ({"Name": f"Page {i:04d}"} for i in range(250)), results_dir=tmp_path / "in",
                **FAST)
    job_id = hook.create_query_job("SELECT Name FROM Account ORDER BY Name")["id"]
    hook.wait_for_job(job_id, kind="query", **FAST)
    emulator_admin.fault(truncate_body=True, method="GET", path_prefix=f"{V2}/query/{job_id}/results", count=1)
    summary = hook.write_query_results(job_id, tmp_path / "out.csv", max_records=100, max_parallel_pages=parallel)
    assert summary.records == 250
    assert calls(emulator_admin, "GET", f"{job_id}/results") == 3 + 1  # three pages, one read twice
    names = [r["Name"] for r in read_csv(tmp_path / "out.csv")]
    assert names == [f"Page {i:04d}" for i in range(250)]


def test_cut_every_time_names_the_job_and_path(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn(extra={"max_retries": 2}))
    entry = _submit(hook, tmp_path, "2.0")["chunks"][0]
    hook.wait_for_job(entry["job_id"], **FAST)
    path = f"{V2}/ingest/{entry['job_id']}/successfulResults"
    emulator_admin.fault(truncate_body=True, method="GET", path_prefix=path)
    with pytest.raises(SalesforceTransportError) as raised:
        b"".join(hook.stream_ingest_results(entry["job_id"], "successful"))
    assert f"Bulk job {entry['job_id']}" in str(raised.value) and path in str(raised.value)
    assert "cut mid-body 3 times" in str(raised.value)


@pytest.mark.parametrize("results_format", ["csv", "parquet"])
def test_cut_v1_query_result_is_read_again(sf_conn, emulator_admin, tmp_path, results_format) -> None:
    """A Bulk 1.0 query result (one document per batch result id) cut mid-body: each row written once."""
    hook = SalesforceBulkHook(sf_conn())
    hook.wait_for_job(_submit(hook, tmp_path, "2.0")["chunks"][0]["job_id"], **FAST)
    job_id = hook.submit_query_job("SELECT Name FROM Account WHERE Name LIKE 'Cut %' ORDER BY Name", api="1.0")
    hook.wait_for_job(job_id, api="1.0", **FAST)
    [batch] = hook.v1_list_batches(job_id)
    emulator_admin.fault(truncate_body=True, method="GET", path_prefix=f"{V1}/{job_id}/batch/{batch['id']}/result/",
                         count=1)
    out = tmp_path / f"out.{results_format}"
    summary = hook.write_query_results(job_id, out, api="1.0")
    assert emulator_admin.stats()["faults_injected"] == 1
    if results_format == "csv":
        names = [r["Name"] for r in read_csv(out)]
    else:
        import pyarrow.parquet as pq

        names = pq.read_table(out).column("Name").to_pylist()
    assert summary.records == 300 and sorted(names) == [f"Cut {i:04d}" for i in range(300)]
