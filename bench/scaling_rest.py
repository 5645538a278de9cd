"""REST saves at a size given by ``SF_BENCH_SCALING_REST_RECORDS``: the cases of the REST curve
of ``bench.bench_scaling`` (not a group of ``make bench``: see ``bench_rest_upsert`` for that).

Both insert the same CSV file of Accounts through sObject Collections (200 records a call, 4 calls
in flight): the floor, a bare ``requests`` session reading the file with ``csv``; and
``SalesforceCreateRecordsOperator`` streaming it (``source=``; per-record outcomes, failures file).
Insert rather than upsert, so a round needs no seeded records (the emulator is reset before each).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.bench_bulk import _reset
from bench.coverage_support import as_task
from bench.rest_support import bare_session, chunks, requests_total
from bench.runner import BenchEnv, Case

RECORDS = int(os.environ.get("SF_BENCH_SCALING_REST_RECORDS", "10000"))
CONCURRENCY = 4
GROUP = f"REST saves (insert, sObject Collections): {RECORDS:,} Account records (emulator, loopback)"
HEADER = ["Name", "AccountNumber", "Industry", "Phone"]


def _csv(env: BenchEnv) -> str:
    path = os.path.join(env.workdir, f"rest-accounts-{RECORDS}.csv")
    if not os.path.exists(path):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for n in range(RECORDS):
                writer.writerow([f"Rest bench {n:07d}", f"RN{n:07d}", ("Energy", "Retail")[n % 2], f"+1 555 {n:07d}"])
    return path


def _setup(env: BenchEnv) -> dict[str, Any]:
    path = _csv(env)
    _reset(env)
    session, data = bare_session(env, CONCURRENCY)
    session.get(f"{data}/limits", timeout=30).raise_for_status()  # warm: TLS handshake
    return {"path": path, "session": session, "data": data}


def floor_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, url = prepared["session"], f"{prepared['data']}/composite/sobjects"
    before = requests_total(env)

    def send(chunk: list[dict[str, Any]]) -> int:
        body = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, **r} for r in chunk]}
        reply = session.post(url, json=body, timeout=300)
        reply.raise_for_status()
        return sum(1 for result in reply.json() if result["success"])

    with open(prepared["path"], newline="") as handle, ThreadPoolExecutor(CONCURRENCY) as pool:
        succeeded = sum(pool.map(send, chunks(csv.DictReader(handle))))
    assert succeeded == RECORDS, succeeded
    return {"records": RECORDS, "http_calls": requests_total(env) - before}


def operator_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceCreateRecordsOperator

    before = requests_total(env)
    summary = SalesforceCreateRecordsOperator(task_id="save", sobject="Account", source=prepared["path"],
                                              concurrency=CONCURRENCY,
                                              failed_records_base_uri=os.path.join(env.workdir, "rest-failed"),
                                              ).execute({"params": {}})
    assert summary["succeeded"] == RECORDS, summary
    return {"records": RECORDS, "http_calls": requests_total(env) - before}


CASES = [
    Case("floor: bare requests, Collections x4", floor_insert, {}, _setup, floor=True),
    Case("SalesforceCreateRecordsOperator(source=CSV)", operator_insert, {}, as_task(_setup)),
]
