"""End to end through Airflow: the headline benchmarks as real Airflow tasks.

Four DAGs (``bench/airflow_dags/bench_e2e.py``): Bulk ingest of 100,000 Account rows and Bulk
extract of 100,000 (both ``deferrable=True``), REST upsert of 10,000 records (sObject
Collections; it does not defer) and a Streaming API sensor woken by one event. Each runs:

* ``dagtest``: ``dag.test()`` in a fresh process (triggers run in line, in that process), against
  a ``salesforce-suite-emulator`` process; reported: the task's wall time (task instance start to
  end), the whole run's, and the process's peak RSS (worker and in-line triggerer in one);
* ``deployment``: the SQLite + LocalExecutor deployment of ``tests/integration/airflow_procs.py``
  (API server, scheduler, DAG processor, triggerer), the run triggered through the REST API;
  reported: task and run wall time from the metadata database, the task processes' peak RSS
  (``VmHWM`` of the scheduler's descendants started for the run) and the triggerer's peak RSS
  (sampled every 0.2 s; every process of the component summed).

Both also report ``execute s``: the operator's own time (its first ``pre_execute`` to its last
``post_execute``, deferral included, as the DAG file notes them), apart from Airflow's task start-up.
For the streaming DAG, one Opportunity is created once the sensor's trigger holds its subscription
(the emulator's stats); ``event to task done`` is from that commit to the task's end. Rounds
interleave the four DAGs; medians with min and max. Sizes: ``SF_BENCH_AIRFLOW_BULK_ROWS``,
``SF_BENCH_AIRFLOW_REST_RECORDS``. ``make bench-airflow`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import requests

from bench.runner import BenchEnv

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE / "airflow_dags" / "bench_e2e.py"
ROOT = HERE.parent
BULK_ROWS = int(os.environ.get("SF_BENCH_AIRFLOW_BULK_ROWS", "100000"))
REST_RECORDS = int(os.environ.get("SF_BENCH_AIRFLOW_REST_RECORDS", "10000"))
TASKS = {"bulk_ingest": "ingest", "bulk_extract": "extract", "rest_upsert": "upsert", "streaming": "wait"}
PUSH_TOPIC = ("BenchE2E", "SELECT Id, Name, StageName FROM Opportunity")


def _mb(value: float) -> float:
    return round(value / 2**20, 1)


class Emulator:
    """The emulator process's REST API and control API, as the benchmark (not Airflow) uses them.

    :param info: ``start_emulator``'s ``{"url", "connection", "ca_bundle"}``.
    :param data: the directory of the DAGs' files.
    """

    def __init__(self, info: dict[str, str], data: Path) -> None:
        self.url, self.connection = info["url"], info["connection"]
        self.verify: Any = info["ca_bundle"] or True
        self.env = BenchEnv(url=self.url, ca_bundle=info["ca_bundle"] or None, connection_json=self.connection,
                            workdir=str(data))
        self.data = data
        self.http = requests.Session()

    def _token(self) -> str:
        from bench.bench_rest_transport import _token

        return _token(self.env)[0]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.http.request(method, f"{self.url}/services/data/v64.0/{path}", verify=self.verify, timeout=120,
                                  headers={"Authorization": f"Bearer {self._token()}"}, **kwargs)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.http.request(method, f"{self.url}/__emulator__/{path}", json=body, verify=self.verify, timeout=120)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def execute_s(self, dag_id: str, run_id: str) -> dict[str, float]:
        """The operator's own time in a run: its first ``pre_execute`` to its last ``post_execute``
        (see the DAG file), deferral included."""
        try:
            notes = [json.loads(line) for line in (self.data / "timings.jsonl").read_text().splitlines()]
        except FileNotFoundError:
            return {}
        pre = [n["at"] for n in notes if n["dag_id"] == dag_id and n["run_id"] == run_id and n["phase"] == "pre"]
        post = [n["at"] for n in notes if n["dag_id"] == dag_id and n["run_id"] == run_id and n["phase"] == "post"]
        return {"execute s": max(post) - min(pre)} if pre and post else {}

    def subscriptions(self) -> int:
        return int(self.admin("GET", "stats")["streaming"]["subscriptions"])

    def accounts(self) -> int:
        return int(self.api("GET", "query", params={"q": "SELECT COUNT() FROM Account"})["totalSize"])

    # -- what each DAG needs before its run ---------------------------------------------------------------
    def prepare(self, case: str) -> None:
        from bench.bench_bulk import _floor_ingest_rows
        from bench.bench_bulk_v1 import csv_path

        source = self.data / "accounts.csv"
        if not source.exists():
            shutil.copy(csv_path(self.env, BULK_ROWS), source)
        if case == "bulk_ingest":
            self.admin("POST", "reset")
        elif (case == "bulk_extract" and self.accounts() != BULK_ROWS) or \
                (case == "rest_upsert" and self.accounts() < REST_RECORDS):
            self.admin("POST", "reset")
            assert _floor_ingest_rows(self.env, str(source)) == BULK_ROWS
        if case == "rest_upsert":
            self._upsert_file()
        if case == "streaming":
            os.environ["AIRFLOW_CONN_BENCH_E2E"] = self.connection
            from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

            SalesforceStreamingHook("bench_e2e").ensure_push_topic(*PUSH_TOPIC, operations=["create"])

    def _upsert_file(self) -> None:
        ids: list[str] = []
        page = self.api("GET", "query", params={"q": f"SELECT Id FROM Account LIMIT {REST_RECORDS}"})
        while True:
            ids += [row["Id"] for row in page["records"]]
            if page.get("done", True):
                break
            reply = self.http.get(self.url + page["nextRecordsUrl"], verify=self.verify, timeout=120,
                                  headers={"Authorization": f"Bearer {self._token()}"})
            reply.raise_for_status()
            page = reply.json()
        assert len(ids) == REST_RECORDS, len(ids)
        with open(self.data / "upsert.csv", "w") as out:
            out.write("Id,Rating,Industry\n")
            out.writelines(f"{record_id},Hot,Energy\n" for record_id in ids)

    def wake_streaming(self, baseline: int, stop: threading.Event) -> dict[str, float]:
        """Once a new subscription is held, create one Opportunity; its commit time."""
        while not stop.is_set() and self.subscriptions() <= baseline:
            time.sleep(0.05)
        if stop.is_set():
            return {}
        self.api("POST", "sobjects/Opportunity", json={"Name": "e2e", "StageName": "Prospecting",
                                                       "CloseDate": "2026-12-31"})
        return {"committed": time.time()}


def _in_thread(fn: Callable[[], dict[str, float]]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out.update(fn())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _folders(base: Path, mode: str) -> tuple[Path, Path, Path]:
    """(Airflow home, DAG folder with the DAG file, the DAGs' data folder) of a mode."""
    home, dags, data = base / mode / "home", base / mode / "dags", base / "data"
    for folder in (home, dags, data):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    return home, dags, data


# -- dag.test() -------------------------------------------------------------------------------------------
def dag_test_child(dag_id: str) -> None:
    """In the child process: ``dag.test()`` the DAG; print its figures as JSON."""
    from airflow.dag_processing.dagbag import DagBag

    from bench.child import _peak_rss_mb

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag(dag_id)
    started = time.time()
    run = dag.test()
    ended = time.time()
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    print(json.dumps({"state": str(run.state), "run_id": run.run_id, "run_s": ended - started, "peak_rss_mb": _peak_rss_mb(),
                      "tasks": {task_id: [ti.start_date.timestamp(), ti.end_date.timestamp(), str(ti.state)]
                                for task_id, ti in tis.items()}}))


@contextmanager
def dagtest_mode(base: Path) -> Iterator[Callable[[str], dict[str, float]]]:
    """An emulator process and a migrated SQLite home; yields ``run(case) -> figures``."""
    from tests.integration.airflow_procs import ProcessSet, airflow_env, free_port, start_emulator

    home, dags, data = _folders(base, "dagtest")
    procs = ProcessSet(home, dict(os.environ))
    try:
        emulator = Emulator(start_emulator(procs), data)
        env = airflow_env(home, dags, free_port(), {"AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": emulator.connection,
                                                    "SF_BENCH_E2E_DIR": str(data)})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True,
                       capture_output=True, timeout=600)

        def run(case: str) -> dict[str, float]:
            emulator.prepare(case)
            stop = threading.Event()
            waker, woken = _in_thread(lambda: emulator.wake_streaming(emulator.subscriptions(), stop)) \
                if case == "streaming" else (None, {})
            done = subprocess.run([sys.executable, "-m", "bench.bench_airflow", "--dag-test", f"bench_e2e_{case}"],
                                  env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
            stop.set()
            if waker is not None:
                waker.join(timeout=30)
            with open(home / f"{case}.log", "a") as log:  # the task's log lines, for a slow or failed run
                log.write(done.stdout + done.stderr)
            if done.returncode:
                raise RuntimeError(f"dag.test() of {case} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            start, end, state = result["tasks"][TASKS[case]]
            assert result["state"].endswith("success") and state.endswith("success"), result
            figures = {"task s": end - start, "run s": result["run_s"], "process peak RSS MB": result["peak_rss_mb"],
                       **emulator.execute_s(f"bench_e2e_{case}", result["run_id"])}
            if "committed" in woken:
                figures["event to task done s"] = end - woken["committed"]
            return figures

        yield run
    finally:
        procs.stop_all()


# -- a deployment -----------------------------------------------------------------------------------------
class RssSampler:
    """Peak RSS while a run goes: the triggerer (summed with its children) and the largest
    ``VmHWM`` of the scheduler's descendants started after ``since`` (the task processes).

    :param procs: the deployment's processes.
    :param since: POSIX time the run was triggered.
    """

    def __init__(self, procs: Any, since: float) -> None:
        self.procs, self.since = procs, since
        self.triggerer = 0
        self.task = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        from tests.integration.airflow_procs import component_rss

        while not self._stop.is_set():
            try:
                self.triggerer = max(self.triggerer, component_rss(self.procs, "triggerer"))
                for proc in psutil.Process(self.procs.procs["scheduler"].pid).children(recursive=True):
                    if proc.create_time() >= self.since - 0.5:
                        self.task = max(self.task, _vm_hwm(proc.pid))
            except (psutil.Error, KeyError):
                pass
            self._stop.wait(0.2)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=10)
        return {"task process peak RSS MB": _mb(self.task), "triggerer peak RSS MB": _mb(self.triggerer)}


def _vm_hwm(pid: int) -> int:
    """A process's peak resident memory (bytes), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextmanager
def deployment_mode(base: Path) -> Iterator[Callable[[str], dict[str, float]]]:
    """The SQLite + LocalExecutor deployment with the DAGs parsed and unpaused; yields ``run(case)``."""
    from bench.bench_deployment import when
    from tests.integration.airflow_procs import ProcessSet, airflow_api, start_sqlite_deployment, wait_for

    home, dags, data = _folders(base, "deployment")
    os.environ["SF_BENCH_E2E_DIR"] = str(data)  # the deployment's processes inherit it
    procs = ProcessSet(home, dict(os.environ))
    try:
        stack = start_sqlite_deployment(procs, home, dags, {"salesforce_suite_default": "{emulator}"},
                                        asset_uri="salesforce://unused")
        emulator = Emulator(stack.emulator, data)
        for case in TASKS:
            dag_id = f"bench_e2e_{case}"
            wait_for(lambda: procs.assert_running() or stack.db.rows("SELECT 1 FROM dag WHERE dag_id = ?", dag_id),  # noqa: B023
                     timeout=300, what=f"the DAG processor to parse {dag_id}")
            airflow_api(stack, "PATCH", f"/dags/{dag_id}", {"is_paused": False})

        def run(case: str) -> dict[str, float]:
            dag_id, task_id = f"bench_e2e_{case}", TASKS[case]
            emulator.prepare(case)
            stop = threading.Event()
            waker, woken = _in_thread(lambda: emulator.wake_streaming(emulator.subscriptions(), stop)) \
                if case == "streaming" else (None, {})
            sampler = RssSampler(procs, time.time())
            run_id = airflow_api(stack, "POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]

            def finished() -> Any:
                procs.assert_running()
                rows = stack.db.rows("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?",
                                     dag_id, run_id)
                return rows[0] if rows and rows[0]["state"] in ("success", "failed") else None

            try:
                row = wait_for(finished, timeout=1800, interval=0.2, what=f"{dag_id} to finish")
            finally:
                stop.set()
                rss = sampler.stop()
                if waker is not None:
                    waker.join(timeout=30)
            ti = stack.db.rows("SELECT state, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ? "
                               "AND task_id = ?", dag_id, run_id, task_id)[0]
            if row["state"] != "success" or ti["state"] != "success":
                (home / "failed-runs.log").open("a").write(f"=== {dag_id} {run_id}\n{stack.diagnostics()}\n")
                raise AssertionError(f"{dag_id} run {run_id} ended {row['state']} (task {ti['state']}); the "
                                     f"deployment's log tails are in {home / 'failed-runs.log'}")
            figures = {"task s": when(ti["end_date"]) - when(ti["start_date"]),
                       "run s": when(row["end_date"]) - when(row["start_date"]), **rss,
                       **emulator.execute_s(dag_id, run_id)}
            if "committed" in woken:
                figures["event to task done s"] = when(ti["end_date"]) - woken["committed"]
            return figures

        yield run
    finally:
        procs.stop_all()


def _run_with_retry(run: Callable[[str], dict[str, float]], case: str, mode: str, tries: int = 3) -> dict[str, float]:
    """``run(case)``, again when the DAG run failed: under load, Airflow 3.3's scheduler can fail a
    task that resumed after deferring on a stale executor event ("finished with state success, but
    the task instance's state attribute is running": apache/airflow#71580). Said in the output."""
    for attempt in range(1, tries + 1):
        try:
            return run(case)
        except AssertionError as exc:
            if attempt == tries:
                raise
            print(f"{mode} {case}: the run failed, run again ({str(exc)[:300]})", flush=True)
    raise AssertionError("unreachable")


def median_table(label: str, figures: dict[str, list[dict[str, float]]]) -> str:
    """Markdown: per DAG, every figure's median (min-max) over the rounds."""
    keys = sorted({key for rounds in figures.values() for r in rounds for key in r},
                  key=lambda k: (not k.endswith(" s"), k))
    lines = [f"### {label}", "", "| DAG | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for case, rounds in figures.items():
        cells = []
        for key in keys:
            values = [r[key] for r in rounds if key in r]
            fmt = ".2f" if key.endswith(" s") else ".0f"
            cells.append(f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"
                         if values else "")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_airflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="*", default=["dagtest", "deployment"], choices=["dagtest", "deployment"])
    parser.add_argument("--cases", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SF_BENCH_AIRFLOW_ROUNDS", "3")))
    parser.add_argument("--keep", action="store_true", help="keep the directories (logs, databases)")
    parser.add_argument("--dag-test", metavar="DAG_ID", help=argparse.SUPPRESS)  # the child of dagtest mode
    args = parser.parse_args(argv)
    if args.dag_test:
        dag_test_child(args.dag_test)
        return 0

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they would override the bare sessions' ``verify``
        os.environ.pop(name, None)
    modes = {"dagtest": ("dag.test() (in-process triggers)", dagtest_mode),
             "deployment": ("SQLite + LocalExecutor + triggerer, deferrable=True", deployment_mode)}
    began = time.monotonic()
    print(f"# End to end through Airflow ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} "
          f"cores, load {os.getloadavg()[0]:.1f}; {args.rounds} rounds; Bulk {BULK_ROWS:,} rows, REST "
          f"{REST_RECORDS:,} records; `python -m bench.bench_airflow`)\n", flush=True)
    base = Path(tempfile.mkdtemp(prefix="sf-bench-airflow-"))
    try:
        for mode in args.modes:
            label, start = modes[mode]
            figures: dict[str, list[dict[str, float]]] = {case: [] for case in args.cases}
            with start(base) as run:
                for number in range(args.rounds):
                    for case in args.cases:
                        figures[case].append(_run_with_retry(run, case, mode))
                        print(f"{mode} round {number + 1} {case}: " + ", ".join(
                            f"{k} {v:.2f}" for k, v in figures[case][-1].items()), flush=True)
            print(f"\n{median_table(label, figures)}\n(load {os.getloadavg()[0]:.1f})\n", flush=True)
    except BaseException:
        args.keep = True  # the logs of what failed
        raise
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    print(f"({time.monotonic() - began:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
