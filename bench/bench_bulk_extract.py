"""Bulk API extract: ``ROWS`` Account rows (7 fields) to one CSV file (one header).

**The floor** is the best per round of bare ``requests`` clients that create the query job, poll
every ``POLL`` s like the cases (one candidate also every ``FLOOR_POLL`` s, one every ``SLOW_POLL`` s:
see ``bench_bulk``) and write the pages to one file, dropping the header every page after the first
repeats: serial pages at the emulator's default page size (every row, when no ``maxRecords`` is
asked), and ``resultPages`` (API 58.0+) downloaded ``PARALLEL_PAGES`` at a time, written in order.

Peers: ``SalesforceBulkQueryOperator`` (pages streamed to the file, one header; and with
``max_parallel_pages``), simple-salesforce ``bulk2.download`` (polling every ``POLL`` s, and at its
default 5 s), simple-salesforce ``bulk`` (1.0) ``query`` written with ``csv``, and the official
provider's extract path (no Bulk query: ``SalesforceHook.make_query``, REST ``query_all``, then
``write_object_to_file`` through pandas, as its transfer operators do; see
``bench.official_provider``). The first setup loads the rows (see ``bench_bulk``).
"""

from __future__ import annotations

import os
from typing import Any

from concurrent.futures import ThreadPoolExecutor

from bench.bench_bulk import FLOOR_POLL, POLL, ROWS, SLOW_POLL, SOQL, _csv_path, _floor_ingest_rows, _poll, _reset, _warm_hook, \
    simple_salesforce_client
from bench.rest_support import bare_session, token as _token
from bench.runner import BenchEnv, Case

GROUP = f"Bulk API extract: {ROWS:,} Account rows, 7 fields, to CSV (emulator, loopback)"


def _setup_extract(env: BenchEnv) -> dict[str, Any]:
    session, data = bare_session(env)
    have = session.get(f"{data}/query", params={"q": "SELECT COUNT() FROM Account"}, timeout=120).json()["totalSize"]
    if have != ROWS:
        _reset(env)
        _floor_ingest_rows(env, _csv_path(env))
    return {"token": _token(env)}


def _setup_operator_extract(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup_extract(env)
    _warm_hook()
    return prepared


def operator_extract(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    output = os.path.join(env.workdir, "bulk-extract.csv")
    summary = SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=output, deferrable=False,
                                          poll_interval=POLL).execute({"params": {}})
    assert summary["records"] == ROWS, summary
    return {"rows": ROWS, "file MB": round(os.path.getsize(output) / 2**20, 1)}


def _setup_simple_salesforce_extract(env: BenchEnv) -> dict[str, Any]:
    import simple_salesforce  # noqa: F401  (imported before the clock)

    return _setup_extract(env)


def simple_salesforce_bulk2_download(env: BenchEnv, prepared: dict[str, Any], wait: float = POLL) -> dict[str, Any]:
    """``bulk2.download``: its pages (50,000 rows by default) to files in a folder, one a page."""
    folder = os.path.join(env.workdir, "ssf-extract")
    os.makedirs(folder, exist_ok=True)
    sf = simple_salesforce_client(env, prepared["token"])
    results = sf.bulk2.Account.download(SOQL, path=folder, wait=wait)
    rows = sum(int(r["number_of_records"]) for r in results)
    assert rows == ROWS, results
    return {"rows": rows}


def simple_salesforce_bulk_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce's Bulk 1.0 query (JSON results, as dicts in memory) written to a CSV file."""
    import csv

    sf = simple_salesforce_client(env, prepared["token"])
    rows = sf.bulk.Account.query(SOQL, lazy_operation=False, wait=POLL)
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


def _query_job(session: Any, data: str, poll: float) -> str:
    job = session.post(f"{data}/jobs/query", json={"operation": "query", "query": SOQL}, timeout=60).json()
    _poll(session, f"{data}/jobs/query/{job['id']}", interval=poll)
    return job["id"]


def _write_page(out: Any, chunks: Any, first: bool) -> None:
    """Write one page's bytes; after the first page, drop the header line every page repeats."""
    skip = not first
    for chunk in chunks:
        if skip:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue  # (a header longer than a chunk: keep looking)
            chunk, skip = chunk[newline + 1:], False
        out.write(chunk)


def floor_extract(env: BenchEnv, prepared: dict[str, Any], max_records: int | None = None,
                  poll: float = POLL) -> dict[str, Any]:
    """A floor candidate: serial pages (``max_records`` per page, the emulator's default when None),
    the job polled every ``poll`` s."""
    session, data = bare_session(env, token=prepared["token"])
    job_id = _query_job(session, data, poll)
    output = os.path.join(env.workdir, "floor-extract.csv")
    locator, pages = None, 0
    with open(output, "wb") as out:
        while True:
            params = {k: v for k, v in (("locator", locator), ("maxRecords", max_records)) if v}
            with session.get(f"{data}/jobs/query/{job_id}/results", params=params, stream=True,
                             timeout=600) as reply:
                reply.raise_for_status()
                _write_page(out, reply.iter_content(1 << 16), pages == 0)
                locator = reply.headers.get("Sforce-Locator")
            pages += 1
            if not locator or locator == "null":
                break
    return {"rows": ROWS, "pages": pages, "file MB": round(os.path.getsize(output) / 2**20, 1)}


def floor_extract_parallel(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """A floor candidate: every ``resultPages`` URL, ``PARALLEL_PAGES`` downloads at a time (each
    page held whole until its turn), written in order."""
    session, data = bare_session(env, PARALLEL_PAGES, prepared["token"])
    job_id = _query_job(session, data, POLL)
    instance = data.split("/services/")[0]
    urls, listing = [], f"{data}/jobs/query/{job_id}/resultPages"
    while listing:
        reply = session.get(listing, timeout=60).json()
        urls += [instance + page["resultUrl"] for page in reply["resultPages"]]
        listing = instance + reply["nextRecordsUrl"] if reply["nextRecordsUrl"] else None

    def fetch(url: str) -> bytes:
        reply = session.get(url, timeout=600)
        reply.raise_for_status()
        return reply.content

    output = os.path.join(env.workdir, "floor-extract-parallel.csv")
    with open(output, "wb") as out, ThreadPoolExecutor(PARALLEL_PAGES) as pool:
        for start in range(0, len(urls), PARALLEL_PAGES * 2):  # a bounded window: memory stays a few pages
            for n, page in enumerate(pool.map(fetch, urls[start:start + PARALLEL_PAGES * 2])):
                _write_page(out, [page], start + n == 0)
    return {"rows": ROWS, "pages": len(urls), "file MB": round(os.path.getsize(output) / 2**20, 1)}


#: Result pages downloaded at once by the parallel cases (``resultPages``, API 58.0+).
PARALLEL_PAGES = 4


def operator_extract_parallel(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The operator with ``max_parallel_pages``: the emulator cuts its default 10,000-row pages,
    downloaded ``PARALLEL_PAGES`` at a time, spilled and written in order."""
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    output = os.path.join(env.workdir, "bulk-extract-parallel.csv")
    summary = SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=output, deferrable=False,
                                          poll_interval=POLL, max_parallel_pages=PARALLEL_PAGES).execute({"params": {}})
    assert summary["records"] == ROWS, summary
    return {"rows": ROWS, "file MB": round(os.path.getsize(output) / 2**20, 1)}


CASES = [
    Case("floor candidate: bare requests, serial pages", floor_extract, {}, _setup_extract, floor=True),
    Case(f"floor candidate: bare requests, serial pages, polls every {FLOOR_POLL:g} s", floor_extract,
         {"poll": FLOOR_POLL}, _setup_extract, floor=True),
    Case(f"floor candidate: bare requests, serial pages, polls every {SLOW_POLL:g} s", floor_extract,
         {"poll": SLOW_POLL}, _setup_extract, floor=True),
    Case(f"floor candidate: bare requests, resultPages x{PARALLEL_PAGES}", floor_extract_parallel, {},
         _setup_extract, floor=True),
    Case("SalesforceBulkQueryOperator -> CSV", operator_extract, {}, _setup_operator_extract),
    Case(f"SalesforceBulkQueryOperator -> CSV, max_parallel_pages={PARALLEL_PAGES}", operator_extract_parallel, {},
         _setup_operator_extract),
    Case(f"simple-salesforce bulk2.download, wait={POLL:g}", simple_salesforce_bulk2_download, {},
         _setup_simple_salesforce_extract),
    Case("simple-salesforce bulk2.download, default wait (5 s)", simple_salesforce_bulk2_download, {"wait": 5},
         _setup_simple_salesforce_extract),
    Case(f"simple-salesforce bulk (1.0) query -> csv, wait={POLL:g}", simple_salesforce_bulk_query, {},
         _setup_simple_salesforce_extract),
    Case("official SalesforceHook.make_query -> write_object_to_file CSV", official_make_query, {},
         _setup_official_extract),
]
