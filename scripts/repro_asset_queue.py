"""Minimal reproduction of Airflow's asset-queue bug (apache/airflow#56050) on Airflow 3.3.

Two asset events for one asset are registered before the scheduler looks (the way two trigger
events of an asset watcher are, one at a time, through ``AssetManager.register_asset_change``).
The scheduler then creates ONE run that consumes only the first event: the asset_dag_run_queue
row kept the first event's time, the run's window ends there, and the row is deleted. The second
event stays in ``asset_event`` with no queue row until a third event arrives.

Run: ``python scripts/repro_asset_queue.py`` (a throwaway SQLite deployment in a temp dir; ~1 min).
Nothing of the provider is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

DAG = textwrap.dedent('''
    from datetime import datetime
    from airflow.sdk import Asset, dag, task

    @dag(dag_id="consumer", schedule=[Asset("repro://burst")], start_date=datetime(2026, 1, 1), catchup=False)
    def consumer():
        @task
        def noop():
            pass
        noop()

    consumer()
''')

REGISTER = textwrap.dedent('''
    import sys
    from airflow.assets.manager import AssetManager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    for n in range(int(sys.argv[1])):
        with create_session() as session:  # one transaction per event, like Trigger.submit_event
            asset = session.scalar(select(AssetModel).where(AssetModel.name == "repro://burst"))
            AssetManager.register_asset_change(asset=asset, extra={"n": sys.argv[2] + str(n)}, session=session)
''')

REPORT = textwrap.dedent('''
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        consumed = set()
        for run in session.scalars(select(DagRun).where(DagRun.dag_id == "consumer").order_by(DagRun.id)):
            events = [e.extra["n"] for e in run.consumed_asset_events]
            consumed.update(events)
            print(f"run {run.run_id}: consumed {events}")
        events = [e.extra["n"] for e in session.scalars(select(AssetEvent).order_by(AssetEvent.id))]
        print("asset events:", events, "| in no run:", [e for e in events if e not in consumed])
        print("queue rows:", session.scalar(select(func.count()).select_from(AssetDagRunQueue)))
''')


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="airflow-56050-"))
    (home / "dags").mkdir()
    (home / "dags" / "consumer.py").write_text(DAG)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    airflow = str(Path(sys.executable).parent / "airflow")
    try:
        reproduce(env, airflow)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def reproduce(env: dict[str, str], airflow: str) -> None:
    """Two events, the scheduler, the report; one more event, the scheduler, the report."""
    def run(*argv: str) -> str:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout

    run(airflow, "db", "migrate")
    run(airflow, "dag-processor", "--num-runs", "1")  # parses the DAG: dag, asset and reference rows
    print("1. two asset events, then the scheduler:")
    run(sys.executable, "-c", REGISTER, "2", "burst-")
    run(airflow, "scheduler", "--num-runs", "3")
    print(run(sys.executable, "-c", REPORT))
    print("2. one more asset event, then the scheduler:")
    run(sys.executable, "-c", REGISTER, "1", "next-")
    run(airflow, "scheduler", "--num-runs", "3")
    print(run(sys.executable, "-c", REPORT))


if __name__ == "__main__":
    main()
