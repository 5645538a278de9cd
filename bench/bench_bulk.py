"""Bulk API: ingest and extract 100,000 Account rows (6 fields) -- wall time and peak RSS.

Ingest cases load the same CSV file (written before the clock): ``SalesforceBulkIngestOperator``
(streams the file, writes successful/failed/unprocessed files tied to input rows),
simple-salesforce ``bulk2`` (``insert(csv_file=...)``), simple-salesforce ``bulk`` (Bulk 1.0, the client
the official provider's ``SalesforceBulkOperator`` uses; the records as a list) and the floor: a bare
``requests`` session creating one job, uploading the same bytes, polling and downloading the
successful results to a file. Last, the official provider's ``SalesforceBulkOperator``
(``apache-airflow-providers-salesforce``, installed apart from ``.venv`` and reached through its
connection only: see ``bench.official_provider``) with the records as its ``payload`` list, read from
the CSV before the clock but counted in its peak RSS. Each ingest setup resets the emulator so every
round loads into an empty org. Extract cases are in ``bench_bulk_extract``. ``ROWS`` is overridable
with ``SF_BENCH_BULK_ROWS``.
"""

from __future__ import annotations

import csv
import functools
import os
import time
from typing import Any, Callable

import requests

from bench.rest_support import bare_session
from bench.runner import BenchEnv, Case

ROWS = int(os.environ.get("SF_BENCH_BULK_ROWS", "100000"))
GROUP = f"Bulk API ingest: {ROWS:,} Account rows, 6 fields (emulator, loopback)"
HEADER = ["Name", "AccountNumber", "NumberOfEmployees", "Industry", "Phone", "Description"]
SOQL = "SELECT Id, Name, AccountNumber, NumberOfEmployees, Industry, Phone, Description FROM Account"
POLL = 0.2


def client_cpu(run: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Add the case process's CPU seconds (user + system) to its metrics: the client's own work,
    which, unlike wall time, does not stretch when the emulator (another process) or other load
    competes for the cores."""

    @functools.wraps(run)
    def measured(env: BenchEnv, **kwargs: Any) -> dict[str, Any]:
        started = time.process_time()
        metrics = run(env, **kwargs)
        return {**metrics, "client CPU s": round(time.process_time() - started, 2)}

    return measured


def _csv_path(env: BenchEnv) -> str:
    path = os.path.join(env.workdir, f"bulk-accounts-{ROWS}.csv")
    if not os.path.exists(path):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for n in range(ROWS):
                writer.writerow([f"Bulk bench {n:07d}", f"AN{n:07d}", n % 5000, ("Energy", "Retail")[n % 2],
                                 f"+1 555 {n:07d}", f"bench row {n}"])
    return path


def _reset(env: BenchEnv) -> None:
    requests.post(f"{env.url}/__emulator__/reset", verify=env.ca_bundle or True, timeout=60).raise_for_status()


def _poll(session: requests.Session, url: str, done: tuple[str, ...] = ("JobComplete",)) -> dict[str, Any]:
    while True:
        info = session.get(url, timeout=60).json()
        if info["state"] in done or info["state"] in ("Failed", "Aborted"):
            assert info["state"] in done, info
            return info
        time.sleep(POLL)


def _floor_ingest_rows(env: BenchEnv, path: str) -> int:
    session, data = bare_session(env)
    job = session.post(f"{data}/jobs/ingest", json={"object": "Account", "operation": "insert",
                                                    "lineEnding": "LF"}, timeout=60).json()
    with open(path, "rb") as handle:
        session.put(f"{data}/jobs/ingest/{job['id']}/batches", data=handle,
                    headers={"Content-Type": "text/csv"}, timeout=600).raise_for_status()
    session.patch(f"{data}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=60).raise_for_status()
    info = _poll(session, f"{data}/jobs/ingest/{job['id']}")
    return int(info["numberRecordsProcessed"])


# -- ingest ------------------------------------------------------------------------------------------------
def _setup_ingest(env: BenchEnv) -> dict[str, Any]:
    path = _csv_path(env)
    _reset(env)
    return {"path": path}


def _setup_operator_ingest(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup_ingest(env)
    _warm_hook()
    return prepared


def _warm_hook() -> None:
    """Imports, authentication and the TLS handshake before the clock (the token is cached); and
    Airflow's plugins, which the Task Runner loads before ``execute`` (building the template
    context) and ``ObjectStoragePath`` file operations consult (hook lineage) -- outside a Task
    Runner the first file write would pay for loading them inside the clock."""
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
    from airflow_provider_salesforce_suite.io import iter_records  # noqa: F401  (the file layer)

    integrate_macros_plugins()

    hook = SalesforceBulkHook()
    hook.request("GET", hook.data_url("limits"))


@client_cpu
def operator_ingest(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

    op = SalesforceBulkIngestOperator(task_id="load", sobject="Account", source=prepared["path"], deferrable=False,
                                      results_dir=os.path.join(env.workdir, "bulk-results"), poll_interval=POLL)
    summary = op.execute({"params": {}})
    assert summary["processed"] == ROWS, summary
    return {"rows": ROWS}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    return {**_setup_ingest(env), "sf": simple_salesforce_client(env)}


def simple_salesforce_client(env: BenchEnv) -> Any:
    """A warmed simple-salesforce client on a bare session with the emulator's token."""
    from simple_salesforce import Salesforce

    from bench.bench_rest_transport import VERSION

    session, data = bare_session(env)
    token = session.headers["Authorization"].split(" ", 1)[1]
    sf = Salesforce(instance_url=data.split("/services/")[0], session_id=token, version=VERSION, session=session)
    sf.query("SELECT Id FROM Account LIMIT 1")  # warm
    return sf


@client_cpu
def simple_salesforce_bulk2_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    results = prepared["sf"].bulk2.Account.insert(csv_file=prepared["path"], wait=POLL)
    processed = sum(int(r["numberRecordsProcessed"]) for r in results)
    assert processed == ROWS, results
    return {"rows": ROWS}


def _load_records(prepared: dict[str, Any]) -> dict[str, Any]:
    """Bulk 1.0 clients take a list of dicts: load the CSV into one before the clock (it still counts
    in the case's peak RSS)."""
    with open(prepared["path"], newline="") as handle:
        return {**prepared, "records": list(csv.DictReader(handle))}


def _setup_simple_salesforce_v1(env: BenchEnv) -> dict[str, Any]:
    return _load_records(_setup_simple_salesforce(env))


@client_cpu
def simple_salesforce_bulk_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce's Bulk 1.0 client, as the official provider's ``SalesforceBulkOperator``
    calls it (JSON batches of 10,000; it polls each batch every 5 s, with no way to ask for less)."""
    results = prepared["sf"].bulk.Account.insert(prepared["records"], batch_size=10_000)
    assert sum(1 for r in results if r["success"]) == ROWS, results[:3]
    return {"rows": ROWS}


def _setup_official(env: BenchEnv) -> dict[str, Any]:
    from bench.official_provider import activate

    activate(env)
    import airflow.providers.salesforce.operators.bulk  # noqa: F401  (imports before the clock)

    return _load_records(_setup_ingest(env))


@client_cpu
def official_bulk_operator(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The official provider's ``SalesforceBulkOperator`` (simple-salesforce Bulk 1.0 underneath, as
    above); it builds its hook in ``execute``, so its SOAP login is inside the clock (one call)."""
    from airflow.providers.salesforce.operators.bulk import SalesforceBulkOperator

    from bench.official_provider import CONN_ID

    results = SalesforceBulkOperator(task_id="load", operation="insert", object_name="Account",
                                     payload=prepared["records"], batch_size=10_000,
                                     salesforce_conn_id=CONN_ID).execute({"params": {}})
    assert len(results) == ROWS and all(r["success"] for r in results), results[:3]
    return {"rows": ROWS}


@client_cpu
def floor_ingest(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    assert _floor_ingest_rows(env, prepared["path"]) == ROWS
    session, data = bare_session(env)
    job_id = next(j["id"] for j in session.get(f"{data}/jobs/ingest", timeout=60).json()["records"])
    with session.get(f"{data}/jobs/ingest/{job_id}/successfulResults", stream=True, timeout=600) as reply, \
            open(os.path.join(env.workdir, "floor-successful.csv"), "wb") as out:
        for chunk in reply.iter_content(1 << 16):
            out.write(chunk)
    return {"rows": ROWS}


CASES = [
    Case("ingest floor: bare requests (1 job, same bytes)", floor_ingest, {}, _setup_ingest),
    Case("ingest SalesforceBulkIngestOperator (CSV file)", operator_ingest, {}, _setup_operator_ingest),
    Case("ingest simple-salesforce bulk2.insert(csv_file)", simple_salesforce_bulk2_insert, {},
         _setup_simple_salesforce),
    Case("ingest simple-salesforce bulk (1.0) insert(list)", simple_salesforce_bulk_insert, {},
         _setup_simple_salesforce_v1),
    Case("ingest official SalesforceBulkOperator (payload list)", official_bulk_operator, {}, _setup_official),
]
