"""``make demo``: every API of the provider against the bundled emulator, in a few minutes.

1. The emulator starts (REST, Bulk, SOAP, Streaming, Pub/Sub, CRM Analytics, Pardot, Desk).
2. The batch example DAGs run one after another with ``airflow dags test`` at small sizes.
3. A real Airflow deployment starts on the same SQLite home (API server, scheduler, DAG processor,
   triggerer: LocalExecutor): the asset-scheduled example DAGs are unpaused, their watchers run in
   the triggerer, and changes made in the emulator over REST (an Opportunity created, an Account
   created) start their DAG runs, with no polling DAG.
4. A summary: one line per DAG (API, what it did, how long); on a failure the DAG and its log are
   named and the exit code is 1.

Everything lives under ``.demo/`` in the project (``SALESFORCE_SUITE_DEMO_DIR`` overrides): the
Airflow home, the logs (``logs/<dag id>.log``, ``logs/<component>.log``) and the files the DAGs
write. Every process started here runs in its own process group and is stopped on exit, Ctrl-C or
SIGTERM included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``python scripts/demo.py`` puts scripts/, not the project, on sys.path
    sys.path.insert(0, str(ROOT))

from scripts.local_deployment import (
    BIN,
    MetadataDB,
    ProcessSet,
    Stack,
    airflow_env,
    free_port,
    json_value,
    start_emulator,
    wait_for,
)

DEMO = Path(os.environ.get("SALESFORCE_SUITE_DEMO_DIR", ROOT / ".demo")).resolve()
OUTPUT = DEMO / "output"
LOGS = DEMO / "logs"
HOME = DEMO / "airflow_home"
PARDOT_BUSINESS_UNIT = "0Uv000000000001AAA"  # the emulator's default Business Unit
# The emulator's custom schema: the platform event the Pub/Sub example publishes.
DEMO_SCHEMA = {"objects": {"Order_Shipped__e": {"fields": {"OrderNumber__c": {"type": "text", "length": 20}}}}}
DAG_TIMEOUT = 300  # seconds one ``airflow dags test`` may take
EVENT_TIMEOUT = 180  # seconds from a change in Salesforce to its DAG run's success


@dataclass
class Outcome:
    """What one DAG did, for the summary."""

    api: str
    dag_id: str
    seconds: float
    what: str
    ok: bool = True
    log: Path | None = None


@dataclass
class BatchDag:
    """An example DAG run with ``airflow dags test``.

    :param describe: task id -> return value XCom of the run, to one summary phrase.
    :param prepare: makes the data the DAG expects (what a user's org already holds).
    :param file: the DAG's file in ``example_dags/`` (default ``<dag id>.py``): ``dags test`` parses only it.
    """

    api: str
    dag_id: str
    conf: dict[str, Any]
    describe: Callable[[dict[str, Any]], str]
    prepare: Callable[[Stack], None] | None = None
    file: str = ""


def _out(name: str) -> str:
    return f"file://{OUTPUT / name}"


def _seed_desk_cases(stack: Stack) -> None:
    from airflow_provider_salesforce_suite.hooks.desk import DeskHook

    hook = DeskHook("salesforce_desk_default")
    for n in range(3):
        hook.create_case(f"Printer on fire #{n}")
    hook.create_case("Already being handled", status="open")


def _seed_visitor_activities(stack: Stack) -> None:
    stack.emulator_admin("POST", "/pardot/seed", {
        "object": "visitor-activities",
        "records": [{"prospectId": n, "type": 1, "details": f"visited /pricing ({n})"} for n in range(4)]})


def _hot_account_for_cdc(stack: Stack) -> None:
    # Setup -> Change Data Capture: select Account (none is selected by default), then change one.
    stack.emulator_admin("POST", "/streaming/config", {"cdc_entities": ["Account"]})
    stack.create_record("Account", {"Name": "Demo hot prospect", "Rating": "Hot"})


BATCH_DAGS: list[BatchDag] = [
    BatchDag("REST", "example_salesforce_rest_basics", {"accounts": 5, "output_uri": _out("accounts.jsonl")},
             lambda x: f"{len(x['create_accounts'])} Accounts created, {x['export_accounts']['rows']} rows "
                       f"exported to accounts.jsonl, {x['mark_accounts']} updated to Hot"),
    BatchDag("REST (files)", "example_salesforce_rest_files", {"accounts": 10, "output_dir": _out("rest_files")},
             lambda x: f"{x['load_accounts']['succeeded']} of {x['load_accounts']['records']} CSV rows loaded "
                       f"({x['load_accounts']['failed']} rejected to accounts.failed.csv), "
                       f"{x['export_parquet']['rows']} rows exported to Parquet, "
                       f"{x['update_accounts']['succeeded']} updated, {x['export_updated_jsonl']['rows']} re-exported"),
    BatchDag("Bulk 2.0 (ingest)", "example_salesforce_bulk_load", {"rows": 2000, "output_dir": _out("bulk_load")},
             lambda x: f"{x['report']['processed']} of {x['report']['records']} rows loaded in "
                       f"{len(x['bulk_load_accounts']['job_ids'])} job(s), {x['report']['failed']} rejected "
                       f"to results/failed.csv"),
    BatchDag("Bulk 2.0 (query)", "example_salesforce_bulk_incremental",
             {"touch": 3, "lookback_seconds": 0, "output_dir": _out("bulk_incremental")},
             lambda x: f"{x['touch_accounts']} Accounts touched, {x['extract_changed_accounts']['records']} rows "
                       f"extracted (first run: all; the next from the SystemModstamp watermark)"),
    BatchDag("SOAP", "example_salesforce_soap", {"leads": 3},
             lambda x: f"{sum(r['success'] for r in x['convert_leads'])} Leads converted, "
                       f"{sum(len(r['mergedRecordIds']) for r in x['merge_duplicates'])} duplicate Accounts merged "
                       f"into {len(x['merge_duplicates'])}"),
    BatchDag("REST (reliable)", "example_salesforce_reliable_loads",
             {"leads": 200, "output_dir": _out("reliable_loads")},
             lambda x: f"{x['insert_leads']['succeeded']} Leads inserted once each (idempotency key), "
                       f"{x['update_leads']['succeeded']} updated"),
    BatchDag("CRM Analytics", "example_salesforce_analytics", {"rows": 300, "output_dir": _out("analytics")},
             lambda x: f"300 rows uploaded to dataset Sales ({x['load_sales']['status']}), dataflow "
                       f"{x['run_dataflow']['status']}, SAQL: {sum(r['deals'] for r in x['sales_by_region'])} deals "
                       f"in {len(x['sales_by_region'])} regions"),
    BatchDag("Pardot", "example_salesforce_pardot", {"rows": 20, "output_dir": _out("pardot")},
             lambda x: f"{x['import_prospects']['createdCount']} prospects imported, "
                       f"{x['import_prospects']['errorCount']} rejected to errors.csv, "
                       f"{x['export_visitor_activities']['rows']} visitor activities exported",
             prepare=_seed_visitor_activities),
    BatchDag("Desk", "example_salesforce_desk", {"output_uri": _out("desk/new_cases.jsonl")},
             lambda x: f"{x['export_new_cases']['rows']} new cases exported to new_cases.jsonl",
             prepare=_seed_desk_cases),
    BatchDag("Pub/Sub (publish)", "example_salesforce_pubsub_publish",
             {"orders": ["ON-1001", "ON-1002", "ON-1003"], "output_dir": _out("pubsub")},
             lambda x: f"{x['publish_order_shipped']['published']} Order_Shipped__e platform events published, "
                       f"{x['publish_order_shipped']['failed']} failed", file="example_salesforce_pubsub.py"),
    BatchDag("Streaming (sensor)", "example_salesforce_streaming_sensor", {"replay_id": -2, "timeout": 120},
             lambda x: f"deferred, woke on {len(x['wait_for_hot_account'])} CDC event(s): Account "
                       f"{', '.join(x['report'])} became Hot", prepare=_hot_account_for_cdc),
    BatchDag("Streaming (setup)", "example_salesforce_new_opportunity_setup", {},
             lambda x: f"PushTopic NewOpportunities {'created' if x['ensure_push_topic']['changed'] else 'unchanged'}",
             file="example_salesforce_new_opportunity.py"),
]


@dataclass
class EventDag:
    """An asset-scheduled example DAG: its watcher runs in the triggerer; a change starts a run.

    :param change: makes the change in Salesforce; a description of it and the record id.
    :param handled: one line of the task's XCom -> the record ids it handled.
    """

    api: str
    dag_id: str
    trigger_class: str
    task_id: str
    change: Callable[[Stack], tuple[str, str]]
    handled: Callable[[dict[str, Any]], list[str]]


EVENT_DAGS: list[EventDag] = [
    EventDag("Streaming (event)", "example_salesforce_new_opportunity", "SalesforceEventTrigger",
             "handle_new_opportunities",
             lambda stack: ("Opportunity 'Demo deal' created",
                            stack.create_opportunity("Demo deal")),
             lambda line: [line["id"]]),
    EventDag("Pub/Sub (event)", "example_salesforce_pubsub", "SalesforcePubSubEventTrigger",
             "handle_account_changes",
             lambda stack: ("Account 'Demo new customer' created",
                            stack.create_record("Account", {"Name": "Demo new customer"})),
             lambda line: line["record_ids"]),
]


def _connections(emulator: dict[str, str]) -> dict[str, str]:
    """The connections the example DAGs use, all pointed at the emulator."""
    base = json.loads(emulator["connection"])
    pardot = {**base, "conn_type": "salesforce_pardot",
              "extra": {**base["extra"], "business_unit_id": PARDOT_BUSINESS_UNIT, "pardot_host": emulator["url"]}}
    return {
        "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": emulator["connection"],
        "AIRFLOW_CONN_SALESFORCE_DESK_DEFAULT": json.dumps({**base, "conn_type": "salesforce_desk"}),
        "AIRFLOW_CONN_SALESFORCE_PARDOT_DEFAULT": json.dumps(pardot),
    }


def _latest_run_xcoms(db: MetadataDB, dag_id: str) -> dict[str, Any]:
    """task id -> return value of the DAG's newest run."""
    runs = db.dag_runs(dag_id)
    if not runs:
        return {}
    found = db.rows("SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'",
                    dag_id, runs[-1]["run_id"])
    return {row["task_id"]: json_value(row["value"]) for row in found}


def run_batch(stack: Stack, dag: BatchDag) -> Outcome:
    """``airflow dags test`` one DAG; what it did."""
    print(f"running {dag.dag_id} ...", flush=True)
    started = time.monotonic()
    log = LOGS / f"{dag.dag_id}.log"
    files_before = _output_files()
    try:
        if dag.prepare is not None:
            dag.prepare(stack)
        path = ROOT / "example_dags" / (dag.file or f"{dag.dag_id}.py")
        code = stack.procs.run(dag.dag_id, [str(BIN / "airflow"), "dags", "test", dag.dag_id, "--conf",
                                            json.dumps(dag.conf), "--dagfile-path", str(path)], timeout=DAG_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - reported in the summary with the log's path
        return Outcome(dag.api, dag.dag_id, time.monotonic() - started, f"{type(exc).__name__}: {exc}", False, log)
    seconds = time.monotonic() - started
    if code != 0:
        return Outcome(dag.api, dag.dag_id, seconds, f"airflow dags test exited with {code}", False, log)
    try:
        what = dag.describe(_latest_run_xcoms(stack.db, dag.dag_id))
    except Exception as exc:  # noqa: BLE001 - the run succeeded; only its description is incomplete
        what = f"succeeded (no summary: {type(exc).__name__}: {exc})"
    written = len(_output_files() - files_before)
    if written:
        what += f"; {written} file{'s' if written > 1 else ''} written"
    print(f"{dag.dag_id}: success ({seconds:.0f} s)", flush=True)
    return Outcome(dag.api, dag.dag_id, seconds, what, True, log)


def run_events(stack: Stack) -> list[Outcome]:
    """Start the deployment, activate the watchers, make one change per event DAG, wait for its run."""
    print("starting Airflow: api-server, scheduler, dag-processor, triggerer ...", flush=True)
    started = time.monotonic()
    # Unpaused before the DAG processor's first parse: it registers their watchers then (it parses
    # each file once here, leaving the CPU to the runs). ``dags test`` put every DAG of these files in the database.
    pattern = "^(" + "|".join(dag.dag_id for dag in EVENT_DAGS) + ")$"
    stack.airflow("dags", "unpause", "--treat-dag-id-as-regex", "--yes", pattern)
    stack.start_airflow(migrate=False)
    for dag in EVENT_DAGS:
        stack.activate_watcher(dag.dag_id, dag.trigger_class, timeout=EVENT_TIMEOUT)
    _wait_subscribed(stack)
    print(f"Airflow up, watchers subscribed ({time.monotonic() - started:.0f} s)", flush=True)
    outcomes = []
    for dag in EVENT_DAGS:
        made = time.monotonic()
        description, record_id = dag.change(stack)
        print(f"{description} ({record_id}): waiting for {dag.dag_id} to run ...", flush=True)
        try:
            run_id = wait_for(lambda dag=dag, record_id=record_id: stack.procs.assert_running()
                              or _run_that_handled(stack, dag, record_id),
                              timeout=EVENT_TIMEOUT, what=f"a successful run of {dag.dag_id} for {record_id}")
        except (TimeoutError, AssertionError) as exc:
            # The watcher runs in the triggerer, the run in the scheduler's executor: both logs tell.
            outcomes.append(Outcome(dag.api, dag.dag_id, time.monotonic() - made,
                                    f"{str(exc).splitlines()[0]} (see also triggerer.log)", False,
                                    LOGS / "scheduler.log"))
            continue
        seconds = time.monotonic() - made
        print(f"{dag.dag_id}: run {run_id} succeeded {seconds:.0f} s after the change", flush=True)
        outcomes.append(Outcome(dag.api, dag.dag_id, seconds,
                                f"run {run_id} started by the change \"{description}\" ({record_id}), "
                                f"success {seconds:.0f} s after it"))
    return outcomes


def _wait_subscribed(stack: Stack) -> None:
    """Until the watchers hold their subscriptions (they see only changes made after subscribing)."""
    def subscribed() -> bool:
        stack.procs.assert_running()
        streaming = stack.emulator_stats().get("streaming", {})
        pubsub = stack.emulator_admin("GET", "/pubsub")["stats"]
        return int(streaming.get("subscriptions", 0)) >= 1 and int(pubsub.get("open_streams", 0)) >= 1

    wait_for(subscribed, timeout=EVENT_TIMEOUT, what="the watchers' CometD and Pub/Sub subscriptions")


def _run_that_handled(stack: Stack, dag: EventDag, record_id: str) -> str | None:
    """The id of a successful run of ``dag`` whose task handled ``record_id``."""
    done = {row["run_id"] for row in stack.db.dag_runs(dag.dag_id) if row["state"] == "success"}
    for run_id, lines in stack.db.xcom_values(dag.dag_id, dag.task_id).items():
        if run_id in done and any(record_id in dag.handled(line) for line in lines or []):
            return run_id
    return None


def _output_files() -> set[Path]:
    return {path for path in OUTPUT.rglob("*") if path.is_file()}


def summary(outcomes: list[Outcome], seconds: float) -> int:
    """Print one line per DAG; the exit code (1 when any DAG failed)."""
    print(f"\n=== Summary: {len(outcomes)} DAGs, every API against the emulator ({seconds:.0f} s) ===")
    for item in outcomes:
        mark = "ok  " if item.ok else "FAIL"
        print(f"{mark} {item.api:<19} {item.dag_id:<42} {item.seconds:5.0f} s  {item.what}")
    print(f"     {len(_output_files())} files written under {OUTPUT.relative_to(DEMO.parent)}/; "
          f"logs in {LOGS.relative_to(DEMO.parent)}/")
    failed = [item for item in outcomes if not item.ok]
    for item in failed:
        print(f"FAILED: {item.dag_id} ({item.api}): {item.what}; log: {item.log}")
    return 1 if failed else 0


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    # Ctrl-C and SIGTERM stop every process; SIGINT even when started with it ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    begun = time.monotonic()
    for path in (HOME, OUTPUT, LOGS):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    schema = DEMO / "schema.json"
    schema.write_text(json.dumps(DEMO_SCHEMA))
    procs = ProcessSet(LOGS, {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")})
    outcomes: list[Outcome] = []
    try:
        emulator = start_emulator(procs, "--pubsub-port", "0", "--schema", str(schema),
                                  "--cert-dir", str(DEMO / "certs"))
        print(f"emulator up at {emulator['url']} (CA bundle {emulator['ca_bundle']})", flush=True)
        api_port = free_port()
        procs.env = airflow_env(HOME, ROOT / "example_dags", api_port, {
            **_connections(emulator),
            # Parsed once is enough here: the DAG processor leaves the CPU to the DAG runs.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        })
        os.environ.update(procs.env)  # the hooks seeding Desk cases read the same connections
        stack = Stack(procs, emulator, MetadataDB(HOME / "airflow.db"), api_port,
                      "salesforce://default/topic/NewOpportunities")
        if procs.run("db-migrate", [str(BIN / "airflow"), "db", "migrate"], timeout=300) != 0:
            print(f"FAILED: airflow db migrate; log: {LOGS / 'db-migrate.log'}")
            return 1
        for dag in BATCH_DAGS:
            outcomes.append(run_batch(stack, dag))
            if not outcomes[-1].ok:
                break
        else:
            try:
                outcomes.extend(run_events(stack))
            except (TimeoutError, AssertionError) as exc:
                # A component exited or did not come up: its name and log tail are in the message.
                outcomes.append(Outcome("Airflow", "(deployment)", 0, str(exc).splitlines()[0], False, LOGS))
                print(str(exc)[-3000:])
        return summary(outcomes, time.monotonic() - begun)
    except KeyboardInterrupt:
        print("interrupted: stopping every process", flush=True)
        return 130
    finally:
        procs.stop_all()
        print("all processes stopped (emulator, Airflow)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
