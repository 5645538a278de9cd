"""Bulk API ingest: ``ROWS`` Account rows (6 fields) from a CSV file, each row's result written to a file.

**The floor** is the best per round of bare ``requests`` clients doing the same work (create, upload
the same bytes, close, poll every ``POLL`` s like the cases, download each job's successful, failed and unprocessed
results to files), in the splits a careful engineer would try: the whole file as one job, and the
file cut into jobs of ``SF_BENCH_BULK_SPLITS`` rows (25k/50k/100k/250k, those below ``ROWS``)
uploaded ``FLOOR_CONCURRENCY`` at a time, each polled and its results downloaded as it finishes, so
polls overlap; the same jobs pipelined (uploaded one after another, each next upload overlapping
the emulator's work on the jobs before it, while a pool polls them: our operator's pattern); and the
one job polled every ``SLOW_POLL`` s (each poll costs client CPU: the CPU floor of a peer polling at
its 5 s default). The cut finds the n-th newline
with ``bytes.count`` over a memory map (C speed, no per-row Python): the fixture's values hold no
newline.

Peers: ``SalesforceBulkIngestOperator`` (streams the file, writes successful/failed/unprocessed
files tied to input rows); simple-salesforce ``bulk2.insert(csv_file=...)`` followed by its
``get_successful_records``/``get_failed_records`` to files for each job (its ``insert`` returns
counts only; its ``get_unprocessed_records`` path, ``unprocessedRecords``, is not the documented
``unprocessedrecords`` the emulator serves), polling every ``POLL`` s and, second row, at its default 5 s;
simple-salesforce ``bulk`` (Bulk 1.0, the client the official provider's ``SalesforceBulkOperator``
uses; the records as a list; it polls every 5 s, no knob); and the official provider's
``SalesforceBulkOperator`` (``apache-airflow-providers-salesforce``, installed apart from ``.venv``,
reached through its connection only: see ``bench.official_provider``) with the records as its
``payload`` list, read from the CSV before the clock but counted in its peak RSS. Each setup resets
the emulator so every round loads into an empty org. Extract cases are in ``bench_bulk_extract``.
``ROWS`` is overridable with ``SF_BENCH_BULK_ROWS``.
"""

from __future__ import annotations

import csv
import mmap
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.rest_support import bare_session, token as _token
from bench.runner import BenchEnv, Case

ROWS = int(os.environ.get("SF_BENCH_BULK_ROWS", "100000"))
GROUP = f"Bulk API ingest: {ROWS:,} Account rows, 6 fields (emulator, loopback)"
HEADER = ["Name", "AccountNumber", "NumberOfEmployees", "Industry", "Phone", "Description"]
SOQL = "SELECT Id, Name, AccountNumber, NumberOfEmployees, Industry, Phone, Description FROM Account"
POLL = 0.2
#: The extract and upsert floors poll their short jobs 4x as often as the cases, so that when a job
#: finishes cannot favour a case (ingest's long jobs do not: each poll costs the emulator, one GIL,
#: time its worker needs, and a candidate polling every 0.05 s never won).
FLOOR_POLL = 0.05
#: And one polls at the peers' default (simple-salesforce's 5 s): each poll costs client CPU, so the
#: CPU floor of a case that polls rarely is a bare client that polls as rarely.
SLOW_POLL = 5.0
#: Rows per job the floor's split candidates try (those below ``ROWS``).
SPLITS = [int(n) for n in os.environ.get("SF_BENCH_BULK_SPLITS", "25000,50000,100000,250000").split(",")]
FLOOR_CONCURRENCY = 4
RESULTS = ("successfulResults", "failedResults", "unprocessedrecords")


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


def _poll(session: requests.Session, url: str, done: tuple[str, ...] = ("JobComplete",),
          interval: float = FLOOR_POLL) -> dict[str, Any]:
    """Poll a Bulk 2.0 job until ``done`` (every ``interval`` s; a bare client's loop)."""
    while True:
        info = session.get(url, timeout=60).json()
        if info["state"] in done or info["state"] in ("Failed", "Aborted"):
            assert info["state"] in done, info
            return info
        time.sleep(interval)


def _submit_job(session: requests.Session, data: str, body: Any) -> str:
    """Create, upload ``body`` (bytes or a file) and close one insert job: its id."""
    job = session.post(f"{data}/jobs/ingest", json={"object": "Account", "operation": "insert",
                                                    "lineEnding": "LF"}, timeout=60).json()
    session.put(f"{data}/jobs/ingest/{job['id']}/batches", data=body,
                headers={"Content-Type": "text/csv"}, timeout=600).raise_for_status()
    session.patch(f"{data}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=60).raise_for_status()
    return job["id"]


def _ingest_job(session: requests.Session, data: str, body: Any, poll: float = POLL) -> tuple[str, int]:
    """Submit one insert job and poll it: its id and rows processed."""
    job_id = _submit_job(session, data, body)
    info = _poll(session, f"{data}/jobs/ingest/{job_id}", interval=poll)
    return job_id, int(info["numberRecordsProcessed"])


def _floor_ingest_rows(env: BenchEnv, path: str) -> int:
    session, data = bare_session(env)
    with open(path, "rb") as handle:
        return _ingest_job(session, data, handle)[1]


def _download_results(session: requests.Session, data: str, job_id: str, folder: str) -> None:
    """Stream a job's three result sets to files, as they are (what a bare client keeps)."""
    for kind in RESULTS:
        with session.get(f"{data}/jobs/ingest/{job_id}/{kind}", stream=True, timeout=600) as reply, \
                open(os.path.join(folder, f"{job_id}-{kind}.csv"), "wb") as out:
            reply.raise_for_status()
            for chunk in reply.iter_content(1 << 16):
                out.write(chunk)


def cut_points(view: Any, start: int, rows: int) -> list[int]:
    """Offsets that cut ``view`` (CSV bytes, one record a line, LF) after every ``rows`` lines from
    ``start``, ending with ``len(view)``. Guesses each cut from the mean line length, counts the
    guess's lines with ``bytes.count`` and corrects it a line at a time with ``find``/``rfind``, so
    Python runs per piece and per line of correction, never per row.

    :param view: the bytes (``bytes`` or a memory map: slices of it are counted).
    :param start: offset of the first data line (after the header).
    :param rows: lines per piece.
    """
    size, cuts, position = len(view), [], start
    while position < size:
        sample = view[position:min(size, position + (1 << 16))]
        mean = max(1, len(sample) // max(1, sample.count(b"\n")))
        ending = view.find(b"\n", min(size, position + rows * mean) - 1)  # the guess, at a line's end
        guess = ending + 1 if ending >= 0 else size
        seen = view[position:guess].count(b"\n") + (view[guess - 1:guess] != b"\n")  # (+ a last unended line)
        while seen < rows and guess < size:  # short: step forward a line at a time (a few lines)
            guess = view.find(b"\n", guess) + 1 or size
            seen += 1
        while seen > rows:  # long: step back
            guess = view.rfind(b"\n", position, guess - 1) + 1
            seen -= 1
        cuts.append(guess)
        position = guess
    return cuts


# -- ingest ------------------------------------------------------------------------------------------------
# Setups: the file, an empty org, imports and the token before the clock; runs build their client.
def _setup_ingest(env: BenchEnv) -> dict[str, Any]:
    path = _csv_path(env)
    _reset(env)
    return {"path": path, "token": _token(env)}


def _setup_operator_ingest(env: BenchEnv) -> dict[str, Any]:
    prepared = _setup_ingest(env)
    _warm_hook()
    return prepared


def _warm_hook() -> None:
    """Imports and authentication before the clock (the token is cached process-wide); and
    Airflow's plugins, which the Task Runner loads before ``execute`` (building the template
    context) and ``ObjectStoragePath`` file operations consult (hook lineage) -- outside a Task
    Runner the first file write would pay for loading them inside the clock."""
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
    from airflow_provider_salesforce_suite.io import iter_records  # noqa: F401  (the file layer)
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator  # noqa: F401

    integrate_macros_plugins()

    hook = SalesforceBulkHook()
    hook.request("GET", hook.data_url("limits"))


def operator_ingest(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

    op = SalesforceBulkIngestOperator(task_id="load", sobject="Account", source=prepared["path"], deferrable=False,
                                      results_dir=os.path.join(env.workdir, "bulk-results"), poll_interval=POLL)
    summary = op.execute({"params": {}})
    assert summary["processed"] == ROWS, summary
    return {"rows": ROWS}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    import simple_salesforce  # noqa: F401  (imported before the clock)

    return _setup_ingest(env)


def simple_salesforce_client(env: BenchEnv, token: tuple[str, str] | None = None) -> Any:
    """A simple-salesforce client on a bare session with the emulator's token (no call made)."""
    from simple_salesforce import Salesforce

    from bench.bench_rest_transport import VERSION

    session, data = bare_session(env, token=token)
    token_value = session.headers["Authorization"].split(" ", 1)[1]
    return Salesforce(instance_url=data.split("/services/")[0], session_id=token_value, version=VERSION,
                      session=session)


def simple_salesforce_bulk2_insert(env: BenchEnv, prepared: dict[str, Any], wait: float = POLL) -> dict[str, Any]:
    """``bulk2.insert`` (counts only), then each job's three result sets to files, as a user who
    needs every row's outcome writes it."""
    folder = os.path.join(env.workdir, "ssf-results")
    os.makedirs(folder, exist_ok=True)
    bulk2 = simple_salesforce_client(env, prepared["token"]).bulk2.Account
    results = bulk2.insert(csv_file=prepared["path"], wait=wait)
    for result in results:
        job_id = result["job_id"]
        bulk2.get_successful_records(job_id, file=os.path.join(folder, f"{job_id}-successful.csv"))
        bulk2.get_failed_records(job_id, file=os.path.join(folder, f"{job_id}-failed.csv"))
        # (not get_unprocessed_records: it asks for ``unprocessedRecords``, which the emulator, spelling the
        # path as Salesforce documents it, ``unprocessedrecords``, does not serve; on an all-success job
        # that set is a header only)
    processed = sum(int(r["numberRecordsProcessed"]) for r in results)
    assert processed == ROWS, results
    return {"rows": ROWS, "jobs": len(results)}


def _load_records(prepared: dict[str, Any]) -> dict[str, Any]:
    """Bulk 1.0 clients take a list of dicts: load the CSV into one before the clock (it still counts
    in the case's peak RSS)."""
    with open(prepared["path"], newline="") as handle:
        return {**prepared, "records": list(csv.DictReader(handle))}


def _setup_simple_salesforce_v1(env: BenchEnv) -> dict[str, Any]:
    return _load_records(_setup_simple_salesforce(env))


def simple_salesforce_bulk_insert(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce's Bulk 1.0 client, as the official provider's ``SalesforceBulkOperator``
    calls it (JSON batches of 10,000, every row's result returned; it polls each batch every 5 s,
    with no way to ask for less)."""
    sf = simple_salesforce_client(env, prepared["token"])
    results = sf.bulk.Account.insert(prepared["records"], batch_size=10_000)
    assert sum(1 for r in results if r["success"]) == ROWS, results[:3]
    return {"rows": ROWS}


def _setup_official(env: BenchEnv) -> dict[str, Any]:
    from bench.official_provider import activate

    activate(env)
    import airflow.providers.salesforce.operators.bulk  # noqa: F401  (imports before the clock)

    return _load_records(_setup_ingest(env))


def official_bulk_operator(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The official provider's ``SalesforceBulkOperator`` (simple-salesforce Bulk 1.0 underneath, as
    above, every row's result returned); it builds its hook in ``execute``, so its SOAP login is
    inside the clock (one call)."""
    from airflow.providers.salesforce.operators.bulk import SalesforceBulkOperator

    from bench.official_provider import CONN_ID

    results = SalesforceBulkOperator(task_id="load", operation="insert", object_name="Account",
                                     payload=prepared["records"], batch_size=10_000,
                                     salesforce_conn_id=CONN_ID).execute({"params": {}})
    assert len(results) == ROWS and all(r["success"] for r in results), results[:3]
    return {"rows": ROWS}


def floor_ingest(env: BenchEnv, prepared: dict[str, Any], split: int | None = None,
                 poll: float = POLL, pipelined: bool = False) -> dict[str, Any]:
    """A floor candidate: the file as one job (``split`` None), or cut into jobs of ``split`` rows,
    polled every ``poll`` s, every job's results downloaded to files as it finishes. The jobs are
    sent ``FLOOR_CONCURRENCY`` at a time, or, ``pipelined``, uploaded one after another (each next
    upload overlapping the emulator's work on the jobs before it) while a pool polls them."""
    folder = os.path.join(env.workdir, "floor-results")
    os.makedirs(folder, exist_ok=True)
    session, data = bare_session(env, FLOOR_CONCURRENCY, prepared["token"])
    if split is None:
        with open(prepared["path"], "rb") as handle:
            job_id, processed = _ingest_job(session, data, handle, poll)
        _download_results(session, data, job_id, folder)
        return {"rows": processed, "jobs": 1}
    with open(prepared["path"], "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        body_start = view.find(b"\n") + 1
        header = view[:body_start]
        cuts = cut_points(view, body_start, split)
        bounds = list(zip([body_start, *cuts], cuts))

        def one(bound: tuple[int, int]) -> int:
            job_id, processed = _ingest_job(session, data, header + view[bound[0]:bound[1]], poll)
            _download_results(session, data, job_id, folder)
            return processed

        def finish(job_id: str) -> int:
            info = _poll(session, f"{data}/jobs/ingest/{job_id}", interval=poll)
            _download_results(session, data, job_id, folder)
            return int(info["numberRecordsProcessed"])

        with ThreadPoolExecutor(FLOOR_CONCURRENCY) as pool:
            if pipelined:
                waits = [pool.submit(finish, _submit_job(session, data, header + view[a:b])) for a, b in bounds]
                processed = sum(wait.result() for wait in waits)
            else:
                processed = sum(pool.map(one, bounds))
    assert processed == ROWS, processed
    return {"rows": processed, "jobs": len(bounds)}


CASES = [
    Case("floor candidate: bare requests, 1 job", floor_ingest, {}, _setup_ingest, floor=True),
    Case(f"floor candidate: bare requests, 1 job, polls every {SLOW_POLL:g} s", floor_ingest, {"poll": SLOW_POLL},
         _setup_ingest, floor=True),
    *[Case(f"floor candidate: bare requests, jobs of {split // 1000}k x{FLOOR_CONCURRENCY}", floor_ingest,
           {"split": split}, _setup_ingest, floor=True) for split in SPLITS if split < ROWS],
    *[Case(f"floor candidate: bare requests, jobs of {split // 1000}k pipelined", floor_ingest,
           {"split": split, "pipelined": True}, _setup_ingest, floor=True) for split in SPLITS if split < ROWS],
    Case("SalesforceBulkIngestOperator (CSV file)", operator_ingest, {}, _setup_operator_ingest),
    Case(f"simple-salesforce bulk2.insert(csv_file) + results, wait={POLL:g}", simple_salesforce_bulk2_insert, {},
         _setup_simple_salesforce),
    Case("simple-salesforce bulk2.insert(csv_file) + results, default wait (5 s)", simple_salesforce_bulk2_insert,
         {"wait": 5}, _setup_simple_salesforce),
    Case("simple-salesforce bulk (1.0) insert(list), default wait (5 s, no knob)", simple_salesforce_bulk_insert, {},
         _setup_simple_salesforce_v1),
    Case("official SalesforceBulkOperator (payload list; 5 s polls, no knob)", official_bulk_operator, {},
         _setup_official),
]
