"""A production-shaped Airflow deployment (PostgreSQL, Redis, CeleryExecutor, two triggerers, two
Celery workers; see ``celery_deployment`` in conftest.py) driven by Salesforce changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.airflow_procs import CELERY_COMPONENTS, Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DAGS = [ROOT / "example_dags" / "example_salesforce_new_opportunity.py"]
DAG_ID = "example_salesforce_new_opportunity"
ASSET_URI = "salesforce://default/topic/NewOpportunities"
PUSH_TOPIC = ("NewOpportunities", "SELECT Id, Name, StageName, Amount, CloseDate, AccountId FROM Opportunity")


def test_an_event_runs_its_dag_on_a_celery_worker(celery_deployment: Stack) -> None:
    stack = celery_deployment
    jobs = {row["hostname"]: row["state"] for row in stack.db.rows("SELECT hostname, state FROM job")}
    assert jobs.get("triggerer-1") == jobs.get("triggerer-2") == "running", jobs
    wait_for(lambda: stack.emulator_stats().get("streaming", {}).get("subscriptions", 0) >= 1, timeout=120,
             what="the watcher's CometD subscription")
    record_id = stack.create_opportunity("smoke")
    wait_for(lambda: stack.procs.assert_running() or [r for r in stack.db.dag_runs(DAG_ID) if r["state"] == "success"],
             timeout=180, what="a successful run")
    (xcom,) = stack.db.xcom_values(DAG_ID, "handle_new_opportunities").values()
    assert [line["id"] for line in xcom] == [record_id]
    (ti,) = stack.db.rows("SELECT hostname, state FROM task_instance WHERE dag_id = ?", DAG_ID)
    assert ti["state"] == "success" and ti["hostname"] in CELERY_COMPONENTS
