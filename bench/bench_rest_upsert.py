"""Upsert 10,000 Account records: HTTP calls and wall time.

Baseline (the floor): the same sObject Collections payloads (200 records per call) sent by a bare
``requests`` session, 4 calls in flight. Then ``SalesforceUpsertRecordsOperator`` (the hook's
``save_records``: 200 per call, 4 in flight, results in input order, failures file) and
simple-salesforce with one call per record (``sf.Account.upsert``), the usual hand-written loop.
Records are upserted on ``Id`` (the runner's emulator has no custom External ID field); each
round's setup seeds its own 10,000 accounts before the clock starts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.rest_support import bare_session, chunks, collections_insert, requests_total, reset_api_usage
from bench.runner import BenchEnv, Case

GROUP = "REST upsert: 10,000 Account records (emulator, loopback)"
RECORDS = 10_000
CONCURRENCY = 4


def _setup(env: BenchEnv) -> dict[str, Any]:
    reset_api_usage(env)  # 10,000 single calls a round would exhaust the org's daily allowance
    ids = collections_insert(env, "Account", ({"Name": f"Upsert bench {n}"} for n in range(RECORDS)))
    return {"records": [{"Id": record_id, "Rating": "Hot", "Industry": "Energy"} for record_id in ids]}


def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup(env)
    session, data = bare_session(env, CONCURRENCY)
    session.get(f"{data}/limits", timeout=30).raise_for_status()  # warm: TLS handshake
    return {**prepared, "session": session, "data": data}


def bare_requests_collections(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, url = prepared["session"], f"{prepared['data']}/composite/sobjects/Account/Id"
    before = requests_total(env)

    def send(chunk: list[dict[str, Any]]) -> int:
        body = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, **r} for r in chunk]}
        reply = session.patch(url, json=body, timeout=300)
        reply.raise_for_status()
        return sum(1 for result in reply.json() if result["success"])

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        succeeded = sum(pool.map(send, chunks(prepared["records"])))
    assert succeeded == RECORDS
    return {"http_calls": requests_total(env) - before, "records": RECORDS}


def _setup_operator(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceUpsertRecordsOperator

    prepared = _setup(env)
    operator = SalesforceUpsertRecordsOperator(task_id="upsert", sobject="Account", external_id_field="Id",
                                               records=prepared["records"], concurrency=CONCURRENCY)
    operator.hook.limits()  # warm: imports, authentication, TLS handshake
    return {"operator": operator}


def upsert_operator(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    before = requests_total(env)
    summary = prepared["operator"].execute({})
    assert summary["succeeded"] == RECORDS, summary
    return {"http_calls": requests_total(env) - before, "records": RECORDS}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    from simple_salesforce import Salesforce

    from bench.bench_rest_transport import VERSION

    prepared = _setup(env)
    session, data = bare_session(env)
    token = session.headers["Authorization"].split(" ", 1)[1]
    sf = Salesforce(instance_url=data.split("/services/")[0], session_id=token, version=VERSION, session=session)
    sf.Account.describe()  # warm
    return {**prepared, "sf": sf}


def simple_salesforce_per_record(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    account = prepared["sf"].Account
    before = requests_total(env)
    for record in prepared["records"]:
        values = {k: v for k, v in record.items() if k != "Id"}
        account.upsert(f"Id/{record['Id']}", values)
    return {"http_calls": requests_total(env) - before, "records": RECORDS}


CASES = [
    Case("bare requests, Collections x4 (floor)", bare_requests_collections, setup=_setup_bare),
    Case("SalesforceUpsertRecordsOperator", upsert_operator, setup=_setup_operator),
    Case("simple-salesforce, 1 call per record", simple_salesforce_per_record, setup=_setup_simple_salesforce),
]
