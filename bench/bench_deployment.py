"""Event-to-DAG-run latency and sustained events/s through two whole Airflow deployments, side by side.

* **SQLite + LocalExecutor**: API server, scheduler, DAG processor, one triggerer (the deployment
  of tests/integration/test_streaming_airflow.py).
* **PostgreSQL + Celery**: PostgreSQL, Redis, CeleryExecutor, API server, scheduler, DAG processor,
  two triggerers, two Celery workers (tests/integration/test_deployment.py's).

Each has its own emulator (same version: this checkout, with the Pub/Sub API and Change Data
Capture on Account) and the same DAGs, bench/deploy_dags/bench_events.py, both watchers paced
(``paced_by``, the production setting), each task returning the replay ids of its run:

* ``bench_cometd_events``: ``SalesforceEventTrigger`` on a PushTopic on Opportunity (CometD);
* ``bench_pubsub_events``: ``SalesforcePubSubEventTrigger`` on ``/data/AccountChangeEvent``
  (``--no-pubsub`` leaves its phase out; the DAG stays paused).

Both deployments run at once and their phases are interleaved round by round (the order
alternating), so the machine's noise hits both alike; the idle one's background loops are part of
that noise. Per round and deployment:

* **latency** (CometD, then Pub/Sub): ``--latency-events`` records created over REST one at a time,
  ``--rate`` per second. For each change, from its commit in the emulator (the PushTopic event's
  ``createdDate``, the change event's ``commitTimestamp``) to (a) the asset event's timestamp,
  (b) the DAG run's ``queued_at`` and ``start_date``, (c) its ``end_date``, all read from the
  metadata database (``asset_event``, ``dagrun_asset_event``, ``dag_run``).
* **throughput** (CometD): ``--burst`` Opportunities written as fast as the emulator takes them
  (sObject Collections, 200 a call, one call at a time); from the first write to the end of the
  last run that consumed one of them; events/s.

Every round also asserts exactness: each change is one replay id in exactly one asset event,
that asset event in exactly one DAG run, and each run's task returned exactly the replay ids its
run consumed. Reported: per-round lines, then the median over rounds of each figure and the
ratio PostgreSQL+Celery / SQLite+Local.

    python -m bench.bench_deployment                       # make bench-deploy
    python -m bench.bench_deployment --rounds 1 --latency-events 60 --burst 300   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PUSH_TOPIC = ("DeployOpportunities", "SELECT Id, Name, StageName FROM Opportunity")
API_VERSION = "v64.0"


def when(value: Any) -> float:
    """A timestamp from either database, or an ISO string, as POSIX seconds (naive means UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


@dataclass(frozen=True)
class Watch:
    """An event-driven DAG of the benchmark and how to read the changes its asset events carry.

    :param name: label in the output.
    :param dag_file: copied to the DAG folder.
    :param dag_id: the DAG scheduled on the asset (its task ``record`` returns the replay ids).
    :param asset_uri: the asset its watcher feeds.
    :param trigger: the watcher's trigger class name.
    :param sobject: creating one of these makes one event on the watched channel or topic.
    :param name_of: an event dict (``salesforce_events``) -> the record's Name.
    :param committed_of: an event dict -> when the emulator committed the change (POSIX seconds).
    """

    name: str
    dag_file: Path
    dag_id: str
    asset_uri: str
    trigger: str
    sobject: str
    name_of: Callable[[dict[str, Any]], str]
    committed_of: Callable[[dict[str, Any]], float]


#: Both DAGs, one per watcher.
DAG_FILE = ROOT / "bench" / "deploy_dags" / "bench_events.py"
#: CometD: a PushTopic on Opportunity; the event's ``createdDate`` is the commit (ms).
COMETD = Watch("CometD", DAG_FILE, "bench_cometd_events", "salesforce://bench/topic/DeployOpportunities",
               "SalesforceEventTrigger", "Opportunity",
               lambda event: event["payload"]["sobject"]["Name"], lambda event: when(event["created_date"]))
#: Pub/Sub: Change Data Capture on Account; the header's ``commitTimestamp`` is the commit (ms).
PUBSUB = Watch("Pub/Sub", DAG_FILE, "bench_pubsub_events", "salesforce://bench/data/AccountChangeEvent",
               "SalesforcePubSubEventTrigger", "Account",
               lambda event: event["payload"]["Name"],
               lambda event: event["payload"]["ChangeEventHeader"]["commitTimestamp"] / 1000)
#: Latency stages: column of the row -> label.
STAGES = {"event_at": "asset event", "queued_at": "run queued", "start_date": "run started",
          "end_date": "run finished"}


#: The fields a created record needs, per sObject.
REQUIRED = {"Opportunity": {"StageName": "Prospecting", "CloseDate": "2026-12-31"}, "Account": {}}


@dataclass
class Deployment:
    """One running deployment and what it measured.

    :param label: column title (``SQLite+Local``, ``PG+Celery``).
    :param stack: its processes, emulator and metadata database.
    :param figures: phase -> that phase's figures, one dict a round.
    """

    label: str
    stack: Any
    figures: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    _http: Any = None

    def _post(self, path: str, body: Any) -> Any:
        import requests

        self._http = self._http or requests.Session()
        reply = self._http.post(f"{self.stack.emulator['url']}/services/data/{API_VERSION}/{path}", json=body,
                                headers={"Authorization": f"Bearer {self.stack.sf_token()}"}, timeout=60,
                                verify=self.stack.emulator["ca_bundle"] or True)
        reply.raise_for_status()
        return reply.json()

    def create_one(self, sobject: str, name: str) -> None:
        """One record over REST (``POST /sobjects/<sobject>``)."""
        self._post(f"sobjects/{sobject}", {"Name": name, **REQUIRED[sobject]})

    def create_many(self, sobject: str, names: list[str]) -> None:
        """Records over sObject Collections, 200 a call, one call at a time."""
        for start in range(0, len(names), 200):
            records = [{"attributes": {"type": sobject}, "Name": name, **REQUIRED[sobject]}
                       for name in names[start:start + 200]]
            failed = [r for r in self._post("composite/sobjects", {"allOrNone": True, "records": records})
                      if not r["success"]]
            assert not failed, failed[:3]


def per_change(deployment: Deployment, watch: Watch, names: set[str], after_event: int) -> dict[str, dict[str, Any]]:
    """Change name -> its replay id, commit time, asset event and the run(s) that consumed that event.

    Only asset events with ids above ``after_event`` are read (the earlier phases' are done).
    """
    from airflow_provider_salesforce_suite.triggers.streaming import salesforce_events
    from tests.integration.airflow_procs import json_value

    db = deployment.stack.db
    events = db.rows("SELECT e.id, e.timestamp AS event_at, e.extra FROM asset_event e JOIN asset a "
                     "ON a.id = e.asset_id WHERE a.uri = ? AND e.id > ?", watch.asset_uri, after_event)
    runs: dict[int, list[dict[str, Any]]] = {}
    for row in db.rows("SELECT x.event_id, r.run_id, r.state, r.queued_at, r.start_date, r.end_date "
                       "FROM dagrun_asset_event x JOIN dag_run r ON r.id = x.dag_run_id "
                       "WHERE r.dag_id = ? AND x.event_id > ?", watch.dag_id, after_event):
        runs.setdefault(row["event_id"], []).append(dict(row))
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        for message in salesforce_events([{"extra": json_value(event["extra"])}]):
            name = watch.name_of(message)
            if name in names:
                found.setdefault(name, {"copies": 0})
                found[name].update(replay_id=message["replay_id"], committed=watch.committed_of(message),
                                   event_id=event["id"], event_at=when(event["event_at"]),
                                   runs=runs.get(event["id"], []))
                found[name]["copies"] += 1
    return found


def wait_finished(deployment: Deployment, watch: Watch, names: list[str], after_event: int, *,
                  timeout: float) -> dict[str, Any]:
    """Until every change is in an asset event whose run finished successfully; :func:`per_change`."""
    from tests.integration.airflow_procs import wait_for

    wanted = set(names)

    def done() -> dict[str, Any] | None:
        deployment.stack.procs.assert_running()
        found = per_change(deployment, watch, wanted, after_event)
        finished = len(found) == len(wanted) and all(
            change["runs"] and all(run["state"] == "success" for run in change["runs"]) for change in found.values())
        return found if finished else None

    try:
        return wait_for(done, timeout=timeout, interval=1, what=f"{len(names)} changes in finished runs "
                                                                 f"({deployment.label})")
    except TimeoutError:
        print(deployment.stack.diagnostics())
        raise


def check_exact(deployment: Deployment, watch: Watch, found: dict[str, dict[str, Any]]) -> None:
    """Each change one replay id in one asset event, that event in exactly one run, each run's
    task returned exactly the replay ids of the events it consumed."""
    assert all(change["copies"] == 1 for change in found.values()), "a change was delivered twice"
    assert all(len(change["runs"]) == 1 for change in found.values()), "an asset event is in several runs"
    replay_ids: dict[str, list[Any]] = {}
    for change in found.values():
        replay_ids.setdefault(change["runs"][0]["run_id"], []).append(change["replay_id"])
    returned = deployment.stack.db.xcom_values(watch.dag_id, "record")
    for run_id, ids in replay_ids.items():
        assert sorted(returned[run_id]) == sorted(ids), f"run {run_id} returned other replay ids"
    assert len({change["replay_id"] for change in found.values()}) == len(found), "two changes share a replay id"


def last_event_id(deployment: Deployment) -> int:
    """The newest asset event id of any asset (a phase reads only the events after it)."""
    rows = deployment.stack.db.rows("SELECT MAX(id) AS top FROM asset_event")
    return (rows[0]["top"] if rows else None) or 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_round(deployment: Deployment, watch: Watch, tag: str, events: int, rate: float) -> dict[str, float]:
    """``events`` changes ``rate`` per second; p50/p99 ms from commit to each stage."""
    names = [f"{tag}-lat-{i:05d}" for i in range(events)]
    after = last_event_id(deployment)
    errors: list[BaseException] = []

    def produce() -> None:
        start = time.monotonic()
        try:
            for i, name in enumerate(names):
                time.sleep(max(0.0, start + i / rate - time.monotonic()))
                deployment.create_one(watch.sobject, name)
        except BaseException as exc:  # noqa: BLE001 - reported by the calling thread
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    producer.join(timeout=events / rate + 120)
    assert not errors and not producer.is_alive(), errors
    found = wait_finished(deployment, watch, names, after, timeout=180)
    check_exact(deployment, watch, found)
    figures: dict[str, float] = {"events": len(found)}
    for column, label in STAGES.items():
        millis = [((change[column] if column == "event_at" else when(change["runs"][0][column])) -
                   change["committed"]) * 1000 for change in found.values()]
        figures[f"{label} p50 ms"] = statistics.median(millis)
        figures[f"{label} p99 ms"] = percentile(millis, 99)
    figures["asset events"] = len({change["event_id"] for change in found.values()})
    figures["runs"] = len({change["runs"][0]["run_id"] for change in found.values()})
    return figures


def throughput_round(deployment: Deployment, watch: Watch, tag: str, burst: int) -> dict[str, float]:
    """``burst`` changes as fast as the emulator takes them; events/s until the last run finished."""
    names = [f"{tag}-tput-{i:05d}" for i in range(burst)]
    after = last_event_id(deployment)
    started = time.time()
    deployment.create_many(watch.sobject, names)
    written = time.time() - started
    found = wait_finished(deployment, watch, names, after, timeout=180 + burst * 0.05)
    check_exact(deployment, watch, found)
    last_end = max(when(change["runs"][0]["end_date"]) for change in found.values())
    return {"events": len(found), "write s": written, "all done s": last_end - started,
            "events/s": len(found) / (last_end - started),
            "asset events": len({change["event_id"] for change in found.values()}),
            "runs": len({change["runs"][0]["run_id"] for change in found.values()})}


def subscriptions(stack: Any, watch: Watch) -> int:
    """Streams the emulator holds for ``watch``'s kind (CometD subscriptions, open Pub/Sub streams)."""
    stats = stack.emulator_stats()
    return int(stats["pubsub"]["open_streams"] if watch is PUBSUB else stats["streaming"]["subscriptions"])


@contextmanager
def deployment_of(kind: str, base: Path, watches: list[Watch]) -> Iterator[Deployment]:
    """Start the ``sqlite`` or ``celery`` deployment with every watch's DAG active, subscribed and
    through one warm-up run; stop it after."""
    from tests.integration.airflow_procs import (
        ProcessSet,
        start_celery_deployment,
        start_sqlite_deployment,
        wait_for,
    )

    home, dags = base / kind / "home", base / kind / "dags"
    home.mkdir(parents=True)
    dags.mkdir()
    for dag_file in {watch.dag_file for watch in watches}:
        shutil.copy(dag_file, dags / dag_file.name)
    emulator_args: tuple[str, ...] = ()
    if PUBSUB in watches:
        config = base / kind / "emulator.json"
        config.write_text(json.dumps({"cdc_entities": [PUBSUB.sobject]}))  # Setup -> Change Data Capture
        emulator_args = ("--pubsub-port", "0", "--config", str(config))
    procs = ProcessSet(home, dict(os.environ))
    start = start_celery_deployment if kind == "celery" else start_sqlite_deployment
    label = "PG+Celery" if kind == "celery" else "SQLite+Local"
    try:
        begun = time.monotonic()
        stack = start(procs, home, dags, {"salesforce_suite_default": "{emulator}"}, asset_uri=COMETD.asset_uri,
                      emulator_args=emulator_args)
        conn_id = f"bench_deploy_{kind}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = stack.emulator["connection"]
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        SalesforceStreamingHook(conn_id).ensure_push_topic(*PUSH_TOPIC, operations=["create"])
        deployment = Deployment(label, stack)
        for watch in watches:
            stack.activate_watcher(watch.dag_id, watch.trigger, timeout=240)
            wait_for(lambda: procs.assert_running() or subscriptions(stack, watch) >= 1,  # noqa: B023 - used here
                     timeout=120, what=f"the {watch.name} watcher's subscription")
            # The first run pays one-time costs (imports in a fresh worker): not a sample.
            deployment.create_one(watch.sobject, "warm-up")
            wait_finished(deployment, watch, ["warm-up"], 0, timeout=240)
        print(f"{label}: up and warm in {time.monotonic() - begun:.0f} s (logs: {home})", flush=True)
        yield deployment
    finally:
        procs.stop_all()


def shown(key: str, value: float) -> str:
    """``value`` with the precision its unit deserves."""
    if key.endswith(" ms"):
        return f"{value:.0f}"
    if key.endswith(" s"):
        return f"{value:.2f}"
    return f"{value:.1f}" if value % 1 else f"{value:.0f}"


def median_table(deployments: list[Deployment]) -> str:
    """Markdown: the median over rounds of every figure, per deployment, and the ratio last / first."""
    lines = ["| figure | " + " | ".join(d.label for d in deployments) + " | ratio |",
             "|---|" + "---|" * (len(deployments) + 1)]
    for phase, rounds in deployments[0].figures.items():
        for key in (key for key in rounds[0] if key != "events"):
            medians = [statistics.median(r[key] for r in d.figures[phase]) for d in deployments]
            ratio = f"{medians[-1] / medians[0]:.2f}x" if len(medians) > 1 and medians[0] else ""
            lines.append(f"| {phase}: {key} | " + " | ".join(shown(key, m) for m in medians) + f" | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench.bench_deployment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(env("SF_BENCH_DEPLOY_ROUNDS", "3")))
    parser.add_argument("--latency-events", type=int, default=int(env("SF_BENCH_DEPLOY_LATENCY_EVENTS", "300")),
                        help="paced changes per latency round (>= 300 for a p99 that is not the max)")
    parser.add_argument("--rate", type=float, default=float(env("SF_BENCH_DEPLOY_RATE", "10")),
                        help="changes per second in a latency round")
    parser.add_argument("--burst", type=int, default=int(env("SF_BENCH_DEPLOY_BURST", "2000")),
                        help="changes per throughput round")
    parser.add_argument("--no-pubsub", action="store_true", help="leave the Pub/Sub watcher's latency out")
    parser.add_argument("--only", choices=("sqlite", "celery"), help="one deployment (no ratios)")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    parser.add_argument("--keep", action="store_true", help="keep the deployments' directories (logs, databases)")
    args = parser.parse_args(argv)

    kinds = [args.only] if args.only else ["sqlite", "celery"]
    watches = [COMETD] if args.no_pubsub else [COMETD, PUBSUB]
    phases: dict[str, Callable[[Deployment, str], dict[str, float]]] = {
        "CometD latency": lambda d, tag: latency_round(d, COMETD, tag, args.latency_events, args.rate),
        "Pub/Sub latency": lambda d, tag: latency_round(d, PUBSUB, tag, args.latency_events, args.rate),
        "CometD throughput": lambda d, tag: throughput_round(d, COMETD, tag, args.burst)}
    if args.no_pubsub:
        del phases["Pub/Sub latency"]
    began = time.monotonic()
    print(f"# Event-to-run latency and throughput ({time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}): {args.rounds} rounds of {args.latency_events} changes at "
          f"{args.rate:g}/s and a burst of {args.burst}", flush=True)
    with ExitStack() as running:
        tmp = tempfile.mkdtemp(prefix="sf-bench-deploy-")
        if not args.keep:
            running.callback(shutil.rmtree, tmp, ignore_errors=True)
        deployments = [running.enter_context(deployment_of(kind, Path(tmp), watches)) for kind in kinds]
        for number in range(args.rounds):
            # Alternate which deployment goes first: neither always follows the other's load.
            order = deployments if number % 2 == 0 else deployments[::-1]
            for phase, run in phases.items():
                for deployment in order:
                    figures = run(deployment, f"r{number}")
                    deployment.figures.setdefault(phase, []).append(figures)
                    print(f"round {number + 1} {phase} {deployment.label}: " + ", ".join(
                        f"{key} {shown(key, value)}" for key, value in figures.items()), flush=True)
        print(f"\n## Medians over {args.rounds} round(s) (load {os.getloadavg()[0]:.1f}; "
              f"{time.monotonic() - began:.0f} s in all)\n")
        print(median_table(deployments))
        changes = sum(r["events"] for d in deployments for rounds in d.figures.values() for r in rounds)
        print(f"\nExact in every round ({changes} changes): each change one replay id in one asset event, "
              "that event in exactly one run, returned by that run's task.")
        if args.json:
            args.json.write_text(json.dumps({d.label: d.figures for d in deployments}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
