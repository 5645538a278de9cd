"""A production-shaped Airflow deployment (PostgreSQL, Redis, CeleryExecutor, two triggerers, two
Celery workers; see ``celery_deployment`` in conftest.py) driven by Salesforce changes.

``deploy_dags/deploy_events.py`` is the DAG: an asset fed by ``SalesforceEventTrigger`` on the
``/topic/DeployOpportunities`` PushTopic. Opportunities are created over REST, SOAP and Bulk 2.0;
the metadata database shows which asset events carried which change and which DAG run consumed
which asset event. ``SF_DEPLOY_EVENTS`` sets the number of changes (``make deploy-full``: 2,000).

``deploy_dags/deploy_bulk_load.py`` fans a Bulk load of 8 CSV files out over the two workers
(dynamic task mapping, an Airflow pool); one worker is killed mid-job.

``deploy_dags/deploy_waits.py`` defers ``SF_DEPLOY_WAITS`` sensors (Bulk 2.0, Bulk 1.0, Analytics,
Pardot; two tasks per job) onto the two triggerers while the emulator holds the jobs in progress:
triggerer memory per deferred task and polls per second (``make deploy-full``: 200 waits).
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.airflow_procs import (
    CELERY_COMPONENTS,
    Stack,
    airflow_api,
    component_rss,
    json_value,
    kill_component,
    start_component,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

HERE = Path(__file__).resolve().parent
DEPLOY_DAGS = [HERE / "deploy_dags" / name for name in ("deploy_events.py", "deploy_events_unpaced.py",
                                                          "deploy_bulk_load.py", "deploy_waits.py")]
DAG_ID = "deploy_events"
TASK_ID = "record"
CHANNEL = "/topic/DeployOpportunities"
ASSET_URI = f"salesforce://deploy{CHANNEL}"
PUSH_TOPIC = ("DeployOpportunities", "SELECT Id, Name, StageName FROM Opportunity")
EVENTS = int(os.environ.get("SF_DEPLOY_EVENTS", "150"))
CONN_ID = "salesforce_suite_default"


def write_opportunities(names: list[str], tmp: Path) -> None:
    """Create one Opportunity per name: the first third over REST (4 at a time), the second over
    SOAP (200 a call), the rest in one Bulk 2.0 ingest job."""
    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

    def record(name: str) -> dict[str, Any]:
        return {"Name": name, "StageName": "Prospecting", "CloseDate": "2026-12-31"}

    third = len(names) // 3
    rest, soap, bulk = names[:third], names[third:2 * third], names[2 * third:]
    hook = SalesforceRestHook(CONN_ID)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: hook.create("Opportunity", record(name)), rest))
    results = SalesforceSoapHook(CONN_ID).create([record(name) for name in soap], sobject="Opportunity")
    assert all(result["success"] for result in results), [r for r in results if not r["success"]][:3]
    summary = SalesforceBulkHook(CONN_ID).ingest("Opportunity", "insert", [record(name) for name in bulk],
                                                 results_dir=str(tmp / "bulk-results"), poll_interval=0.5)
    assert summary.processed == len(bulk) and summary.failed == 0, summary


def wait_subscribed(stack: Stack) -> None:
    """Until the watcher holds its CometD subscription (replay="new": earlier changes are not seen)."""
    wait_for(lambda: stack.procs.assert_running() or stack.emulator_stats().get("streaming", {}).get(
        "subscriptions", 0) >= 1, timeout=120, what="the watcher's CometD subscription")


def delivered(stack: Stack) -> list[dict[str, Any]]:
    """One line per Salesforce event an asset event carries: asset event id, replay id, name."""
    lines = []
    for event in stack.db.asset_events(ASSET_URI):
        payload = event["extra"]["payload"]
        for message in payload.get("events", [payload]):  # a paced watcher's asset event is a batch
            lines.append({"event_id": event["id"], "replay_id": message["replay_id"],
                          "name": message["payload"]["sobject"]["Name"]})
    return lines


def consumption(stack: Stack) -> dict[int, list[str]]:
    """Asset event id -> the DAG runs that consumed it."""
    runs: dict[int, list[str]] = {}
    for run_id, event_ids in stack.db.run_events(DAG_ID).items():
        for event_id in event_ids:
            runs.setdefault(event_id, []).append(run_id)
    return runs


def wait_all_consumed(stack: Stack, names: Iterable[str], *, timeout: float) -> float:
    """Until every name is in an asset event and every asset event in a successful run; seconds taken."""
    wanted, started = set(names), time.monotonic()

    def done() -> bool:
        stack.procs.assert_running()
        lines = delivered(stack)
        if not wanted <= {line["name"] for line in lines}:
            return False
        states = {row["run_id"]: row["state"] for row in stack.db.dag_runs(DAG_ID)}
        consumed = consumption(stack)
        return all(any(states.get(run) == "success" for run in consumed.get(line["event_id"], ())) for line in lines)

    try:
        wait_for(done, timeout=timeout, interval=2, what="every change to reach a successful DAG run")
    except TimeoutError:
        lines, consumed = delivered(stack), consumption(stack)
        missing = wanted - {line["name"] for line in lines}
        unconsumed = sorted({line["event_id"] for line in lines if line["event_id"] not in consumed})
        pytest.fail(f"{len(missing)} change(s) never became asset events, {len(unconsumed)} asset event(s) not in "
                    f"any run: {unconsumed[:20]}; runs: {Counter(r['state'] for r in stack.db.dag_runs(DAG_ID))}"
                    f"\n{stack.diagnostics()}")
    return time.monotonic() - started


def assert_each_change_in_one_run(stack: Stack, names: list[str], *, duplicates_allowed: bool) -> dict[str, Any]:
    """Every change's replay id in exactly one run (or, after a failover, re-deliveries of one replay id)."""
    lines = [line for line in delivered(stack) if line["name"] in set(names)]
    consumed = consumption(stack)
    by_name: dict[str, set[int]] = {}
    for line in lines:
        by_name.setdefault(line["name"], set()).add(line["replay_id"])
    assert set(by_name) == set(names)
    # A change is one Salesforce event: re-deliveries carry the same replay id.
    assert all(len(ids) == 1 for ids in by_name.values()), {n: ids for n, ids in by_name.items() if len(ids) > 1}
    # Each asset event in exactly one run.
    assert all(len(consumed.get(line["event_id"], [])) == 1 for line in lines)
    runs_per_replay = Counter(line["replay_id"] for line in lines)
    duplicates = sum(count - 1 for count in runs_per_replay.values())
    if not duplicates_allowed:
        assert duplicates == 0, {rid: n for rid, n in runs_per_replay.items() if n > 1}
    # No empty run, and each run's task saw exactly what the run consumed.
    xcom = stack.db.xcom_values(DAG_ID, TASK_ID)
    replay_of_event: dict[int, list[int]] = {}
    for line in delivered(stack):
        replay_of_event.setdefault(line["event_id"], []).append(line["replay_id"])
    ours = {line["event_id"] for line in lines}
    runs = {run_id: ids for run_id, ids in stack.db.run_events(DAG_ID).items() if ours & set(ids)}
    for run_id, event_ids in runs.items():
        expected = sorted(rid for event_id in event_ids for rid in replay_of_event[event_id])
        assert expected, f"run {run_id} consumed no event"
        assert sorted(xcom[run_id]) == expected, run_id
    return {"asset_events": len({line["event_id"] for line in lines}), "runs": len(runs), "duplicates": duplicates}


def test_every_change_reaches_exactly_one_run(celery_deployment: Stack, tmp_path: Path) -> None:
    stack = celery_deployment
    wait_subscribed(stack)
    names = [f"deploy-{i:05d}" for i in range(EVENTS)]
    started = time.monotonic()
    write_opportunities(names, tmp_path)
    written = time.monotonic() - started
    settle = wait_all_consumed(stack, names, timeout=120 + EVENTS * 0.1)
    found = assert_each_change_in_one_run(stack, names, duplicates_allowed=False)
    hosts = {row["hostname"] for row in stack.db.rows("SELECT hostname FROM task_instance WHERE dag_id = ?", DAG_ID)}
    assert hosts <= set(CELERY_COMPONENTS)
    print(f"\n{EVENTS} changes written in {written:.1f} s; all in successful runs {settle:.1f} s later: {found}, "
          f"task hosts {sorted(hosts)}")


def test_unpaced_a_burst_is_in_runs_once_the_next_change_arrives(celery_deployment: Stack) -> None:
    """Airflow 3.3's asset queue (apache/airflow#56050) measured: without ``paced_by``, a burst's
    later asset events can get no run until another change arrives (how many is printed: it
    depends on timing); once it does, every event is in exactly one run."""
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook
    from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

    stack, dag_id, uri = celery_deployment, "deploy_events_unpaced", "salesforce://deploy/topic/DeployContacts"
    SalesforceStreamingHook(CONN_ID).ensure_push_topic("DeployContacts", "SELECT Id, LastName FROM Contact",
                                                       operations=["create"])
    before = stack.emulator_stats()["streaming"]["subscriptions"]
    stack.airflow("dags", "unpause", dag_id)
    wait_for(lambda: stack.procs.assert_running() or stack.emulator_stats()["streaming"]["subscriptions"] > before,
             timeout=180, what="the unpaced watcher's subscription")
    soap = SalesforceSoapHook(CONN_ID)
    burst = 50
    soap.create([{"LastName": f"burst-{i}"} for i in range(burst)], sobject="Contact")

    def settled() -> list[int] | None:
        events = [event["id"] for event in stack.db.asset_events(uri)]
        states = [row["state"] for row in stack.db.dag_runs(dag_id)]
        busy = any(state in ("queued", "running") for state in states)
        queued = stack.db.rows("SELECT 1 FROM asset_dag_run_queue WHERE target_dag_id = ?", dag_id)
        return None if len(events) < burst or busy or queued else events

    events = wait_for(settled, timeout=180, interval=2, what="the burst's runs to finish")
    time.sleep(15)  # a few more scheduler loops: what is not in a run now stays so
    consumed = {event_id for ids in stack.db.run_events(dag_id).values() for event_id in ids}
    stranded = [event_id for event_id in events if event_id not in consumed]
    runs = len(stack.db.dag_runs(dag_id))
    soap.create([{"LastName": "next change"}], sobject="Contact")

    def all_consumed() -> bool:
        everything = [event["id"] for event in stack.db.asset_events(uri)]
        in_runs = [i for ids in stack.db.run_events(dag_id).values() for i in ids]
        return len(everything) == burst + 1 and sorted(in_runs) == sorted(everything)

    wait_for(all_consumed, timeout=180, interval=2, what="the next change's run to collect the tail")
    print(f"\nunpaced: {burst} changes -> {burst} asset events, {runs} run(s); {len(stranded)} asset event(s) in no "
          f"run and no queue row until the next change, whose run consumed them (each event in exactly one run)")


def watcher_triggerer(stack: Stack) -> str | None:
    """The component (``triggerer-1``/``-2``) whose job runs the watcher trigger, if any."""
    found = stack.db.rows("SELECT j.hostname FROM asset a JOIN asset_watcher w ON w.asset_id = a.id "
                          "JOIN trigger t ON t.id = w.trigger_id JOIN job j ON j.id = t.triggerer_id "
                          "WHERE a.uri = ? AND j.state = 'running'", ASSET_URI)
    return found[0]["hostname"] if found else None


def test_killing_the_watchers_triggerer_hands_it_over_losing_nothing(celery_deployment: Stack, tmp_path: Path) -> None:
    stack = celery_deployment
    wait_subscribed(stack)
    # A committed replay id first: an asset with none starts at new events only (replay="new"),
    # so a takeover before the first commit would not replay what the killed triggerer missed.
    write_opportunities(["failover-first"], tmp_path / "first")
    wait_all_consumed(stack, ["failover-first"], timeout=120)
    first = next(line["replay_id"] for line in delivered(stack) if line["name"] == "failover-first")
    key = f"salesforce.replay_id:{CHANNEL}"
    wait_for(lambda: (stack.db.asset_state(ASSET_URI).get(key) or 0) >= first, timeout=60,
             what="the replay id to be committed")
    names = [f"failover-{i:05d}" for i in range(max(60, EVENTS // 2))]
    victim = wait_for(lambda: watcher_triggerer(stack), timeout=60, what="the watcher's triggerer")
    errors: list[BaseException] = []
    written = threading.Event()

    def produce() -> None:  # changes keep flowing before, during and after the kill
        try:
            step = max(5, len(names) // 15)  # ~15 writes spread over ~45 s, the takeover inside them
            for start in range(0, len(names), step):
                write_opportunities(names[start:start + step], tmp_path / str(start))
                time.sleep(3)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            written.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    time.sleep(8)
    assert not written.is_set()
    killed_at = time.monotonic()
    kill_component(stack.procs, victim)
    survivor = next(name for name in ("triggerer-1", "triggerer-2") if name != victim)
    try:
        wait_for(lambda: watcher_triggerer(stack) == survivor, timeout=120, interval=1,
                 what=f"{survivor} to take the watcher over")
        takeover = time.monotonic() - killed_at
        assert not written.is_set(), "the changes stopped before the takeover"
        assert written.wait(timeout=600) and not errors, errors
        settle = wait_all_consumed(stack, names, timeout=180 + EVENTS * 0.1)
        found = assert_each_change_in_one_run(stack, names, duplicates_allowed=True)
    finally:
        start_component(stack.procs, victim)  # two triggerers again for the next test
    print(f"\n{len(names)} changes, {victim} killed -9 mid-stream, {survivor} took over in {takeover:.1f} s; "
          f"0 lost, all in successful runs {settle:.1f} s after the last write: {found}")


BULK_FILES, BULK_POOL_SLOTS = 8, 3
#: What a retry logs when it takes the killed try's Bulk jobs over.
TOOK_OVER = ("Resuming a submission", "submitted by an earlier try", "Reconnecting to existing job",
             "Job already completed successfully, skipping resubmission")
BULK_ROWS = int(os.environ.get("SF_DEPLOY_BULK_ROWS", "1000"))  # per file: 4 uploads of 250


def load_tis(stack: Stack) -> list[Any]:
    return stack.db.rows("SELECT map_index, state, hostname, try_number FROM task_instance "
                         "WHERE dag_id = 'deploy_bulk_load' AND task_id = 'load' ORDER BY map_index")


def test_bulk_fan_out_survives_a_worker_killed_mid_job(celery_deployment: Stack, tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    stack = celery_deployment
    files = tmp_path / "files"
    files.mkdir()
    for f in range(BULK_FILES):
        with open(files / f"accounts-{f}.csv", "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["Name", "AccountNumber"])
            writer.writerows([f"bulkload-{f}-{i:05d}", f"{f}-{i}"] for i in range(BULK_ROWS))
    stack.airflow("pools", "set", "salesforce_deploy", str(BULK_POOL_SLOTS), "Salesforce org limit",
                  "--include-deferred")
    # Slow uploads and job polls, so that a load is still waiting for its jobs when its worker dies.
    from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

    version = SalesforceBaseHook(CONN_ID).config.api_version
    stack.emulator_fault(latency_ms=1500, method="PUT", path_suffix="/batches")
    stack.emulator_fault(latency_ms=1500, method="GET", path_prefix=f"/services/data/v{version}/jobs/ingest/")
    stack.airflow("dags", "unpause", "deploy_bulk_load")
    stack.airflow("dags", "trigger", "deploy_bulk_load", "--conf", json.dumps({"dir": str(files)}))
    logs = Path(stack.procs.env["AIRFLOW_HOME"]) / "logs" / "dag_id=deploy_bulk_load"
    most_running = 0

    def running() -> list[Any]:
        nonlocal most_running
        found = [ti for ti in load_tis(stack) if ti["state"] == "running"]
        most_running = max(most_running, len(found))
        return found

    def submitted_and_waiting() -> Any:
        """A load whose first try submitted its jobs (its log says so) and is still running."""
        for ti in running():
            log = next(logs.glob(f"run_id=*/task_id=load/map_index={ti['map_index']}/attempt=1.log"), None)
            if log is not None and "Submitted " in log.read_text(errors="replace"):
                return ti
        return None

    target = wait_for(submitted_and_waiting, timeout=300, interval=0.3, what="a load waiting for its submitted jobs")
    victim = target["hostname"]
    hit = {ti["map_index"] for ti in running() if ti["hostname"] == victim}
    killed = kill_component(stack.procs, victim)
    survivor = next(name for name in ("worker-1", "worker-2") if name != victim)
    started = time.monotonic()
    try:
        def finished() -> str | None:
            stack.procs.assert_running()
            running()
            (run,) = stack.db.rows("SELECT state FROM dag_run WHERE dag_id = 'deploy_bulk_load'")
            return run["state"] if run["state"] in ("success", "failed") else None

        state = wait_for(finished, timeout=600, interval=1, what="the Bulk fan-out run to finish")
        took = time.monotonic() - started
    finally:
        stack.clear_emulator_faults()
        start_component(stack.procs, victim)
    tis = load_tis(stack)
    assert state == "success", (tis, stack.diagnostics())
    assert len(tis) == BULK_FILES and all(ti["state"] == "success" for ti in tis), tis
    assert hit and all(tis[i]["try_number"] >= 2 and tis[i]["hostname"] == survivor for i in hit), (hit, tis)
    assert most_running <= BULK_POOL_SLOTS, most_running  # the pool bounded concurrent Salesforce jobs
    # The retry took the killed try's jobs over instead of loading again: from the submission journal
    # (ours) or from the job ids in the task state store (Airflow's ResumableJobMixin).
    (log,) = logs.glob(f"run_id=*/task_id=load/map_index={target['map_index']}/attempt=2.log")
    text = log.read_text()
    assert any(said in text for said in TOOK_OVER), text[-3000:]
    assert "resubmitting fresh" not in text
    names = [row["Name"] for row in SalesforceRestHook(CONN_ID).query_all(
        "SELECT Name FROM Account WHERE Name LIKE 'bulkload-%'")]
    duplicates = sum(count - 1 for count in Counter(names).values())
    assert len(set(names)) == BULK_FILES * BULK_ROWS and duplicates == 0, (len(names), duplicates)
    summaries = [json_value(row["value"]) for row in stack.db.rows(
        "SELECT value FROM xcom WHERE dag_id = 'deploy_bulk_load' AND task_id = 'load' AND key = 'return_value'")]
    assert len(summaries) == BULK_FILES
    assert all(summary["processed"] == BULK_ROWS and summary["failed"] == summary["unprocessed"] == 0
               for summary in summaries), summaries
    print(f"\n{BULK_FILES} files x {BULK_ROWS} rows over 2 workers (pool {BULK_POOL_SLOTS}, at most {most_running} "
          f"running); {victim} killed -9 ({killed} stray processes) with load(s) {sorted(hit)} running, load "
          f"{target['map_index']} waiting for its submitted jobs; retried on "
          f"{survivor}, run done {took:.0f} s after the kill: {len(names)} Accounts, 0 duplicates")


WAITS = int(os.environ.get("SF_DEPLOY_WAITS", "8"))  # make test: ~60 s on 2 cores; make deploy-full: 200
TASKS_PER_JOB = 2
TRIGGERERS = ("triggerer-1", "triggerer-2")


def wait_rows(stack: Stack) -> list[Any]:
    """The deploy_waits sensors: task, map index, state and the triggerer holding their trigger."""
    return stack.db.rows("SELECT ti.task_id, ti.map_index, ti.state, j.hostname FROM task_instance ti "
                         "LEFT JOIN trigger t ON t.id = ti.trigger_id LEFT JOIN job j ON j.id = t.triggerer_id "
                         "WHERE ti.dag_id = 'deploy_waits' AND ti.map_index >= 0 "
                         "AND ti.task_id IN ('bulk2', 'bulk1', 'analytics', 'pardot')")


def test_deferred_waits_are_polled_per_job_not_per_task(celery_deployment: Stack, monkeypatch) -> None:
    """``SF_DEPLOY_WAITS`` deferred sensors on half as many held jobs: both triggerers' memory per
    deferred task, and polls per second bounded by the jobs each triggerer watches (not its tasks)."""
    from bench.waits_support import APIS, hold_jobs, pardot_connection, poll_counts, start_held_jobs
    from tests.integration.deploy_dags.deploy_waits import PARDOT_CONN_ID, POLL_INTERVAL

    stack = celery_deployment
    per_api = max(1, WAITS // len(APIS))
    pardot = pardot_connection(stack.emulator["connection"], stack.emulator["url"])
    airflow_api(stack, "POST", "/connections", {
        "connection_id": PARDOT_CONN_ID, "conn_type": pardot["conn_type"], "host": pardot["host"],
        "login": pardot["login"], "password": pardot["password"], "extra": json.dumps(pardot["extra"])})
    monkeypatch.setenv(f"AIRFLOW_CONN_{PARDOT_CONN_ID.upper()}", json.dumps(pardot))
    hold_jobs(stack.emulator["url"], stack._verify, True)
    try:
        jobs = start_held_jobs(-(-per_api // TASKS_PER_JOB), CONN_ID, PARDOT_CONN_ID)
        conf = {api: [job_id for job_id in ids for _ in range(TASKS_PER_JOB)][:per_api] for api, ids in jobs.items()}
        tasks = sum(len(ids) for ids in conf.values())
        job_of = {(api, index): str(job_id) for api, ids in conf.items() for index, job_id in enumerate(ids)}
        wait_for(lambda: stack.db.rows("SELECT 1 FROM dag WHERE dag_id = 'deploy_waits'"), timeout=120,
                 what="the DAG processor to parse deploy_waits")
        rss_before = {name: component_rss(stack.procs, name) for name in TRIGGERERS}
        airflow_api(stack, "PATCH", "/dags/deploy_waits", {"is_paused": False})
        airflow_api(stack, "POST", "/dags/deploy_waits/dagRuns", {"logical_date": None, "conf": conf})
        started = time.monotonic()
        samples: list[dict[str, tuple[int, int]]] = []  # triggerer -> (waits it holds, its RSS)

        def all_deferred() -> list[Any] | None:
            stack.procs.assert_running()
            rows = wait_rows(stack)
            bad = [row for row in rows if row["state"] in ("failed", "upstream_failed", "success")]
            assert not bad, (bad, stack.diagnostics())  # held jobs: nothing may finish yet
            ready = [row for row in rows if row["state"] == "deferred" and row["hostname"]]
            samples.append({name: (sum(row["hostname"] == name for row in ready), component_rss(stack.procs, name))
                            for name in TRIGGERERS})
            return rows if len(ready) == tasks else None

        rows = wait_for(all_deferred, timeout=120 + tasks * 3, interval=1, what=f"{tasks} deferred waits")
        deferred_in = time.monotonic() - started
        time.sleep(POLL_INTERVAL * 1.5)  # every trigger has joined its job's poll
        window = POLL_INTERVAL * 4
        before, window_start = poll_counts(stack.emulator_stats()["requests"], jobs), time.monotonic()
        time.sleep(window)
        after = poll_counts(stack.emulator_stats()["requests"], jobs)
        window = time.monotonic() - window_start
        rss_held = {name: component_rss(stack.procs, name) for name in TRIGGERERS}
        rows_after = wait_rows(stack)
        assert all(row["state"] == "deferred" for row in rows_after)
    finally:
        hold_jobs(stack.emulator["url"], stack._verify, False)
    polls = {key: after[key] - before[key] for key in after}
    watched = {(row["task_id"], row["map_index"]): row["hostname"] for row in rows}
    # Per triggerer, the distinct jobs it watches: the most a shared poller polls (a trigger handed over
    # to the other triggerer during the window counts on both).
    held_by = {(row["hostname"], job_of[(row["task_id"], row["map_index"])]) for row in [*rows, *rows_after]}
    per_triggerer = {name: {job for host, job in held_by if host == name} for name in TRIGGERERS}
    jobs_watched = sum(len(ids) for ids in per_triggerer.values())
    bound = jobs_watched * (window / POLL_INTERVAL + 1)
    total = sum(polls.values())
    waited = {(api, str(job_id)) for api, ids in conf.items() for job_id in ids}
    assert all(polls[key] >= 1 for key in waited), {k: v for k, v in polls.items() if k in waited and not v}
    assert total <= bound, (total, bound, per_triggerer)

    def finished() -> str | None:
        stack.procs.assert_running()
        (run,) = stack.db.rows("SELECT state FROM dag_run WHERE dag_id = 'deploy_waits'")
        return run["state"] if run["state"] in ("success", "failed") else None

    released = time.monotonic()
    state = wait_for(finished, timeout=120 + tasks * 3, interval=1, what="every wait to finish")
    resumed_in = time.monotonic() - released
    rows = wait_rows(stack)
    assert state == "success" and len(rows) == tasks and all(row["state"] == "success" for row in rows), rows
    xcom = stack.db.rows("SELECT task_id, map_index, value FROM xcom WHERE dag_id = 'deploy_waits' "
                         "AND key = 'return_value' AND map_index >= 0")
    reported = {(row["task_id"], row["map_index"]): json_value(row["value"]) for row in xcom}
    id_key = {"bulk2": "job_id", "bulk1": "job_id", "analytics": "id", "pardot": "job_id"}
    assert {key: str(value[id_key[key[0]]]) for key, value in reported.items()} == job_of
    # The growth includes each triggerer's one-time cost (the provider's modules, aiohttp, a session per
    # connection) and, after a restart, its own warm-up; the slope from a quarter of the waits held to
    # all of them, per triggerer that took waits on meanwhile, is closer to what one more wait costs.
    start = next(sample for sample in samples if sum(held for held, _ in sample.values()) >= max(1, tasks // 4))
    end = {name: (held, rss_held[name]) for name, (held, _) in samples[-1].items()}
    took = [name for name in TRIGGERERS if end[name][0] > start[name][0]]
    held_at = sum(held for held, _ in start.values())
    marginal = (sum(end[name][1] - start[name][1] for name in took)
                / max(1, sum(end[name][0] - start[name][0] for name in took)))
    hosts = Counter(watched.values())
    rss_delta = sum(rss_held[name] - rss_before[name] for name in hosts)  # the triggerers holding waits
    rate, unshared = total / window, tasks / POLL_INTERVAL
    print(f"\n{tasks} deferred waits ({', '.join(f'{len(ids)} {api}' for api, ids in conf.items())}) on "
          f"{len({job for job in job_of.values()})} held jobs, {TASKS_PER_JOB} tasks a job; all deferred "
          f"{deferred_in:.0f} s after the trigger, triggers on {dict(hosts)}; triggerer RSS "
          f"{ {k: round(v / 2**20) for k, v in rss_before.items()} } MiB -> "
          f"{ {k: round(v / 2**20) for k, v in rss_held.items()} } MiB: {rss_delta / tasks / 1024:.0f} KiB per "
          f"deferred task in all, {marginal / 1024:.0f} KiB per wait from {held_at} to {tasks} held; "
          f"polls {total} in {window:.1f} s = {rate:.1f}/s at a {POLL_INTERVAL:g} s interval "
          f"(bound {jobs_watched / POLL_INTERVAL:.1f}/s for {jobs_watched} job watches; one poll loop per task "
          f"would be {unshared:.1f}/s); released: all {tasks} succeeded {resumed_in:.0f} s later")
