"""The DAGs of bench/bench_deployment.py: one per event watcher, both paced (``paced_by``, the
production setting), each task returning the replay ids its run received, so the benchmark can
match runs, asset events and XCom.

* ``bench_cometd_events``: :class:`SalesforceEventTrigger` on the ``/topic/DeployOpportunities``
  PushTopic (Opportunity creates).
* ``bench_pubsub_events``: :class:`SalesforcePubSubEventTrigger` on ``/data/AccountChangeEvent``
  (Change Data Capture on Account).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger
from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger, salesforce_events

CONN_ID = "salesforce_suite_default"


def replay_ids_dag(dag_id: str, uri: str, trigger_class: type, **trigger_kwargs: str) -> None:
    """A DAG scheduled on asset ``uri``, watched by ``trigger_class`` paced by this DAG."""
    asset = Asset(uri, watchers=[AssetWatcher(name=f"{dag_id}_watcher", trigger=trigger_class(
        salesforce_conn_id=CONN_ID, paced_by=[dag_id], **trigger_kwargs))])

    @dag(dag_id=dag_id, schedule=[asset], start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=4,
         tags=["bench"])
    def replay_ids():
        @task(task_id="record")
        def record(triggering_asset_events=None) -> list:
            return [event["replay_id"] for event in salesforce_events(triggering_asset_events[asset])]

        record()

    replay_ids()


replay_ids_dag("bench_cometd_events", "salesforce://bench/topic/DeployOpportunities", SalesforceEventTrigger,
               channel="/topic/DeployOpportunities")
replay_ids_dag("bench_pubsub_events", "salesforce://bench/data/AccountChangeEvent", SalesforcePubSubEventTrigger,
               topic="/data/AccountChangeEvent")
