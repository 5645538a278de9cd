"""The event-driven DAG of the deployment tests (tests/integration/test_deployment.py).

An asset fed by :class:`SalesforceEventTrigger` on ``/topic/DeployOpportunities``; the task
returns the replay ids its run received, so the test can match runs, asset events and XCom.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger, salesforce_events

CHANNEL = "/topic/DeployOpportunities"
DAG_ID = "deploy_events"

opportunities = Asset(
    f"salesforce://deploy{CHANNEL}",
    watchers=[AssetWatcher(name="deploy_opportunities", trigger=SalesforceEventTrigger(
        channel=CHANNEL, salesforce_conn_id="salesforce_suite_default", paced_by=[DAG_ID]))],
)


@dag(dag_id=DAG_ID, schedule=[opportunities], start_date=datetime(2026, 1, 1), catchup=False,
     max_active_runs=4, tags=["test"])
def deploy_events():
    @task
    def record(triggering_asset_events=None) -> list[int]:
        """The replay ids this run was triggered with (the test compares them with the database)."""
        return [event["replay_id"] for event in salesforce_events(triggering_asset_events[opportunities])]

    record()


deploy_events()
