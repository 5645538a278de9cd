"""Upsert 10,000 Account records (on ``Id``), every record's outcome known: wall, CPU and API calls.

**The floor** is the best per round of bare ``requests`` clients: sObject Collections upserts (200
records a call) one call at a time and ``CONCURRENCY`` in flight, and one Bulk 2.0 upsert job (the
records as CSV, successful and failed results read back) polled every ``FLOOR_POLL`` s, every
``POLL`` s like the cases (each poll costs the emulator time its worker needs), and, the CPU floor
of a peer polling at its 5 s default, every ``SLOW_POLL`` s (see ``bench_bulk``).

Peers, each told the same concurrency and polling interval where it has the knob:
``SalesforceUpsertRecordsOperator`` (the hook's ``save_records``: 200 per call, ``CONCURRENCY`` in
flight, results in input order, failures file); simple-salesforce sObject Collections through its
``restful`` call, ``CONCURRENCY`` threads; simple-salesforce ``bulk2.upsert(records=...)`` with its
results read back, polling every ``POLL`` s and at its default 5 s; the official provider's
``SalesforceHook`` (its ``get_conn()`` is a simple-salesforce client; it logs in through SOAP in the
clock) sending the same Collections calls; and, labelled as the strawman it is, simple-salesforce
with one call per record (``sf.Account.upsert``), the usual hand-written loop. Records are upserted
on ``Id`` (the runner's emulator has no custom External ID field); each round's setup seeds its own
10,000 accounts before the clock starts.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from typing import Any

from bench.bench_bulk import FLOOR_POLL, POLL, SLOW_POLL, _poll
from bench.rest_support import bare_session, chunks, collections_insert, reset_api_usage, token
from bench.runner import BenchEnv, Case

GROUP = "REST upsert: 10,000 Account records (emulator, loopback)"
RECORDS = 10_000
CONCURRENCY = 4
FIELDS = ("Id", "Rating", "Industry")


def _setup(env: BenchEnv) -> dict[str, Any]:
    reset_api_usage(env)  # 10,000 single calls a round would exhaust the org's daily allowance
    ids = collections_insert(env, "Account", ({"Name": f"Upsert bench {n}"} for n in range(RECORDS)))
    return {"records": [{"Id": record_id, "Rating": "Hot", "Industry": "Energy"} for record_id in ids],
            "token": token(env)}


def _body(chunk: list[dict[str, Any]]) -> dict[str, Any]:
    return {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, **r} for r in chunk]}


def _collections(records: list[dict[str, Any]], send: Callable[[dict[str, Any]], list[dict[str, Any]]],
                 concurrency: int) -> int:
    """Send every 200-record Collections body through ``send``, ``concurrency`` at a time: successes."""
    def one(chunk: list[dict[str, Any]]) -> int:
        return sum(1 for result in send(_body(chunk)) if result["success"])

    if concurrency == 1:
        return sum(map(one, chunks(records)))
    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(one, chunks(records)))


def bare_collections(env: BenchEnv, prepared: dict[str, Any], concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """A floor candidate: Collections upserts from a bare ``requests`` session."""
    session, data = bare_session(env, concurrency, prepared["token"])
    url = f"{data}/composite/sobjects/Account/Id"

    def send(body: dict[str, Any]) -> list[dict[str, Any]]:
        reply = session.patch(url, json=body, timeout=300)
        reply.raise_for_status()
        return reply.json()

    assert _collections(prepared["records"], send, concurrency) == RECORDS
    return {"records": RECORDS}


def bare_bulk2(env: BenchEnv, prepared: dict[str, Any], poll: float = FLOOR_POLL) -> dict[str, Any]:
    """A floor candidate: one Bulk 2.0 upsert job (the records as CSV) polled every ``poll`` s, its
    results read back."""
    session, data = bare_session(env, token=prepared["token"])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows([r[f] for f in FIELDS] for r in prepared["records"])
    job = session.post(f"{data}/jobs/ingest", json={"object": "Account", "operation": "upsert", "lineEnding": "LF",
                                                    "externalIdFieldName": "Id"}, timeout=60).json()
    session.put(f"{data}/jobs/ingest/{job['id']}/batches", data=text.getvalue().encode(),
                headers={"Content-Type": "text/csv"}, timeout=300).raise_for_status()
    session.patch(f"{data}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=60).raise_for_status()
    info = _poll(session, f"{data}/jobs/ingest/{job['id']}", interval=poll)
    assert int(info["numberRecordsProcessed"]) == RECORDS and int(info["numberRecordsFailed"]) == 0, info
    for kind in ("successfulResults", "failedResults"):
        session.get(f"{data}/jobs/ingest/{job['id']}/{kind}", timeout=300).raise_for_status()
    return {"records": RECORDS}


def _setup_operator(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
    from airflow_provider_salesforce_suite.operators.rest import SalesforceUpsertRecordsOperator  # noqa: F401

    prepared = _setup(env)
    SalesforceRestHook().limits()  # imports and the process-wide token cache
    return prepared


def upsert_operator(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceUpsertRecordsOperator

    operator = SalesforceUpsertRecordsOperator(task_id="upsert", sobject="Account", external_id_field="Id",
                                               records=prepared["records"], concurrency=CONCURRENCY)
    summary = operator.execute({})
    assert summary["succeeded"] == RECORDS, summary
    return {"records": RECORDS}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    import simple_salesforce  # noqa: F401  (imported before the clock)

    return _setup(env)


def _simple_salesforce(env: BenchEnv, prepared: dict[str, Any]) -> Any:
    from bench.bench_bulk import simple_salesforce_client

    return simple_salesforce_client(env, prepared["token"])


def _restful_collections(sf: Any, records: list[dict[str, Any]]) -> int:
    def send(body: dict[str, Any]) -> list[dict[str, Any]]:
        return sf.restful("composite/sobjects/Account/Id", method="PATCH", json=body, timeout=300)

    return _collections(records, send, CONCURRENCY)


def simple_salesforce_collections(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    assert _restful_collections(_simple_salesforce(env, prepared), prepared["records"]) == RECORDS
    return {"records": RECORDS}


def simple_salesforce_bulk2(env: BenchEnv, prepared: dict[str, Any], wait: float = POLL) -> dict[str, Any]:
    bulk2 = _simple_salesforce(env, prepared).bulk2.Account
    results = bulk2.upsert(records=prepared["records"], external_id_field="Id", wait=wait)
    for result in results:
        bulk2.get_successful_records(result["job_id"])
        bulk2.get_failed_records(result["job_id"])
    assert sum(r["numberRecordsProcessed"] - r["numberRecordsFailed"] for r in results) == RECORDS, results
    return {"records": RECORDS}


def simple_salesforce_per_record(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    account = _simple_salesforce(env, prepared).Account
    for record in prepared["records"]:
        values = {k: v for k, v in record.items() if k != "Id"}
        account.upsert(f"Id/{record['Id']}", values)
    return {"records": RECORDS}


def _setup_official(env: BenchEnv) -> dict[str, Any]:
    from bench.official_provider import activate

    activate(env)
    import airflow.providers.salesforce.hooks.salesforce  # noqa: F401  (imports before the clock)

    return _setup(env)


def official_hook_collections(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The official provider's ``SalesforceHook``: it has no save method of its own, so its
    ``get_conn()`` (simple-salesforce, after a SOAP login in the clock) sends the Collections calls."""
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    from bench.official_provider import CONN_ID

    sf = SalesforceHook(salesforce_conn_id=CONN_ID).get_conn()
    assert _restful_collections(sf, prepared["records"]) == RECORDS
    return {"records": RECORDS}


CASES = [
    Case("floor candidate: bare requests, Collections x1", bare_collections, {"concurrency": 1}, _setup, floor=True),
    Case(f"floor candidate: bare requests, Collections x{CONCURRENCY}", bare_collections, {}, _setup, floor=True),
    Case(f"floor candidate: bare requests, Bulk 2.0 upsert job, polls every {FLOOR_POLL:g} s", bare_bulk2, {},
         _setup, floor=True),
    Case(f"floor candidate: bare requests, Bulk 2.0 upsert job, polls every {POLL:g} s", bare_bulk2,
         {"poll": POLL}, _setup, floor=True),
    Case(f"floor candidate: bare requests, Bulk 2.0 upsert job, polls every {SLOW_POLL:g} s", bare_bulk2,
         {"poll": SLOW_POLL}, _setup, floor=True),
    Case("SalesforceUpsertRecordsOperator", upsert_operator, setup=_setup_operator),
    Case(f"simple-salesforce restful Collections x{CONCURRENCY}", simple_salesforce_collections,
         setup=_setup_simple_salesforce),
    Case(f"simple-salesforce bulk2.upsert + results, wait={POLL:g}", simple_salesforce_bulk2,
         setup=_setup_simple_salesforce),
    Case("simple-salesforce bulk2.upsert + results, default wait (5 s)", simple_salesforce_bulk2, {"wait": 5},
         setup=_setup_simple_salesforce),
    Case(f"official SalesforceHook.get_conn() Collections x{CONCURRENCY}", official_hook_collections,
         setup=_setup_official),
    Case("strawman: simple-salesforce, 1 call per record", simple_salesforce_per_record,
         setup=_setup_simple_salesforce),
]
