"""Bulk API 1.0 ingest: 20,000 Account rows (6 fields) from a CSV file -- wall time, client CPU, peak RSS.

The floor: a bare ``requests`` session doing what a careful engineer would on Bulk 1.0: one CSV
job (XML ``jobInfo``), the file cut into 10,000-row batches (the header on each, bytes never
decoded) all added before the job is closed, then every batch polled and its results streamed to
one file. Then ``SalesforceBulkIngestOperator(api="1.0")`` (the same batches; per-row results files
tied to input rows) and simple-salesforce's Bulk 1.0 client (the official provider's path; the
records as a list, JSON batches of 10,000, read from the CSV before the clock). Every round loads
into an empty org. ``ROWS`` is overridable with ``SF_BENCH_BULK_V1_ROWS``.
"""

from __future__ import annotations

import csv
import os
import re
from typing import Any

from bench.bench_bulk import HEADER, _reset, simple_salesforce_client
from bench.coverage_support import POLL, as_task, bearer_session, poll_until
from bench.runner import BenchEnv, Case

ROWS = int(os.environ.get("SF_BENCH_BULK_V1_ROWS", "20000"))
BATCH_ROWS = 10_000
VERSION = "64.0"
GROUP = f"Bulk API 1.0 ingest: {ROWS:,} Account rows, 6 fields, batches of {BATCH_ROWS:,} (emulator, loopback)"
NS = "http://www.force.com/2009/06/asyncapi/dataload"
XML = {"Content-Type": "application/xml; charset=UTF-8"}


def csv_path(env: BenchEnv, rows: int = ROWS) -> str:
    """The input CSV (written once per run, before any clock)."""
    path = os.path.join(env.workdir, f"bulk-v1-accounts-{rows}.csv")
    if not os.path.exists(path):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(HEADER)
            for n in range(rows):
                writer.writerow([f"Bulk v1 bench {n:07d}", f"AN{n:07d}", n % 5000, ("Energy", "Retail")[n % 2],
                                 f"+1 555 {n:07d}", f"bench row {n}"])
    return path


def tag(xml: bytes, name: str) -> list[str]:
    """Every ``<name>`` text of a Bulk 1.0 XML reply (a regex: the floor parses only what it needs)."""
    return [m.decode() for m in re.findall(rb"<%s>([^<]*)</%s>" % (name.encode(), name.encode()), xml)]


def v1_floor_session(env: BenchEnv) -> tuple[Any, str]:
    """A bare session with ``X-SFDC-Session``; (session, ``.../services/async/<version>``)."""
    session, instance, token = bearer_session(env)
    session.headers["X-SFDC-Session"] = token
    return session, f"{instance}/services/async/{VERSION}"


def v1_floor_create(session: Any, base: str, operation: str, sobject: str) -> str:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}"><operation>{operation}</operation>'
            f"<object>{sobject}</object><contentType>CSV</contentType></jobInfo>").encode()
    reply = session.post(f"{base}/job", data=body, headers=XML, timeout=60)
    reply.raise_for_status()
    return tag(reply.content, "id")[0]


def v1_floor_close(session: Any, base: str, job_id: str) -> None:
    body = f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}"><state>Closed</state></jobInfo>'
    session.post(f"{base}/job/{job_id}", data=body.encode(), headers=XML, timeout=60).raise_for_status()


def v1_floor_wait(session: Any, base: str, job_id: str) -> list[str]:
    """Poll the job's batch list until no batch is queued or running; the batch ids (all Completed)."""

    def batches() -> dict[str, Any]:
        reply = session.get(f"{base}/job/{job_id}/batch", timeout=60)
        reply.raise_for_status()
        return {"ids": tag(reply.content, "id"), "states": tag(reply.content, "state")}

    info = poll_until(batches, lambda b: bool(b["states"]) and all(s in ("Completed", "Failed", "NotProcessed")
                                                                   for s in b["states"]))
    assert set(info["states"]) == {"Completed"}, info["states"]
    return info["ids"]


def _batches(path: str) -> list[bytes]:
    """The file cut into BATCH_ROWS-row CSV bodies, the header on each (bytes, lines untouched)."""
    with open(path, "rb") as handle:
        header = handle.readline()
        bodies, lines = [], []
        for line in handle:
            lines.append(line)
            if len(lines) == BATCH_ROWS:
                bodies.append(header + b"".join(lines))
                lines = []
    if lines:
        bodies.append(header + b"".join(lines))
    return bodies


def floor_ingest(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, base = v1_floor_session(env)
    job_id = v1_floor_create(session, base, "insert", "Account")
    for body in _batches(prepared["path"]):
        session.post(f"{base}/job/{job_id}/batch", data=body, headers={"Content-Type": "text/csv"},
                     timeout=600).raise_for_status()
    v1_floor_close(session, base, job_id)
    rows = 0
    with open(os.path.join(env.workdir, "v1-floor-results.csv"), "wb") as out:
        for batch_id in v1_floor_wait(session, base, job_id):
            with session.get(f"{base}/job/{job_id}/batch/{batch_id}/result", stream=True, timeout=600) as reply:
                reply.raise_for_status()
                for chunk in reply.iter_content(1 << 16):
                    rows += chunk.count(b"\n")
                    out.write(chunk)
    assert rows - len(_batches(prepared["path"])) >= ROWS - 1, rows  # results: one header per batch
    return {"rows": ROWS}


def _setup(env: BenchEnv) -> dict[str, Any]:
    path = csv_path(env)
    _reset(env)
    return {"path": path}


def operator_ingest(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

    op = SalesforceBulkIngestOperator(task_id="load", sobject="Account", source=prepared["path"], api="1.0",
                                      deferrable=False, poll_interval=POLL,
                                      results_dir=os.path.join(env.workdir, "bulk-v1-results"))
    summary = op.execute({"params": {}})
    assert summary["processed"] == ROWS, summary
    return {"rows": ROWS}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup(env)
    with open(prepared["path"], newline="") as handle:
        records = list(csv.DictReader(handle))
    return {**prepared, "records": records, "sf": simple_salesforce_client(env)}


def simple_salesforce_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce ``bulk.Account.insert`` (Bulk 1.0, JSON batches; it polls every 5 s: no knob)."""
    results = prepared["sf"].bulk.Account.insert(prepared["records"], batch_size=BATCH_ROWS)
    assert sum(1 for r in results if r["success"]) == ROWS, results[:3]
    return {"rows": ROWS}


CASES = [
    Case("floor: bare requests, CSV batches of 10,000", floor_ingest, {}, _setup, floor=True),
    Case('SalesforceBulkIngestOperator(api="1.0")', operator_ingest, {}, as_task(_setup)),
    Case("simple-salesforce bulk.insert(list) (polls every 5 s)", simple_salesforce_insert, {},
         _setup_simple_salesforce),
]
