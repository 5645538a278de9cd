"""Bulk API 1.0 query: 20,000 Account rows (7 fields) to a CSV file -- wall time, client CPU, peak RSS.

The floor: a bare ``requests`` session creating a CSV query job (XML ``jobInfo``), adding the SOQL
batch, closing the job, polling the batch and streaming every result to one file (bytes, untouched).
Then ``SalesforceBulkQueryOperator(api="1.0")`` and simple-salesforce's Bulk 1.0 query (JSON results,
as dicts in memory, written with ``csv``). The first setup loads the rows (the floor of
``bench_bulk_v1``). ``ROWS`` is shared with ``bench_bulk_v1`` (``SF_BENCH_BULK_V1_ROWS``).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from bench.bench_bulk import _reset, simple_salesforce_client
from bench.bench_bulk_v1 import ROWS, csv_path, floor_ingest, tag, v1_floor_close, v1_floor_create, \
    v1_floor_session, v1_floor_wait
from bench.coverage_support import POLL, as_task, file_mb
from bench.rest_support import count
from bench.runner import BenchEnv, Case

GROUP = f"Bulk API 1.0 query: {ROWS:,} Account rows, 7 fields, to CSV (emulator, loopback)"
FIELDS = ["Id", "Name", "AccountNumber", "NumberOfEmployees", "Industry", "Phone", "Description"]
SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"


def _setup(env: BenchEnv) -> dict[str, Any]:
    if count(env, "SELECT COUNT() FROM Account") != ROWS:
        _reset(env)
        floor_ingest.__wrapped__(env, {"path": csv_path(env)})
    return {}


def floor_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, base = v1_floor_session(env)
    job_id = v1_floor_create(session, base, "query", "Account")
    session.post(f"{base}/job/{job_id}/batch", data=SOQL.encode(), headers={"Content-Type": "text/csv"},
                 timeout=60).raise_for_status()
    v1_floor_close(session, base, job_id)
    output = os.path.join(env.workdir, "v1-floor-extract.csv")
    with open(output, "wb") as out:
        for batch_id in v1_floor_wait(session, base, job_id):
            listing = session.get(f"{base}/job/{job_id}/batch/{batch_id}/result", timeout=60)
            listing.raise_for_status()
            for result_id in tag(listing.content, "result"):
                with session.get(f"{base}/job/{job_id}/batch/{batch_id}/result/{result_id}", stream=True,
                                 timeout=600) as reply:
                    reply.raise_for_status()
                    for chunk in reply.iter_content(1 << 16):
                        out.write(chunk)
    return {"rows": ROWS, "file MB": file_mb(output)}


def operator_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    output = os.path.join(env.workdir, "v1-extract.csv")
    summary = SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=output, api="1.0",
                                          deferrable=False, poll_interval=POLL).execute({"params": {}})
    assert summary["records"] == ROWS, summary
    return {"rows": ROWS, "file MB": file_mb(output)}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    return {**_setup(env), "sf": simple_salesforce_client(env)}


def simple_salesforce_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    rows = prepared["sf"].bulk.Account.query(SOQL, lazy_operation=False, wait=POLL)
    output = os.path.join(env.workdir, "v1-ssf-extract.csv")
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert len(rows) == ROWS
    return {"rows": len(rows), "file MB": file_mb(output)}


CASES = [
    Case("floor: bare requests, results streamed to file", floor_query, {}, _setup, floor=True),
    Case('SalesforceBulkQueryOperator(api="1.0") -> CSV', operator_query, {}, as_task(_setup)),
    Case("simple-salesforce bulk.query -> csv", simple_salesforce_query, {}, _setup_simple_salesforce),
]
