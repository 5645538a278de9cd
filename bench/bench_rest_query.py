"""Query 20,000 and 200,000 Contact rows to a file: wall time and peak RSS.

``SalesforceQueryOperator`` writes page by page (constant memory): its peak RSS must be the same
for 20,000 and 200,000 rows. For contrast, the usual hand-written export: simple-salesforce's
``query_all`` (the whole result in memory) then ``csv.DictWriter``. The first setup seeds 200,000
contacts through sObject Collections (once per run; later setups find them).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from bench.rest_support import bare_session, collections_insert, count, reset_api_usage
from bench.runner import BenchEnv, Case

GROUP = "REST query to a file: 20,000 and 200,000 Contact rows (emulator, loopback)"
ROWS = 200_000
FIELDS = "Id, FirstName, LastName, Email, Title, Phone"


def _seed(env: BenchEnv) -> None:
    reset_api_usage(env)
    have = count(env, "SELECT COUNT() FROM Contact WHERE Title = 'Query bench'")
    rows = ({"FirstName": f"First{n}", "LastName": f"Last{n:07d}", "Email": f"c{n}@example.com",
             "Title": "Query bench", "Phone": f"+1 555 {n:07d}"} for n in range(have, ROWS))
    collections_insert(env, "Contact", rows, concurrency=4)


def _soql(rows: int) -> str:
    return f"SELECT {FIELDS} FROM Contact WHERE Title = 'Query bench' LIMIT {rows}"


def _setup_operator(env: BenchEnv, suffix: str) -> dict[str, Any]:
    _seed(env)
    from airflow_provider_salesforce_suite.io import RecordWriter
    from airflow_provider_salesforce_suite.operators.rest import SalesforceRestHook

    SalesforceRestHook().limits()  # warm: imports, authentication, TLS handshake (token cached)
    with RecordWriter(os.path.join(env.workdir, f"warm.{suffix}")) as writer:  # warm: file layer imports
        writer.write_page([{"Id": "warm"}])
    return {}


def _setup_csv(env: BenchEnv) -> dict[str, Any]:
    return _setup_operator(env, "csv")


def _setup_parquet(env: BenchEnv) -> dict[str, Any]:
    return _setup_operator(env, "parquet")


def query_operator(env: BenchEnv, prepared: dict[str, Any], rows: int, suffix: str) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceQueryOperator

    output = os.path.join(env.workdir, f"contacts-{rows}.{suffix}")
    summary = SalesforceQueryOperator(task_id="query", soql=_soql(rows), output_uri=output).execute({})
    assert summary["rows"] == rows, summary
    return {"rows": rows, "file MB": round(os.path.getsize(output) / 2**20, 1)}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    from simple_salesforce import Salesforce

    from bench.bench_rest_transport import VERSION

    _seed(env)
    session, data = bare_session(env)
    token = session.headers["Authorization"].split(" ", 1)[1]
    sf = Salesforce(instance_url=data.split("/services/")[0], session_id=token, version=VERSION, session=session)
    sf.query("SELECT Id FROM Contact LIMIT 1")  # warm
    return {"sf": sf}


def simple_salesforce_query_all(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    records = prepared["sf"].query_all(_soql(rows))["records"]
    output = os.path.join(env.workdir, f"contacts-ssf-{rows}.csv")
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.strip() for f in FIELDS.split(",")], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    assert len(records) == rows
    return {"rows": rows, "file MB": round(os.path.getsize(output) / 2**20, 1)}


CASES = [
    Case("SalesforceQueryOperator 20k -> CSV", query_operator, {"rows": 20_000, "suffix": "csv"}, _setup_csv),
    Case("SalesforceQueryOperator 200k -> CSV", query_operator, {"rows": 200_000, "suffix": "csv"}, _setup_csv),
    Case("SalesforceQueryOperator 20k -> Parquet", query_operator, {"rows": 20_000, "suffix": "parquet"},
         _setup_parquet),
    Case("SalesforceQueryOperator 200k -> Parquet", query_operator, {"rows": 200_000, "suffix": "parquet"},
         _setup_parquet),
    Case("simple-salesforce query_all 20k -> CSV", simple_salesforce_query_all, {"rows": 20_000},
         _setup_simple_salesforce),
    Case("simple-salesforce query_all 200k -> CSV", simple_salesforce_query_all, {"rows": 200_000},
         _setup_simple_salesforce),
]
