"""CRM Analytics SAQL: 50 queries on a 100,000-row dataset, 2,000 records each -- wall time, client CPU.

The floor: a bare ``requests`` session posting each query to ``wave/query`` and decoding the JSON.
Then ``SalesforceAnalyticsHook.query_records`` and ``SalesforceAnalyticsQueryOperator`` (records to
XCom; one operator a query, built inside the clock as a DAG's tasks would be). The dataset is
uploaded once (the floor of ``bench_analytics``).
"""

from __future__ import annotations

from typing import Any

from bench.bench_analytics import COUNT_SAQL, dataset_csv, floor_upload_rows
from bench.coverage_support import admin_post, bearer_session
from bench.runner import BenchEnv, Case

ROWS, QUERIES, LIMIT = 100_000, 50, 2_000
GROUP = f"CRM Analytics SAQL: {QUERIES} queries of {LIMIT:,} records on a {ROWS:,}-row dataset (emulator, loopback)"
REGIONS = ("EMEA", "AMER", "APAC")
SAQL = ('q = load "Bench"; q = filter q by Region == "{region}" && Amount >= {low}; '
        "q = foreach q generate Id, Region, Amount; q = order q by Id asc; q = limit q {limit};")
QUERY_TEXTS = [SAQL.format(region=REGIONS[n % 3], low=n * 10, limit=LIMIT) for n in range(QUERIES)]


def _setup(env: BenchEnv) -> dict[str, Any]:
    session, instance, _ = bearer_session(env)
    data = f"{instance}/services/data/v64.0"
    reply = session.post(f"{data}/wave/query", json={"query": COUNT_SAQL}, timeout=60)
    if not reply.ok or reply.json()["results"]["records"] != [{"n": ROWS}]:
        admin_post(env, "reset")
        assert floor_upload_rows(session, data, dataset_csv(env, ROWS)) == ROWS
    return {"session": session, "data": data}


def _measured(run: Any) -> dict[str, Any]:
    records = sum(len(run(saql)) for saql in QUERY_TEXTS)
    assert records == QUERIES * LIMIT, records
    return {"records": records}


def floor_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, url = prepared["session"], f"{prepared['data']}/wave/query"

    def run(saql: str) -> list[dict[str, Any]]:
        reply = session.post(url, json={"query": saql}, timeout=60)
        reply.raise_for_status()
        return reply.json()["results"]["records"]

    return _measured(run)


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

    _setup(env)
    hook = SalesforceAnalyticsHook()
    hook.get_resources()  # warm: imports, authentication, TLS handshake (the token is cached per process)
    return {"hook": hook}


def hook_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return _measured(prepared["hook"].query_records)


def operator_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.analytics import SalesforceAnalyticsQueryOperator

    return _measured(lambda saql: SalesforceAnalyticsQueryOperator(task_id="saql", saql=saql,
                                                                   max_xcom_rows=LIMIT).execute({}))


CASES = [
    Case("floor: bare requests POST wave/query", floor_query, {}, _setup, floor=True),
    Case("SalesforceAnalyticsHook.query_records", hook_query, {}, _setup_hook),
    Case("SalesforceAnalyticsQueryOperator (one a query, to XCom)", operator_query, {}, _setup_hook),
]
