"""The Pub/Sub DAG of bench/bench_deployment.py: an asset fed by :class:`SalesforcePubSubEventTrigger`
on the ``/data/AccountChangeEvent`` Change Data Capture topic, paced like the CometD one
(tests/integration/deploy_dags/deploy_events.py); the task returns the replay ids (base64) its
run received, so the benchmark can match runs, asset events and XCom.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger, salesforce_events

TOPIC = "/data/AccountChangeEvent"
DAG_ID = "deploy_pubsub_events"

account_changes = Asset(
    f"salesforce://deploy{TOPIC}",
    watchers=[AssetWatcher(name="deploy_account_changes", trigger=SalesforcePubSubEventTrigger(
        topic=TOPIC, salesforce_conn_id="salesforce_suite_default", paced_by=[DAG_ID]))],
)


@dag(dag_id=DAG_ID, schedule=[account_changes], start_date=datetime(2026, 1, 1), catchup=False,
     max_active_runs=4, tags=["bench"])
def deploy_pubsub_events():
    @task
    def record(triggering_asset_events=None) -> list[str]:
        """The replay ids this run was triggered with (the benchmark compares them with the database)."""
        return [event["replay_id"] for event in salesforce_events(triggering_asset_events[account_changes])]

    record()


deploy_pubsub_events()
