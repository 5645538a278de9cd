"""Query 20,000 and 200,000 Contact rows to a file: wall time and peak RSS.

The floor: the better per round of two bare ``requests`` clients following ``nextRecordsUrl`` and
writing each page's records with ``csv.writer`` (the least a client that writes CSV must do: parse
each page's JSON, write its values), one page after another, or with the next page requested
before the current one is written. ``SalesforceQueryOperator`` writes page by page (constant memory): its peak
RSS must be the same for 20,000 and 200,000 rows. For contrast, the usual hand-written export:
simple-salesforce's ``query_all`` (the whole result in memory) then ``csv.DictWriter``. Every client
is built in the clock. The first setup seeds 200,000 contacts through sObject Collections (once per
run; later setups find them).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.rest_support import bare_session, collections_insert, count, reset_api_usage, token
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


def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    import requests  # noqa: F401  (imported before the clock)

    _seed(env)
    return {"token": token(env)}


def bare_query(env: BenchEnv, prepared: dict[str, Any], rows: int, prefetch: bool = False) -> dict[str, Any]:
    """A floor candidate: pages followed by ``nextRecordsUrl``, each written with ``csv.writer`` as
    it arrives; with ``prefetch``, the next page is requested (in a thread) before this one is written."""
    session, data = bare_session(env, token=prepared["token"])
    instance = data.split("/services/")[0]
    fields = [f.strip() for f in FIELDS.split(",")]
    output = os.path.join(env.workdir, f"contacts-floor-{rows}.csv")
    written = 0

    def fetch(url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        reply = session.get(url, params=params, timeout=120)
        reply.raise_for_status()
        return reply.json()

    with open(output, "w", newline="") as handle, ThreadPoolExecutor(1) as pool:
        writer = csv.writer(handle)
        writer.writerow(fields)
        page = fetch(f"{data}/query", {"q": _soql(rows)})
        while True:
            following = None
            if not page["done"] and prefetch:
                following = pool.submit(fetch, instance + page["nextRecordsUrl"])
            writer.writerows([record[f] for f in fields] for record in page["records"])
            written += len(page["records"])
            if page["done"]:
                break
            page = following.result() if following else fetch(instance + page["nextRecordsUrl"])
    assert written == rows, written
    return {"rows": rows, "file MB": round(os.path.getsize(output) / 2**20, 1)}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    import simple_salesforce  # noqa: F401  (imported before the clock)

    _seed(env)
    return {"token": token(env)}


def simple_salesforce_query_all(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    from bench.bench_bulk import simple_salesforce_client

    records = simple_salesforce_client(env, prepared["token"]).query_all(_soql(rows))["records"]
    output = os.path.join(env.workdir, f"contacts-ssf-{rows}.csv")
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.strip() for f in FIELDS.split(",")], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    assert len(records) == rows
    return {"rows": rows, "file MB": round(os.path.getsize(output) / 2**20, 1)}


CASES = [
    *[case for rows, label in ((20_000, "20k"), (200_000, "200k")) for case in (
        Case(f"floor candidate: bare requests {label} -> csv.writer", bare_query, {"rows": rows}, _setup_bare,
             floor=True, job=label),
        Case(f"floor candidate: bare requests {label} -> csv.writer, next page prefetched", bare_query,
             {"rows": rows, "prefetch": True}, _setup_bare, floor=True, job=label),
        Case(f"SalesforceQueryOperator {label} -> CSV", query_operator, {"rows": rows, "suffix": "csv"}, _setup_csv,
             job=label),
        Case(f"simple-salesforce query_all {label} -> CSV", simple_salesforce_query_all, {"rows": rows},
             _setup_simple_salesforce, job=label),
    )],
    # Parquet is other work than CSV (no floor of its own): 200k against 20k shows memory stays flat.
    *[Case(f"SalesforceQueryOperator {label} -> Parquet", query_operator, {"rows": rows, "suffix": "parquet"},
           _setup_parquet, job="Parquet") for rows, label in ((20_000, "20k"), (200_000, "200k"))],
]
