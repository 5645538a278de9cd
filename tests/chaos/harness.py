"""The chaos harness: run one load task like an Airflow worker under the fault mix, kill one of
its tries with SIGKILL mid-job, retry it as Airflow does, then count what reached the org.

Each try is a separate process (:mod:`tests.chaos.worker`) with the same dag_id/run_id/task_id,
the next try_number and the same file-backed task state store. The try chosen for the kill sees
only slow replies on the requests that carry data (uploads, batches, Collections calls) and is
killed right after its k-th such request (k drawn from the seed), so the kill lands mid-job at any
size; every other try runs under the fault mix.
After the last try the harness clears the faults and queries every row's unique key back.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.chaos.faults import fault_mix

#: The custom field every chaos row carries: its unique key, queried back to count rows in the org.
#: Not unique in the emulator's schema (tests/conftest.py ``custom_emulator``), so a record inserted
#: twice shows as a duplicate instead of failing.
KEY_FIELD = "External_Id__c"
SOBJECT = "Account"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Results of this session's chaos cases (printed at the end; written out with SF_CHAOS_REPORT).
RESULTS: list[ChaosResult] = []
#: Latency added to the data requests of the try that is killed (so the kill lands between them).
KILL_TRY_LATENCY_MS = 300


def full_size() -> bool:
    """Whether this is the full run (``make chaos`` sets ``SF_CHAOS_SIZE=full``)."""
    return os.environ.get("SF_CHAOS_SIZE", "reduced") == "full"


@dataclass(frozen=True)
class ChaosCase:
    """One operator task under chaos.

    :param operator: ``bulk`` (SalesforceBulkIngestOperator) or ``rest`` (SalesforceSaveRecordsOperator).
    :param operation: ``insert`` or ``upsert`` (on :data:`KEY_FIELD`).
    :param rows: input records.
    :param api: Bulk API ``"2.0"`` or ``"1.0"``.
    :param per_unit: records per upload (Bulk 2.0 job, Bulk 1.0 batch) or per Collections call.
    :param concurrency: REST: Collections calls in flight.
    :param idempotency_field: REST insert: the field the operator keys each record with, so that a
        retry looks up records whose outcome is unknown instead of sending them again.
    """

    operator: str
    operation: str
    rows: int
    api: str | None = None
    per_unit: int = 200
    concurrency: int = 4
    idempotency_field: str | None = None

    @property
    def name(self) -> str:
        kind = f"bulk{self.api[0]}" if self.operator == "bulk" else "rest"
        keyed = "-keyed" if self.idempotency_field else ""
        return f"{kind}-{self.operation}{keyed}-{self.rows}"

    @property
    def units(self) -> int:
        """Requests that carry the data: one per upload, batch or Collections call."""
        return math.ceil(self.rows / self.per_unit)

    @property
    def unit_request(self) -> tuple[str, str, re.Pattern[str]]:
        """(method, path prefix, full path pattern) of the requests that carry the data."""
        if self.operator == "bulk" and self.api == "2.0":
            return "PUT", "/services/data/", re.compile(r"^PUT /services/data/v[\d.]+/jobs/ingest/[^/]+/batches$")
        if self.operator == "bulk":
            return "POST", "/services/async/", re.compile(r"^POST /services/async/[\d.]+/job/[^/]+/batch$")
        method = "POST" if self.operation == "insert" else "PATCH"
        return method, "/services/data/", re.compile(rf"^{method} /services/data/v[\d.]+/composite/sobjects(/.*)?$")

    def kill_point(self, rng: random.Random) -> int:
        """After how many data requests the killed try dies: mid-job, with work left to do."""
        in_flight = self.concurrency if self.operator == "rest" else 0
        return rng.randint(1, max(1, self.units - in_flight))

    def operator_kwargs(self, conn_id: str, source: str, results_dir: str) -> dict[str, Any]:
        """The operator's arguments (as a DAG file would give them)."""
        common: dict[str, Any] = {"salesforce_conn_id": conn_id, "sobject": SOBJECT, "operation": self.operation,
                                  "source": source}
        if self.operation == "upsert":
            common["external_id_field"] = KEY_FIELD
        if self.operator == "bulk":
            return {**common, "api": self.api, "results_dir": results_dir, "poll_interval": 0.2,
                    "max_records_per_upload": self.per_unit}
        if self.idempotency_field:
            common["idempotency_field"] = self.idempotency_field
        return {**common, "batch_size": self.per_unit, "concurrency": self.concurrency}


@dataclass
class ChaosResult:
    """What one case did and what the org holds afterwards (one row of the report)."""

    case: str
    rows: int
    status: str = "failed"
    tries: int = 0
    try_outcomes: list[str] = field(default_factory=list)
    killed_try: int | None = None
    kill_after_units: int | None = None
    seconds: float = 0.0
    requests: int = 0
    faults_injected: int = 0
    succeeded: int = 0
    failed: int = 0
    unprocessed: int = 0
    unknown: int = 0
    in_org: int = 0
    duplicates: int = 0
    lost: int = 0
    tokens_checked: int = 0
    secrets_in_logs: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_input(case: ChaosCase, directory: Path) -> Path:
    """The case's input file: CSV for Bulk (passed through as text), JSON Lines for REST."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = (_row(i) for i in range(case.rows))
    if case.operator == "bulk":
        path = directory / "input.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(_row(0)))
            writer.writeheader()
            writer.writerows(rows)
        return path
    path = directory / "input.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def _row(i: int) -> dict[str, Any]:
    return {"Name": f"Chaos row {i}", KEY_FIELD: row_key(i), "NumberOfEmployees": i % 5000}


def row_key(i: int) -> str:
    return f"chaos-{i:07d}"


class ChaosRunner:
    """Runs chaos cases against one emulator.

    :param admin: the emulator's admin client (``fault``, ``clear_faults``, ``stats``).
    :param conn_id: the Airflow connection id of the emulator (also set in ``env``).
    :param env: environment of the worker processes (with ``AIRFLOW_CONN_<ID>``).
    :param count_keys: ``() -> Counter`` of :data:`KEY_FIELD` values in the org.
    :param workdir: where inputs, results, the task state store and try logs go.
    """

    def __init__(self, admin: Any, conn_id: str, env: dict[str, str], count_keys: Callable[[], Counter[str]],
                 workdir: Path) -> None:
        self.admin = admin
        self.conn_id = conn_id
        self.env = env
        self.count_keys = count_keys
        self.workdir = workdir

    def run(self, case: ChaosCase, *, seed: int, max_tries: int, kill_try: int | None = 1, try_timeout: float = 600.0,
            faults: Callable[[int, int], list[dict[str, Any]]] | None = None) -> ChaosResult:
        """Run ``case`` until a try succeeds or ``max_tries`` ran; then count the org's rows.

        :param case: the case.
        :param seed: seeds the fault rules and the kill point.
        :param max_tries: Airflow's ``retries + 1``.
        :param kill_try: the try killed with SIGKILL mid-job (None: no kill).
        :param try_timeout: seconds after which a try is killed as timed out (``execution_timeout``).
        :param faults: ``(try_number, seed) -> rules`` set before each try; default the fault mix,
            seeded ``seed * 1000 + try_number`` (each try its own sequence, the same on every run).
        """
        rng = random.Random(f"{seed}-{case.name}")  # each case its own kill point, the same every run
        base = self.workdir / case.name
        shutil.rmtree(base, ignore_errors=True)  # a new task instance: no state or results of an earlier run
        source = write_input(case, base)
        kwargs = case.operator_kwargs(self.conn_id, str(source), str(base / "results"))
        result = ChaosResult(case=case.name, rows=case.rows)
        # A new DAG run each time: state an operator keeps by run (e.g. a journal) starts afresh.
        run_id = f"chaos__{case.name}__{time.time_ns()}"
        last_summary: dict[str, Any] | None = None
        tokens: set[str] = set()
        before = self.admin.stats()
        started = time.monotonic()
        for try_number in range(1, max_tries + 1):
            kill_after = case.kill_point(rng) if try_number == kill_try else None
            self.admin.clear_faults()
            if kill_after is not None:
                # Only slow data requests on the try to kill, so nothing else ends it before the kill point.
                method, prefix, _ = case.unit_request
                self.admin.fault(latency_ms=KILL_TRY_LATENCY_MS, method=method, path_prefix=prefix)
                result.killed_try, result.kill_after_units = try_number, kill_after
            else:
                for rule in (faults or _mix)(try_number, seed):
                    self.admin.fault(**rule)
            outcome = self._one_try(case, base, kwargs, run_id, try_number, kill_after, try_timeout)
            result.tries = try_number
            failed = outcome["status"] in ("failed", "failed_no_retry")
            result.try_outcomes.append(f"{outcome['status']}: {outcome['error_class']}" if failed
                                       else outcome["status"])
            if outcome.get("summary"):
                last_summary = outcome["summary"]
            tokens.update(outcome.get("tokens") or ())
            if failed:
                result.last_error = outcome["error"]
            if outcome["status"] == "success":
                result.status = "success"
            if outcome["status"] in ("success", "failed_no_retry"):  # Airflow does not retry either
                break
        result.seconds = round(time.monotonic() - started, 1)
        self.admin.clear_faults()
        stats = self.admin.stats()
        result.requests = stats["requests_total"] - before["requests_total"]
        result.faults_injected = stats["faults_injected"] - before["faults_injected"]
        self._account(case, result, last_summary)
        result.tokens_checked = len(tokens)
        result.secrets_in_logs = _secrets_in(base.glob("try-*.log"), tokens)
        return result

    def _one_try(self, case: ChaosCase, base: Path, kwargs: dict[str, Any], run_id: str, try_number: int,
                 kill_after: int | None, try_timeout: float) -> dict[str, Any]:
        outcome_path = base / f"try-{try_number}.json"
        spec = {"operator": case.operator, "kwargs": kwargs, "store": str(base / "task_state_store.json"),
                "outcome": str(outcome_path),
                "ti": {"dag_id": "chaos", "run_id": run_id, "task_id": "load", "try_number": try_number}}
        spec_path = base / f"try-{try_number}.spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        _, _, unit_pattern = case.unit_request
        units_before = self._units(unit_pattern) if kill_after is not None else 0
        with (base / f"try-{try_number}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "tests.chaos.worker", str(spec_path)],
                                       cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + try_timeout
            status = None
            try:
                while process.poll() is None:
                    if kill_after is not None and self._units(unit_pattern) - units_before >= kill_after:
                        os.kill(process.pid, signal.SIGKILL)  # the worker dies: no handler, no clean-up
                        status = "killed"
                        kill_after = None
                    elif time.monotonic() > deadline:
                        os.kill(process.pid, signal.SIGKILL)
                        status = "timeout"
                    time.sleep(0.02)
            finally:
                if process.poll() is None:  # the harness itself stopped (interrupt, error): no orphan worker
                    process.kill()
                process.wait()
        if status is not None:
            return {"status": status, "summary": None, "error_class": None, "error": None}
        if not outcome_path.exists():
            return {"status": "failed", "summary": None, "error_class": f"exit {process.returncode}",
                    "error": (base / f"try-{try_number}.log").read_text(errors="replace")[-2000:]}
        return json.loads(outcome_path.read_text(encoding="utf-8"))

    def _units(self, pattern: re.Pattern[str]) -> int:
        return sum(n for key, n in self.admin.stats()["requests"].items() if pattern.match(key))

    def _account(self, case: ChaosCase, result: ChaosResult, summary: dict[str, Any] | None) -> None:
        """Fill the counts: the final summary's, and what the org holds (duplicates, lost rows)."""
        failed_keys: set[str] = set()
        if summary:
            if case.operator == "bulk":
                result.succeeded, result.failed = summary["processed"], summary["failed"]
                result.unprocessed = summary["unprocessed"]
                failed_files = [summary.get("failed_uri"), summary.get("unprocessed_uri")]
            else:
                result.succeeded, result.failed = summary["succeeded"], summary["failed"]
                result.unknown = summary.get("unknown", 0)  # sent, no answer: reported, never resent blindly
                failed_files = [summary.get("failed_records_uri"), summary.get("outcome_unknown_uri")]
            for uri in failed_files:
                failed_keys |= _keys_in(uri)
        counts = self.count_keys()
        wanted = {row_key(i) for i in range(case.rows)}
        result.in_org = sum(counts.values())
        result.duplicates = sum(n - 1 for n in counts.values() if n > 1)
        result.lost = len(wanted - set(counts) - failed_keys)


def _secrets_in(logs: Any, tokens: set[str]) -> int:
    """How many try logs contain one of the access tokens the tries held."""
    return sum(1 for log in logs if any(token in log.read_text(errors="replace") for token in tokens))


def _mix(try_number: int, seed: int) -> list[dict[str, Any]]:
    return fault_mix(seed * 1000 + try_number)


def _keys_in(uri: str | None) -> set[str]:
    """:data:`KEY_FIELD` values of a result file (CSV or JSON Lines) written by an operator."""
    if not uri:
        return set()
    path = Path(str(uri).removeprefix("file://"))
    if not path.exists():
        return set()
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            return {json.loads(line).get(KEY_FIELD) for line in handle if line.strip()}
        return {row.get(KEY_FIELD) for row in csv.DictReader(handle)}


def format_table(results: list[ChaosResult]) -> str:
    """The results as a markdown table."""
    head = ("| case | rows | result | tries | killed try (after units) | s | requests | faults | "
            "succeeded | failed | unprocessed | unknown | in org | duplicates | lost |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        kill = f"{r.killed_try} ({r.kill_after_units})" if r.killed_try else "-"
        lines.append(f"| {r.case} | {r.rows} | {r.status} | {r.tries} | {kill} | {r.seconds} | {r.requests} | "
                     f"{r.faults_injected} | {r.succeeded} | {r.failed} | {r.unprocessed} | {r.unknown} | {r.in_org} | "
                     f"{r.duplicates} | {r.lost} |")
    return "\n".join(lines)
