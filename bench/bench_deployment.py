"""Event-to-DAG-run latency and sustained events/s through two whole Airflow deployments, side by side.

* **SQLite + LocalExecutor**: API server, scheduler, DAG processor, one triggerer (the deployment
  of tests/integration/test_streaming_airflow.py).
* **PostgreSQL + Celery**: PostgreSQL, Redis, CeleryExecutor, API server, scheduler, DAG processor,
  two triggerers, two Celery workers (tests/integration/test_deployment.py's).

Each has its own emulator (same version: this checkout) and the same DAG,
tests/integration/deploy_dags/deploy_events.py: an asset fed by ``SalesforceEventTrigger`` on a
PushTopic with ``paced_by`` (the production setting), a task returning the replay ids of its run.
Both run at once and their phases are interleaved round by round (the order alternating), so the
machine's noise hits both alike; the idle deployment's background loops are part of that noise.

Per round and deployment:

* **latency**: ``--latency-events`` Opportunities created over REST one at a time, ``--rate`` per
  second. For each change, from its commit in the emulator (the event's ``createdDate``) to (a) the
  asset event's timestamp, (b) the DAG run's ``queued_at`` and ``start_date``, (c) its ``end_date``,
  all read from the metadata database (``asset_event``, ``dagrun_asset_event``, ``dag_run``).
* **throughput**: ``--burst`` Opportunities written as fast as the emulator takes them (sObject
  Collections, 200 a call, one call at a time); from the first write to the end of the last run
  that consumed one of them; events/s.

Every round also asserts exactness: each change is one replay id in exactly one asset event,
each of those asset events in exactly one DAG run, and each run's task returned exactly the
replay ids its run consumed. Reported: per-round lines, then the median over rounds of each
figure and the ratio PostgreSQL+Celery / SQLite+Local.

    python -m bench.bench_deployment                       # make bench-deploy
    python -m bench.bench_deployment --rounds 1 --latency-events 60 --burst 300   # a quick look
"""

from __future__ import annotations

import argparse
import json
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
DAG_FILE = ROOT / "tests" / "integration" / "deploy_dags" / "deploy_events.py"
DAG_ID = "deploy_events"
CHANNEL = "/topic/DeployOpportunities"
ASSET_URI = f"salesforce://deploy{CHANNEL}"
PUSH_TOPIC = ("DeployOpportunities", "SELECT Id, Name, StageName FROM Opportunity")
API_VERSION = "v64.0"
#: Latency stages: column of the row -> label.
STAGES = {"event_at": "asset event", "queued_at": "run queued", "start_date": "run started",
          "end_date": "run finished"}


@dataclass
class Deployment:
    """One running deployment and what it measured.

    :param label: column title (``SQLite+Local``, ``PG+Celery``).
    :param stack: its processes, emulator and metadata database.
    """

    label: str
    stack: Any
    latency: list[dict[str, float]] = field(default_factory=list)
    throughput: list[dict[str, float]] = field(default_factory=list)
    _http: Any = None

    def create_one(self, name: str) -> None:
        """One Opportunity over REST (``POST /sobjects/Opportunity``)."""
        self.stack.create_opportunity(name)

    def create_many(self, names: list[str]) -> None:
        """Opportunities over sObject Collections, 200 a call."""
        import requests

        self._http = self._http or requests.Session()
        url = f"{self.stack.emulator['url']}/services/data/{API_VERSION}/composite/sobjects"
        headers = {"Authorization": f"Bearer {self.stack.sf_token()}"}
        for start in range(0, len(names), 200):
            records = [{"attributes": {"type": "Opportunity"}, "Name": name, "StageName": "Prospecting",
                        "CloseDate": "2026-12-31"} for name in names[start:start + 200]]
            reply = self._http.post(url, json={"allOrNone": True, "records": records}, headers=headers, timeout=60,
                                    verify=self.stack.emulator["ca_bundle"] or True)
            reply.raise_for_status()
            failed = [result for result in reply.json() if not result["success"]]
            assert not failed, failed[:3]


def when(value: Any) -> float:
    """A timestamp from either database, or an ISO string, as POSIX seconds (naive means UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def per_change(deployment: Deployment, names: set[str], after_event: int) -> dict[str, dict[str, Any]]:
    """Change name -> its replay id, commit time, asset event and the finished run(s) of that event.

    Only asset events with ids above ``after_event`` are read (the earlier phases' are done).
    """
    from airflow_provider_salesforce_suite.triggers.streaming import salesforce_events

    db = deployment.stack.db
    events = db.rows("SELECT e.id, e.timestamp AS event_at, e.extra FROM asset_event e JOIN asset a "
                     "ON a.id = e.asset_id WHERE a.uri = ? AND e.id > ?", ASSET_URI, after_event)
    runs: dict[int, list[dict[str, Any]]] = {}
    for row in db.rows("SELECT x.event_id, r.run_id, r.state, r.queued_at, r.start_date, r.end_date "
                       "FROM dagrun_asset_event x JOIN dag_run r ON r.id = x.dag_run_id "
                       "WHERE r.dag_id = ? AND x.event_id > ?", DAG_ID, after_event):
        runs.setdefault(row["event_id"], []).append(dict(row))
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        extra = event["extra"]
        for message in salesforce_events([{"extra": json.loads(extra) if isinstance(extra, str) else extra}]):
            name = message["payload"]["sobject"]["Name"]
            if name in names:
                found.setdefault(name, {"copies": 0})
                found[name].update(replay_id=message["replay_id"], committed=when(message["created_date"]),
                                   event_id=event["id"], event_at=when(event["event_at"]),
                                   runs=runs.get(event["id"], []))
                found[name]["copies"] += 1
    return found


def wait_finished(deployment: Deployment, names: list[str], after_event: int, *, timeout: float) -> dict[str, Any]:
    """Until every change is in an asset event whose run finished successfully; :func:`per_change`."""
    from tests.integration.airflow_procs import wait_for

    wanted = set(names)

    def done() -> dict[str, Any] | None:
        deployment.stack.procs.assert_running()
        found = per_change(deployment, wanted, after_event)
        finished = len(found) == len(wanted) and all(
            change["runs"] and all(run["state"] == "success" for run in change["runs"]) for change in found.values())
        return found if finished else None

    try:
        return wait_for(done, timeout=timeout, interval=1, what=f"{len(names)} changes in finished runs "
                                                                 f"({deployment.label})")
    except TimeoutError:
        print(deployment.stack.diagnostics())
        raise


def check_exact(deployment: Deployment, found: dict[str, dict[str, Any]]) -> None:
    """Each change one replay id in one asset event, that event in exactly one run, each run's
    task returned exactly the replay ids of the events it consumed."""
    assert all(change["copies"] == 1 for change in found.values()), "a change was delivered twice"
    assert all(len(change["runs"]) == 1 for change in found.values()), "an asset event is in several runs"
    replay_ids: dict[str, list[int]] = {}
    for change in found.values():
        replay_ids.setdefault(change["runs"][0]["run_id"], []).append(change["replay_id"])
    returned = deployment.stack.db.xcom_values(DAG_ID, "record")
    for run_id, ids in replay_ids.items():
        assert sorted(returned[run_id]) == sorted(ids), f"run {run_id} returned other replay ids"
    assert len({change["replay_id"] for change in found.values()}) == len(found), "two changes share a replay id"


def last_event_id(deployment: Deployment) -> int:
    rows = deployment.stack.db.rows("SELECT MAX(id) AS top FROM asset_event")
    return (rows[0]["top"] if rows else None) or 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def latency_round(deployment: Deployment, tag: str, events: int, rate: float) -> dict[str, float]:
    """``events`` changes ``rate`` per second; p50/p99 ms from commit to each stage."""
    names = [f"{tag}-lat-{i:05d}" for i in range(events)]
    after = last_event_id(deployment)
    errors: list[BaseException] = []

    def produce() -> None:
        start = time.monotonic()
        try:
            for i, name in enumerate(names):
                time.sleep(max(0.0, start + i / rate - time.monotonic()))
                deployment.create_one(name)
        except BaseException as exc:  # noqa: BLE001 - reported by the calling thread
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    producer.join(timeout=events / rate + 120)
    assert not errors and not producer.is_alive(), errors
    found = wait_finished(deployment, names, after, timeout=180)
    check_exact(deployment, found)
    figures: dict[str, float] = {"events": len(found)}
    for column, label in STAGES.items():
        millis = [((change[column] if column == "event_at" else when(change["runs"][0][column])) -
                   change["committed"]) * 1000 for change in found.values()]
        figures[f"{label} p50 ms"] = statistics.median(millis)
        figures[f"{label} p99 ms"] = percentile(millis, 99)
    figures["asset events"] = len({change["event_id"] for change in found.values()})
    figures["runs"] = len({change["runs"][0]["run_id"] for change in found.values()})
    return figures


def throughput_round(deployment: Deployment, tag: str, burst: int) -> dict[str, float]:
    """``burst`` changes as fast as the emulator takes them; events/s until the last run finished."""
    names = [f"{tag}-tput-{i:05d}" for i in range(burst)]
    after = last_event_id(deployment)
    started = time.time()
    deployment.create_many(names)
    written = time.time() - started
    found = wait_finished(deployment, names, after, timeout=180 + burst * 0.05)
    check_exact(deployment, found)
    last_end = max(when(change["runs"][0]["end_date"]) for change in found.values())
    return {"events": len(found), "write s": written, "all done s": last_end - started,
            "events/s": len(found) / (last_end - started),
            "asset events": len({change["event_id"] for change in found.values()}),
            "runs": len({change["runs"][0]["run_id"] for change in found.values()})}


@contextmanager
def deployment_of(kind: str, base: Path) -> Iterator[Deployment]:
    """Start the ``sqlite`` or ``celery`` deployment with the DAG active and subscribed; stop it after."""
    from tests.integration.airflow_procs import (
        ProcessSet,
        start_celery_deployment,
        start_sqlite_deployment,
        wait_for,
    )

    home, dags = base / kind / "home", base / kind / "dags"
    home.mkdir(parents=True)
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    procs = ProcessSet(home, dict(os.environ))
    start = start_celery_deployment if kind == "celery" else start_sqlite_deployment
    label = "PG+Celery" if kind == "celery" else "SQLite+Local"
    try:
        begun = time.monotonic()
        stack = start(procs, home, dags, {"salesforce_suite_default": "{emulator}"}, asset_uri=ASSET_URI)
        conn_id = f"bench_deploy_{kind}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = stack.emulator["connection"]
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        SalesforceStreamingHook(conn_id).ensure_push_topic(*PUSH_TOPIC, operations=["create"])
        stack.activate_watcher(DAG_ID, "SalesforceEventTrigger", timeout=240)
        wait_for(lambda: procs.assert_running() or stack.emulator_stats()["streaming"]["subscriptions"] >= 1,
                 timeout=120, what="the watcher's CometD subscription")
        deployment = Deployment(label, stack)
        # The first run pays one-time costs (imports in a fresh worker): not a sample.
        deployment.create_one("warm-up")
        wait_finished(deployment, ["warm-up"], 0, timeout=240)
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
    lines = ["| figure | " + " | ".join(d.label for d in deployments) + " | ratio |", "|---|" + "---|" * (
        len(deployments) + 1)]
    for phase in ("latency", "throughput"):
        keys = [key for key in getattr(deployments[0], phase)[0] if key != "events"]
        for key in keys:
            medians = [statistics.median(r[key] for r in getattr(d, phase)) for d in deployments]
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
    parser.add_argument("--only", choices=("sqlite", "celery"), help="one deployment (no ratios)")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    args = parser.parse_args(argv)

    kinds = [args.only] if args.only else ["sqlite", "celery"]
    began = time.monotonic()
    print(f"# Event-to-run latency and throughput ({time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}): {args.rounds} rounds of {args.latency_events} changes at "
          f"{args.rate:g}/s and a burst of {args.burst}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sf-bench-deploy-") as tmp, ExitStack() as running:
        deployments = [running.enter_context(deployment_of(kind, Path(tmp))) for kind in kinds]
        phases: list[tuple[str, Callable[[Deployment, str], dict[str, float]]]] = [
            ("latency", lambda d, tag: latency_round(d, tag, args.latency_events, args.rate)),
            ("throughput", lambda d, tag: throughput_round(d, tag, args.burst))]
        for number in range(args.rounds):
            # Alternate which deployment goes first: neither always follows the other's load.
            order = deployments if number % 2 == 0 else deployments[::-1]
            for phase, run in phases:
                for deployment in order:
                    figures = run(deployment, f"r{number}")
                    getattr(deployment, phase).append(figures)
                    print(f"round {number + 1} {phase} {deployment.label}: " + ", ".join(
                        f"{key} {shown(key, value)}" for key, value in figures.items()), flush=True)
        print(f"\n## Medians over {args.rounds} round(s) (load {os.getloadavg()[0]:.1f}; "
              f"{time.monotonic() - began:.0f} s in all)\n")
        print(median_table(deployments))
        changes = sum(r["events"] for d in deployments for r in d.latency + d.throughput)
        print(f"\nExact in every round ({changes} changes): each change one replay id in one asset event, "
              "that event in exactly one run, returned by that run's task.")
        if args.json:
            args.json.write_text(json.dumps({d.label: {"latency": d.latency, "throughput": d.throughput}
                                             for d in deployments}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
