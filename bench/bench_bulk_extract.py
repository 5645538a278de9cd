"""Bulk API extract: 100,000 Account rows (7 fields) to a CSV file -- wall time and peak RSS.

``SalesforceBulkQueryOperator`` (pages streamed to the file, one header), simple-salesforce
``bulk2`` ``download``, simple-salesforce ``bulk`` (1.0) ``query`` written with ``csv``, the floor: a
bare ``requests`` session creating the job, polling and streaming every page to a file; and the
official provider's extract path (no Bulk query: ``SalesforceHook.make_query``, REST ``query_all``,
then ``write_object_to_file`` through pandas, as its transfer operators do; see
``bench.official_provider``). The first setup loads the rows (see ``bench_bulk``).
"""

from __future__ import annotations

import os
from typing import Any

from bench.bench_bulk import POLL, ROWS, SOQL, _csv_path, _floor_ingest_rows, _poll, _reset, _warm_hook, \
    client_cpu, simple_salesforce_client
from bench.rest_support import bare_session
from bench.runner import BenchEnv, Case

GROUP = f"Bulk API extract: {ROWS:,} Account rows, 7 fields, to CSV (emulator, loopback)"


def _setup_extract(env: BenchEnv) -> dict[str, Any]:
    session, data = bare_session(env)
    have = session.get(f"{data}/query", params={"q": "SELECT COUNT() FROM Account"}, timeout=120).json()["totalSize"]
    if have != ROWS:
        _reset(env)
        _floor_ingest_rows(env, _csv_path(env))
    return {}


def _setup_operator_extract(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup_extract(env)
    _warm_hook()
    return prepared


@client_cpu
def operator_extract(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    output = os.path.join(env.workdir, "bulk-extract.csv")
    summary = SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=output, deferrable=False,
                                          poll_interval=POLL).execute({"params": {}})
    assert summary["records"] == ROWS, summary
    return {"rows": ROWS, "file MB": round(os.path.getsize(output) / 2**20, 1)}


def _setup_simple_salesforce_extract(env: BenchEnv) -> dict[str, Any]:
    return {**_setup_extract(env), "sf": simple_salesforce_client(env)}


@client_cpu
def simple_salesforce_bulk2_download(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    folder = os.path.join(env.workdir, "ssf-extract")
    os.makedirs(folder, exist_ok=True)
    results = prepared["sf"].bulk2.Account.download(SOQL, path=folder, wait=POLL)
    rows = sum(int(r["number_of_records"]) for r in results)
    assert rows == ROWS, results
    return {"rows": rows}


@client_cpu
def simple_salesforce_bulk_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce's Bulk 1.0 query (JSON results, as dicts in memory) written to a CSV file."""
    import csv

    rows = prepared["sf"].bulk.Account.query(SOQL, lazy_operation=False, wait=POLL)
    output = os.path.join(env.workdir, "ssf-v1-extract.csv")
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.strip() for f in SOQL[7:SOQL.index(" FROM")].split(",")],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert len(rows) == ROWS
    return {"rows": len(rows), "file MB": round(os.path.getsize(output) / 2**20, 1)}


def _setup_official_extract(env: BenchEnv) -> dict[str, Any]:
    from bench.official_provider import activate

    prepared = _setup_extract(env)
    activate(env)
    import airflow.providers.salesforce.hooks.salesforce  # noqa: F401  (imports before the clock)
    import pandas  # noqa: F401  (write_object_to_file imports it on use)

    return prepared


@client_cpu
def official_make_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The official provider's extract path, as its transfer operators run it: ``make_query`` (REST
    ``query_all``: every page's records in memory) then ``write_object_to_file`` (a pandas DataFrame
    to CSV). Its SOAP login (one call) is inside the clock."""
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    from bench.official_provider import CONN_ID

    hook = SalesforceHook(salesforce_conn_id=CONN_ID)
    result = hook.make_query(SOQL)
    output = os.path.join(env.workdir, "official-extract.csv")
    frame = hook.write_object_to_file(result["records"], output, fmt="csv")
    assert result["totalSize"] == len(frame) == ROWS, (result["totalSize"], len(frame))
    return {"rows": len(frame), "file MB": round(os.path.getsize(output) / 2**20, 1)}


@client_cpu
def floor_extract(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, data = bare_session(env)
    job = session.post(f"{data}/jobs/query", json={"operation": "query", "query": SOQL}, timeout=60).json()
    _poll(session, f"{data}/jobs/query/{job['id']}")
    output = os.path.join(env.workdir, "floor-extract.csv")
    locator = None
    with open(output, "wb") as out:
        while True:
            params = {"locator": locator} if locator else None
            with session.get(f"{data}/jobs/query/{job['id']}/results", params=params, stream=True,
                             timeout=600) as reply:
                reply.raise_for_status()
                for chunk in reply.iter_content(1 << 16):
                    out.write(chunk)  # (pages after the first repeat the header: the floor does not care)
                locator = reply.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                break
    return {"rows": ROWS, "file MB": round(os.path.getsize(output) / 2**20, 1)}


CASES = [
    Case("extract floor: bare requests (pages to file)", floor_extract, {}, _setup_extract),
    Case("extract SalesforceBulkQueryOperator -> CSV", operator_extract, {}, _setup_operator_extract),
    Case("extract simple-salesforce bulk2.download", simple_salesforce_bulk2_download, {},
         _setup_simple_salesforce_extract),
    Case("extract simple-salesforce bulk (1.0) query -> csv", simple_salesforce_bulk_query, {},
         _setup_simple_salesforce_extract),
    Case("extract official SalesforceHook.make_query -> write_object_to_file CSV", official_make_query, {},
         _setup_official_extract),
]

#: Result pages downloaded at once by the parallel extract case (``resultPages``, API 58.0+).
PARALLEL_PAGES = 4


@client_cpu
def operator_extract_parallel(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The operator with ``max_parallel_pages``: the emulator cuts its default 10,000-row pages,
    downloaded ``PARALLEL_PAGES`` at a time, spilled and written in order."""
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    output = os.path.join(env.workdir, "bulk-extract-parallel.csv")
    summary = SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=output, deferrable=False,
                                          poll_interval=POLL, max_parallel_pages=PARALLEL_PAGES).execute({"params": {}})
    assert summary["records"] == ROWS, summary
    return {"rows": ROWS, "file MB": round(os.path.getsize(output) / 2**20, 1)}


CASES.append(Case(f"extract SalesforceBulkQueryOperator -> CSV, {PARALLEL_PAGES} pages in parallel",
                  operator_extract_parallel, {}, _setup_operator_extract))
